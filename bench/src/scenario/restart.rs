//! `restart`: a spawned registry holding N agents (five tools each) that
//! keep heartbeating on their streams is stopped — SIGTERM, then SIGKILL —
//! and started again on the same data dir and port. Measured: exec → first
//! successful RPC, and how many agents the restart expired: statuses right
//! after it, and STATUS_CHANGED → EXPIRED events for one `expired_after`
//! (the restart grace) while the agents reconnect. Both must show zero.
//!
//! The registry runs with a short liveness ladder (interval 2 s, degraded 6 s,
//! expired 10 s; smoke: 500 ms / 1.5 s / 3 s) so that one `expired_after`
//! fits in a short run; the grace logic does not depend on the values.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{AgentStatus, EventType, ListAgentsRequest, WatchRequest};
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::run_tag;
use crate::report::{Report, Row};
use crate::stats::Latency;
use crate::target::RegistryTarget;

use super::Ctx;

/// The agents of the run, and how long a silent one takes to expire.
struct Stored<'a> {
    agents: usize,
    prefix: &'a str,
    expired_after: Duration,
}

/// Statuses of the agents of one run.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Census {
    pub total: u64,
    pub healthy: u64,
    pub degraded: u64,
    pub expired: u64,
    pub revision: u64,
}

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let (ladder, expired_after) = if options.smoke {
        (["500ms", "1500ms", "3s"], Duration::from_secs(3))
    } else {
        (["2s", "6s", "10s"], Duration::from_secs(10))
    };
    let args: Vec<String> = [
        "--heartbeat-interval",
        ladder[0],
        "--degraded-after",
        ladder[1],
        "--expired-after",
        ladder[2],
    ]
    .map(String::from)
    .into();
    let agents = options.sizes(&options.agents, &[10_000], &[100])[0];
    let mut target = ctx.target(&args).await?;
    let tag = run_tag();
    let connections = options.connections_for(agents, 4);
    let population = ctx.populate(&target, "rs", &tag, agents, connections).await?;
    let prefix = format!("bench-rs-{tag}-");
    let stored = Stored { agents, prefix: &prefix, expired_after };
    for kill in [false, true] {
        report.rows.push(restarts(ctx, &mut target, &stored, kill).await?);
    }
    let reconnects = population.fleet.counters.reconnects.load(Ordering::Relaxed);
    population.fleet.stop().await;
    report.note(format!(
        "restart: liveness ladder {} / {} / {} (interval / degraded / expired); agents keep \
         heartbeating and reconnect with jittered backoff ({reconnects} stream reconnects); \
         expired_by_restart counts EXPIRED statuses right after the restart, EXPIRED events \
         during one expired_after, and EXPIRED statuses at its end (must be 0)",
        ladder[0], ladder[1], ladder[2]
    ));
    target.shutdown().await;
    Ok(())
}

/// `--iterations` restarts after SIGTERM (or SIGKILL when `kill`): one row.
async fn restarts(
    ctx: &Ctx<'_>,
    target: &mut RegistryTarget,
    stored: &Stored<'_>,
    kill: bool,
) -> BenchResult<Row> {
    let options = ctx.options;
    let iterations = options.iterations.unwrap_or(if options.smoke { 1 } else { 2 });
    let signal = if kill { "SIGKILL" } else { "SIGTERM" };
    let (mut serving, mut stops) = (Latency::new(), Latency::new());
    let (mut expired, mut degraded, mut lost) = (0u64, 0u64, 0u64);
    for round in 0..iterations {
        ctx.progress.say(format!("{signal} #{}: stopping the registry", round + 1));
        stops.record(target.stop_process(kill).await?);
        let restarted = target.restart().await?;
        serving.record(restarted.to_serving);
        let restart_at = Instant::now() - restarted.to_serving;
        let channel = crate::helpers::connect(&target.addr).await?;
        let first = census(&channel, "bench-rs", stored.prefix).await?;
        ctx.progress.say(format!(
            "serving {:.0} ms after exec; {} agents, {} degraded, {} expired",
            restarted.to_serving.as_secs_f64() * 1000.0,
            first.total,
            first.degraded,
            first.expired
        ));
        lost += (stored.agents as u64).saturating_sub(first.total);
        let window_end = restart_at + stored.expired_after;
        let events = watch_expiries(&channel, first.revision, stored.prefix, window_end).await?;
        let after = census(&channel, "bench-rs", stored.prefix).await?;
        expired += (first.expired + events.expired).max(after.expired);
        degraded = degraded.max(first.degraded + events.degraded);
    }
    let case = format!("restart after {signal}, {} agents: exec → serving", stored.agents);
    let mut row = Row::samples(case, &serving)
        .with("expired_by_restart", expired)
        .with("degraded_events", degraded)
        .with_registry(target.stats());
    if lost > 0 {
        row = row.with("agents_lost", lost);
    }
    if !kill && let Some(stop) = stops.summary() {
        row = row.with("sigterm_exit_ms", (stop.max_ms * 10.0).round() / 10.0);
    }
    Ok(row)
}

/// Statuses of the run's agents (named `name`, ids starting with `prefix`),
/// and the revision they reflect.
pub(super) async fn census(channel: &Channel, name: &str, prefix: &str) -> BenchResult<Census> {
    let mut client = RegistryServiceClient::new(channel.clone());
    let mut census = Census::default();
    let mut page_token = String::new();
    for _ in 0..10_000 {
        let request = ListAgentsRequest {
            name: name.into(),
            page_size: 1000,
            page_token: page_token.clone(),
            ..ListAgentsRequest::default()
        };
        let page = client
            .list_agents(request)
            .await
            .map_err(|s| BenchError::rpc("listing the run's agents", s))?
            .into_inner();
        if census.revision == 0 {
            census.revision = page.revision;
        }
        for agent in page.agents.iter().filter(|a| a.id.starts_with(prefix)) {
            census.total += 1;
            match agent.status() {
                AgentStatus::Healthy => census.healthy += 1,
                AgentStatus::Degraded => census.degraded += 1,
                AgentStatus::Expired => census.expired += 1,
                _ => {}
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(census)
}

/// STATUS_CHANGED events of the run's agents from `revision` until `end`.
async fn watch_expiries(
    channel: &Channel,
    revision: u64,
    prefix: &str,
    end: Instant,
) -> BenchResult<Census> {
    let mut client = WatchServiceClient::new(channel.clone());
    let request = WatchRequest { since_revision: revision, ..WatchRequest::default() };
    let mut stream = client
        .watch(request)
        .await
        .map_err(|s| BenchError::rpc("watching after the restart", s))?
        .into_inner();
    let mut seen = Census::default();
    let end = tokio::time::Instant::from_std(end);
    loop {
        let message = match tokio::time::timeout_at(end, stream.message()).await {
            Err(_) => return Ok(seen),
            Ok(message) => message,
        };
        let event = match message {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(seen),
            Err(status) => return Err(BenchError::rpc("watch after the restart", status)),
        };
        if event.r#type != EventType::StatusChanged as i32 {
            continue;
        }
        let Some(agent) = event.agent.filter(|a| a.id.starts_with(prefix)) else { continue };
        match agent.status() {
            AgentStatus::Expired => seen.expired += 1,
            AgentStatus::Degraded => seen.degraded += 1,
            _ => {}
        }
    }
}
