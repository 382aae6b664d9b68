//! `watch-fanout`: W watchers, each with its own Watch stream (resumed from
//! the current revision, so no snapshot), while a driver registers new
//! agents at a fixed rate. Each change carries its send time in a label;
//! every watcher records send → receipt, so the figures include the durable
//! write and the fan-out to all W. With `--agents N`, N background agents
//! (five tools each, heartbeating on streams) are registered first: that is
//! the memory target's setup (10k agents × 5 tools, 1k watchers). Watchers
//! decode only the event type and the agent's labels (see `lean`), as the
//! etcd watchers read only their value's prefix.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{EventType, WatchRequest};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{SENT_LABEL, agent_id, agent_request, deregister_all, run_tag};
use crate::phase::{Recorder, Window, open_loop, wait_until};
use crate::report::{Report, Row};
use crate::target::RegistryTarget;

use super::Ctx;

mod lean;

/// Label of the warm-up change every watcher must see before measuring.
const SYNC_LABEL: &str = "bench.sync";
/// Longest wait for every watcher to see the warm-up change.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the last changes to reach every watcher.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters shared by the watchers.
#[derive(Default)]
struct Fanout {
    deliveries: Recorder,
    synced: AtomicUsize,
    ended: AtomicU64,
}

/// Running watchers; stopped when dropped.
struct Watchers {
    fanout: Arc<Fanout>,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

/// One case's settings.
#[derive(Clone, Copy)]
struct Case {
    watchers: usize,
    background: usize,
    rate: f64,
    length: Duration,
}

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let background = options.agents.first().copied().unwrap_or(0);
    let rates = options.watch_rates();
    let length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    for &rate in &rates {
        for watchers in options.sizes(&options.watchers, &[1, 100, 1000], &[3]) {
            let target = ctx.target(&[]).await?;
            let case = Case { watchers, background, rate, length };
            report.rows.push(measure(ctx, &target, case).await?);
            target.shutdown().await;
        }
    }
    let rates: Vec<String> = rates.iter().map(|rate| format!("{rate:.0}/s")).collect();
    report.note(format!(
        "watch-fanout: new five-tool agents registered at {}; latency = RegisterAgent sent → \
         event received, at every watcher (includes the durable write); `write_p99_ms` is the \
         registrations' own latency; the registry and the watchers share the machine's cores",
        rates.join(" and ")
    ));
    Ok(())
}

/// One case: background agents, watchers from the current revision, a
/// warm-up change, then timed changes at `case.rate`.
async fn measure(ctx: &Ctx<'_>, target: &RegistryTarget, case: Case) -> BenchResult<Row> {
    let Case { watchers, background, rate, length } = case;
    let tag = run_tag();
    let driver = crate::helpers::connect(&target.addr).await?;
    let population = if background > 0 {
        let connections = ctx.options.connections_for(background, 2);
        Some(ctx.populate(target, "bg", &tag, background, connections).await?)
    } else {
        None
    };
    let mut created: Vec<String> = population.iter().flat_map(|p| p.ids.clone()).collect();
    let base = Instant::now();
    let watching = in_sync(ctx, target, &driver, &tag, watchers, base, &mut created).await?;
    let fanout = watching.fanout.clone();
    let registry = RegistryServiceClient::new(driver.clone());

    let window = Window::open(target.pid());
    let writes = Arc::new(Recorder::new());
    let mut in_flight = Vec::new();
    let changes = {
        let label = format!("{watchers} watchers, {rate:.0} changes/s");
        let counter = fanout.deliveries.counter();
        let _shown = ctx.progress.phase(&label, "deliveries", Some(length), counter);
        // Each write runs on its own task: a slow write must not lower the
        // rate (that would hide what slows it).
        open_loop(rate, length, |n| {
            let mut request = agent_request("wchg", &tag, n as usize);
            request.labels.insert(SENT_LABEL.into(), base.elapsed().as_nanos().to_string());
            created.push(agent_id("wchg", &tag, n as usize));
            let mut registry = registry.clone();
            let writes = writes.clone();
            let index = n as usize;
            in_flight.push(tokio::spawn(async move {
                let started = Instant::now();
                match registry.register_agent(request).await {
                    Ok(_) => writes.ok(index, started.elapsed()),
                    Err(_) => writes.failed(),
                }
            }));
            async { Ok(()) }
        })
        .await?
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, futures::future::join_all(in_flight)).await;
    let expected = changes * watchers as u64;
    fanout.deliveries.reaches(expected, DRAIN_TIMEOUT).await;
    let mut stats = window.close(&fanout.deliveries);
    // Deliveries follow the changes: their rate is per second of changes.
    stats.seconds = length.as_secs_f64();
    let mut row = Row::phase(format!("change → {watchers} watchers, {rate:.0}/s"), &stats)
        .with("changes", changes)
        .with("missing", expected.saturating_sub(stats.count()));
    let written = Window::open(None).close(&writes);
    if let Some(summary) = written.latency.summary() {
        row = row.with("write_p50_ms", summary.p50_ms).with("write_p99_ms", summary.p99_ms);
    }
    if written.errors > 0 {
        row = row.with("write_errors", written.errors);
    }
    if background > 0 {
        row = row.with("background_agents", background as u64);
    }
    let ended = fanout.ended.load(Ordering::Relaxed);
    if ended > 0 {
        row = row.with("watchers_ended", ended);
    }

    watching.stop().await;
    if let Some(population) = population {
        population.fleet.stop().await;
    }
    if !target.is_spawned() {
        deregister_all(&driver, created, 64).await;
    }
    Ok(row)
}

/// `watchers` watchers from the current revision (that of a probe
/// registration, so no snapshot), once every one saw a warm-up change.
async fn in_sync(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    driver: &Channel,
    tag: &str,
    watchers: usize,
    base: Instant,
    created: &mut Vec<String>,
) -> BenchResult<Watchers> {
    let mut registry = RegistryServiceClient::new(driver.clone());
    let probe = registry
        .register_agent(agent_request("wprobe", tag, 0))
        .await
        .map_err(|s| BenchError::rpc("registering the probe agent", s))?
        .into_inner();
    created.push(probe.agent_id.clone());
    let request = WatchRequest {
        since_revision: probe.revision,
        store_epoch: probe.store_epoch.clone(),
        filter: None,
    };
    let connections = ctx.options.connections_for(watchers * 10, 1);
    let channels = target.channels(connections).await?;
    let watching = Watchers::start(watchers, &channels, &request, base);
    let mut sync = agent_request("wsync", tag, 0);
    sync.labels.insert(SYNC_LABEL.into(), "1".into());
    created.push(sync.agent_id.clone());
    registry.register_agent(sync).await.map_err(|s| BenchError::rpc("warm-up change", s))?;
    let synced = &watching.fanout.synced;
    wait_until("watchers to see the warm-up change", synced, watchers, SYNC_TIMEOUT).await?;
    Ok(watching)
}

// === impl Watchers ===

impl Watchers {
    /// `count` watchers sending `request`, spread over `channels`; latencies
    /// are measured against `base`.
    fn start(count: usize, channels: &[Channel], request: &WatchRequest, base: Instant) -> Self {
        let fanout = Arc::new(Fanout::default());
        let stop = CancellationToken::new();
        let tasks = (0..count)
            .map(|index| {
                let channel = channels[index % channels.len()].clone();
                let (request, fanout, stop) = (request.clone(), fanout.clone(), stop.clone());
                tokio::spawn(watch(index, channel, request, fanout, base, stop))
            })
            .collect();
        Self { fanout, tasks, stop }
    }

    /// Ends every stream and waits for the tasks, bounded.
    async fn stop(mut self) {
        self.stop.cancel();
        let tasks = futures::future::join_all(std::mem::take(&mut self.tasks));
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, tasks).await;
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One watcher: records the latency of every timed change it receives.
async fn watch(
    index: usize,
    channel: Channel,
    request: WatchRequest,
    fanout: Arc<Fanout>,
    base: Instant,
    stop: CancellationToken,
) {
    let mut stream = tokio::select! {
        () = stop.cancelled() => return,
        opened = lean::watch(channel, request) => match opened {
            Ok(stream) => stream,
            Err(_) => {
                fanout.ended.fetch_add(1, Ordering::Relaxed);
                return;
            }
        },
    };
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            message = stream.message() => message,
        };
        let event = match message {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => {
                fanout.ended.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if event.r#type != EventType::Added as i32 {
            continue;
        }
        let Some(agent) = event.agent else { continue };
        if let Some(sent) = agent.labels.get(SENT_LABEL).and_then(|s| s.parse::<u128>().ok()) {
            let now = base.elapsed().as_nanos();
            let nanos = u64::try_from(now.saturating_sub(sent)).unwrap_or(u64::MAX);
            fanout.deliveries.ok(index, Duration::from_nanos(nanos));
        } else if agent.labels.contains_key(SYNC_LABEL) {
            fanout.synced.fetch_add(1, Ordering::Relaxed);
        }
    }
}
