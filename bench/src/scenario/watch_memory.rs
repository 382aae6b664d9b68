//! `watch-memory`: the registry's memory (RSS from `/proc`) under many
//! watchers, in the two cases where per-watcher copies used to multiply it.
//!
//! - `snapshot`: A agents × 5 tools (300), then W watchers (1000) opened at
//!   once from revision 0, each reading one message per `SLOW_READ` (a slow
//!   client, e.g. a Python one). Every watcher must end up either with the
//!   whole snapshot or ended with a resumable status.
//! - `degraded burst`: W idle watchers following the live stream, then B
//!   agents (200) stop heartbeating at once and turn DEGRADED together; every
//!   watcher must get all B status changes or be ended resumably.
//!
//! Each case runs on a fresh registry; the row's RSS is the registry's peak
//! (`VmHWM`) at the end, next to its RSS before the watchers opened. The
//! registry and this load generator share the machine's cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{AgentStatus, EventType, WatchRequest};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{agent_request, run_tag};
use crate::report::{Report, Row};
use crate::target::RegistryTarget;

use super::Ctx;

/// A slow reader's pause after each message.
const SLOW_READ: Duration = Duration::from_millis(20);
/// Longest wait for every watcher to be served or ended.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The trailer naming the revision to resume from.
const RESUME_KEY: &str = "switchboard-resume-revision";

/// How each watcher's stream went.
#[derive(Default)]
struct Outcomes {
    /// Got what it waited for (the snapshot's end, or every status change).
    served: AtomicUsize,
    /// Ended with a status carrying a resume revision.
    resumable: AtomicUsize,
    /// Ended any other way.
    failed: AtomicUsize,
    /// Messages received, all watchers.
    messages: AtomicU64,
}

impl Outcomes {
    fn settled(&self) -> usize {
        self.served.load(Ordering::Relaxed)
            + self.resumable.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
    }
}

/// What a watcher waits for.
#[derive(Clone, Copy)]
enum Goal {
    /// The end of the snapshot.
    Snapshot,
    /// This many DEGRADED status changes.
    Degraded(usize),
}

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let watchers = options.sizes(&options.watchers, &[1000], &[20])[0];
    let agents = options.sizes(&options.agents, &[300], &[10])[0];
    let burst = if options.smoke { 5 } else { 200 };
    report.rows.push(snapshot_case(ctx, watchers, agents).await?);
    report.rows.push(burst_case(ctx, watchers, burst).await?);
    report.note(format!(
        "watch-memory: registry RSS; slow watchers read one message per {} ms; agents have five \
         tools each; the registry and the watchers share the machine's cores",
        SLOW_READ.as_millis()
    ));
    Ok(())
}

/// W slow watchers from revision 0 on A agents.
async fn snapshot_case(ctx: &Ctx<'_>, watchers: usize, agents: usize) -> BenchResult<Row> {
    let target = ctx.target(&[]).await?;
    let tag = run_tag();
    let connections = ctx.options.connections_for(agents, 2);
    let population = ctx.populate(&target, "wm", &tag, agents, connections).await?;
    let before = target.stats();
    let request = WatchRequest::default();
    let started = Instant::now();
    let running = Running::start(&target, watchers, &request, Goal::Snapshot).await?;
    ctx.progress.say(format!("{watchers} slow watchers reading a snapshot of {agents} agents"));
    running.settle(watchers).await;
    let row = running.row(
        format!("{watchers} slow watchers from revision 0, {agents} agents"),
        started,
        before,
        &target,
    );
    running.stop().await;
    population.fleet.stop().await;
    target.shutdown().await;
    Ok(row)
}

/// W idle watchers, then B agents stop heartbeating at once.
async fn burst_case(ctx: &Ctx<'_>, watchers: usize, burst: usize) -> BenchResult<Row> {
    let (interval, degraded) = if ctx.options.smoke { ("500ms", "1s") } else { ("1s", "3s") };
    let args: Vec<String> =
        ["--heartbeat-interval", interval, "--degraded-after", degraded, "--expired-after", "10m"]
            .map(String::from)
            .into();
    let target = ctx.target(&args).await?;
    let tag = run_tag();
    let connections = ctx.options.connections_for(burst, 2);
    let population = ctx.populate(&target, "wd", &tag, burst, connections).await?;
    let driver = crate::helpers::connect(&target.addr).await?;
    let probe = RegistryServiceClient::new(driver)
        .register_agent(agent_request("wdprobe", &tag, 0))
        .await
        .map_err(|s| BenchError::rpc("registering the probe agent", s))?
        .into_inner();
    let request = WatchRequest {
        since_revision: probe.revision,
        store_epoch: probe.store_epoch,
        filter: None,
    };
    let running = Running::start(&target, watchers, &request, Goal::Degraded(burst)).await?;
    // Let every stream open before the burst.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = target.stats();
    ctx.progress.say(format!("{burst} agents stop heartbeating under {watchers} watchers"));
    let started = Instant::now();
    population.fleet.stop().await;
    running.settle(watchers).await;
    let row = running.row(
        format!("{burst} agents turn DEGRADED at once, {watchers} watchers"),
        started,
        before,
        &target,
    );
    running.stop().await;
    target.shutdown().await;
    Ok(row)
}

/// Watchers running until stopped.
struct Running {
    outcomes: Arc<Outcomes>,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

impl Running {
    async fn start(
        target: &RegistryTarget,
        count: usize,
        request: &WatchRequest,
        goal: Goal,
    ) -> BenchResult<Self> {
        // One connection per ten watchers: many clients, as in production.
        let channels = target.channels(count.div_ceil(10)).await?;
        let outcomes = Arc::new(Outcomes::default());
        let stop = CancellationToken::new();
        let tasks = (0..count)
            .map(|index| {
                let channel = channels[index % channels.len()].clone();
                let (request, outcomes, stop) = (request.clone(), outcomes.clone(), stop.clone());
                tokio::spawn(watch(channel, request, goal, outcomes, stop))
            })
            .collect();
        Ok(Self { outcomes, tasks, stop })
    }

    /// Waits until every watcher is served or ended, bounded.
    async fn settle(&self, count: usize) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while self.outcomes.settled() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn row(
        &self,
        case: String,
        started: Instant,
        before: Option<crate::procfs::ProcessStats>,
        target: &RegistryTarget,
    ) -> Row {
        let after = target.stats();
        let outcomes = &self.outcomes;
        let mut row = Row::new(
            case,
            outcomes.messages.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64(),
            &crate::stats::Latency::new(),
        )
        .with_registry(after)
        .with("served", outcomes.served.load(Ordering::Relaxed) as u64)
        .with("ended_resumably", outcomes.resumable.load(Ordering::Relaxed) as u64)
        .with("failed", outcomes.failed.load(Ordering::Relaxed) as u64);
        let mb = |kb: Option<u64>| kb.map(|kb| (kb as f64 / 102.4).round() / 10.0);
        if let Some(rss) = mb(before.and_then(|s| s.rss_kb)) {
            row = row.with("rss_before_mb", rss);
        }
        if let Some(peak) = mb(after.and_then(|s| s.peak_rss_kb)) {
            row = row.with("peak_rss_mb", peak);
        }
        row
    }

    async fn stop(mut self) {
        self.stop.cancel();
        let tasks = futures::future::join_all(std::mem::take(&mut self.tasks));
        let _ = tokio::time::timeout(Duration::from_secs(10), tasks).await;
    }
}

/// One slow watcher: reads until its goal, then keeps the stream open.
async fn watch(
    channel: Channel,
    request: WatchRequest,
    goal: Goal,
    outcomes: Arc<Outcomes>,
    stop: CancellationToken,
) {
    let mut client = WatchServiceClient::new(channel);
    let mut stream = tokio::select! {
        () = stop.cancelled() => return,
        opened = client.watch(request) => match opened {
            Ok(response) => response.into_inner(),
            Err(_) => {
                outcomes.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        },
    };
    let mut degraded = 0;
    let mut served = false;
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            message = stream.message() => message,
        };
        let event = match message {
            Ok(Some(event)) => event,
            Ok(None) => {
                if !served {
                    outcomes.failed.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Err(status) => {
                if !served {
                    let counter = if status.metadata().get(RESUME_KEY).is_some() {
                        &outcomes.resumable
                    } else {
                        &outcomes.failed
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        outcomes.messages.fetch_add(1, Ordering::Relaxed);
        let kind = EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified);
        let done = match goal {
            Goal::Snapshot => kind == EventType::EndOfSnapshot,
            Goal::Degraded(count) => {
                let is_degraded =
                    event.agent.as_ref().is_some_and(|a| a.status() == AgentStatus::Degraded);
                if kind == EventType::StatusChanged && is_degraded {
                    degraded += 1;
                }
                degraded >= count
            }
        };
        if done && !served {
            served = true;
            outcomes.served.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(SLOW_READ).await;
    }
}
