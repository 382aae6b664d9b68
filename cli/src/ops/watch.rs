//! `switchboard watch`: the registry's change stream, one line per event.
//!
//! Without `--since` it starts with the current state (SNAPSHOT lines, then
//! END_OF_SNAPSHOT), then follows live changes until ctrl-c or `--limit`
//! printed events. When the stream breaks it resumes from the last revision
//! it saw (no gap, no duplicate), with backoff, saying so on stderr.

use clap::Args;
use serde_json::json;
use switchboard_client::Backoff;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{AgentStatus, EventType, WatchFilter, WatchRequest, WatchResponse};
use tokio_util::sync::CancellationToken;

use super::common::{self, AgentFilter, Output, OutputFlag, RegistryFlag};
use super::render::{agent_json, status_name, time};

/// Flags of `switchboard watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Start after this revision (0: the current state first, then changes).
    #[arg(long, default_value_t = 0)]
    since: u64,
    /// Stop after printing this many events (for scripts).
    #[arg(long)]
    limit: Option<u64>,
    /// Also print BOOKMARK progress markers.
    #[arg(long)]
    bookmarks: bool,
    #[command(flatten)]
    filter: AgentFilter,
    #[command(flatten)]
    registry: RegistryFlag,
    #[command(flatten)]
    output: OutputFlag,
}

/// Where to resume after a broken stream.
#[derive(Debug, Default)]
struct Resume {
    revision: u64,
    epoch: String,
}

/// Streams events until ctrl-c, SIGTERM or `--limit`.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let stop = crate::shutdown::on_signal();
    let address = args.registry.registry.clone();
    let mut client = WatchServiceClient::new(common::registry(&args.registry).await?);
    let filter = WatchFilter {
        capability: args.filter.capability.clone().unwrap_or_default(),
        name: args.filter.name.clone().unwrap_or_default(),
        tag: args.filter.tag.clone().unwrap_or_default(),
        status: args.filter.status.map_or(AgentStatus::Unspecified, AgentStatus::from) as i32,
    };
    let mut resume = Resume { revision: args.since, epoch: String::new() };
    let mut printed = 0u64;
    let mut backoff = Backoff::default();
    let mut connected_once = false;
    if args.output.output == Output::Table {
        println!("{:>8}  {:<15}  {:<30}  {:<9}  DETAIL", "REVISION", "TYPE", "AGENT", "STATUS");
    }
    loop {
        let request = WatchRequest {
            since_revision: resume.revision,
            store_epoch: resume.epoch.clone(),
            filter: Some(filter.clone()),
        };
        let opened = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            opened = client.watch(request) => opened,
        };
        let mut stream = match opened {
            Ok(response) => response.into_inner(),
            Err(status) if !connected_once || !retryable(&status) => {
                return Err(common::status_error(&address, &status));
            }
            Err(status) => {
                eprintln!("switchboard: watch: {}; retrying", status.message());
                if !pause(&mut backoff, &stop).await {
                    return Ok(());
                }
                continue;
            }
        };
        connected_once = true;
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                message = stream.message() => message,
            };
            let event = match message {
                Ok(Some(event)) => event,
                Ok(None) => {
                    eprintln!(
                        "switchboard: watch: the registry closed the stream; resuming from revision {}",
                        resume.revision
                    );
                    break;
                }
                Err(status) if retryable(&status) => {
                    eprintln!(
                        "switchboard: watch: {}; resuming from revision {}",
                        status.message(),
                        resume.revision
                    );
                    break;
                }
                Err(status) => return Err(common::status_error(&address, &status)),
            };
            backoff.reset();
            let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified);
            if kind != EventType::Snapshot && kind != EventType::ResyncRequired {
                resume = Resume { revision: event.revision, epoch: event.store_epoch.clone() };
            }
            if kind == EventType::Bookmark && !args.bookmarks {
                continue;
            }
            match args.output.output {
                Output::Json => println!("{}", event_json(kind, &event)),
                Output::Table => println!("{}", event_line(kind, &event)),
            }
            printed += 1;
            if args.limit.is_some_and(|limit| printed >= limit) {
                return Ok(());
            }
        }
        if !pause(&mut backoff, &stop).await {
            return Ok(());
        }
    }
}

/// Statuses after which resuming may work: the registry went away or shed us.
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Aborted
            | tonic::Code::ResourceExhausted
            | tonic::Code::Unknown
            | tonic::Code::Internal
    )
}

/// Waits for the next backoff delay; false on ctrl-c or SIGTERM.
async fn pause(backoff: &mut Backoff, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(backoff.next_delay()) => true,
    }
}

/// `added`, `status_changed`, `end_of_snapshot`…
fn kind_name(kind: EventType) -> String {
    kind.as_str_name().trim_start_matches("EVENT_TYPE_").to_ascii_lowercase()
}

fn event_line(kind: EventType, event: &WatchResponse) -> String {
    let (id, status, status_reason) = match &event.agent {
        Some(agent) => (agent.id.as_str(), status_name(agent.status), agent.status_reason.as_str()),
        None => ("-", "-", ""),
    };
    let detail = match kind {
        EventType::ResyncRequired => {
            format!("{} (oldest revision kept: {})", event.reason, event.compact_revision)
        }
        _ if !event.reason.is_empty() => event.reason.clone(),
        _ => status_reason.to_owned(),
    };
    format!("{:>8}  {:<15}  {id:<30}  {status:<9}  {detail}", event.revision, kind_name(kind))
        .trim_end()
        .to_owned()
}

fn event_json(kind: EventType, event: &WatchResponse) -> serde_json::Value {
    json!({
        "type": kind_name(kind),
        "revision": event.revision,
        "store_epoch": event.store_epoch,
        "time": time(event.time.as_ref()),
        "reason": event.reason,
        "compact_revision": event.compact_revision,
        "agent": event.agent.as_ref().map(agent_json),
    })
}
