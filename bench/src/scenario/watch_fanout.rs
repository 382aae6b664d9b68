//! `watch-fanout`: W watchers, each with its own Watch stream (resumed from
//! the current revision, so no snapshot), while a driver registers new
//! agents at a fixed rate. Each change carries its send time in a label;
//! every watcher records send → receipt, so the figures include the durable
//! write and the fan-out to all W. With `--agents N`, N background agents
//! (five tools each, heartbeating on streams) are registered first: that is
//! the memory target's setup (10k agents × 5 tools, 1k watchers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{EventType, WatchRequest};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{SENT_LABEL, agent_id, agent_request, deregister_all, register_all, run_tag};
use crate::fleet::{Fleet, Mode};
use crate::report::{Report, Row};
use crate::stats::SharedLatency;

use super::{Ctx, connections_for};

/// Label of the warm-up change every watcher must see before measuring.
const SYNC_LABEL: &str = "bench.sync";

/// Counters shared by the watchers.
#[derive(Default)]
struct Fanout {
    latency: SharedLatency,
    deliveries: Arc<AtomicU64>,
    synced: AtomicU64,
    ended: AtomicU64,
}

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.watchers, &[1, 100, 1000], &[3]);
    let background = options.agents.first().copied().unwrap_or(0);
    let rate = options.rate.unwrap_or(20.0);
    let phase_length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    for watchers in sizes {
        let target = ctx.target(&[]).await?;
        let tag = run_tag();
        let driver = target.channels(1).await?;
        let mut created: Vec<String> = Vec::new();

        let fleet = if background > 0 {
            let requests: Vec<_> = (0..background).map(|i| agent_request("bg", &tag, i)).collect();
            let ids: Vec<String> = requests.iter().map(|r| r.agent_id.clone()).collect();
            let channels = target.channels(connections_for(options, background, 2)).await?;
            let done = Arc::new(AtomicU64::new(0));
            {
                let label = format!("registering {background} background agents");
                let _shown = ctx.progress.phase(&label, "registered", None, done.clone());
                register_all(&channels, requests, 64, || {
                    done.fetch_add(1, Ordering::Relaxed);
                })
                .await?;
            }
            let fleet = Fleet::start(ids.clone(), &channels, Mode::Every(Duration::from_secs(5)))?;
            fleet.wait_ready(Duration::from_secs(120)).await?;
            created.extend(ids);
            Some(fleet)
        } else {
            None
        };

        // Where the watchers start: the revision of a probe registration.
        let mut registry = RegistryServiceClient::new(driver[0].clone());
        let probe = registry
            .register_agent(agent_request("wprobe", &tag, 0))
            .await
            .map_err(|s| BenchError::rpc("registering the probe agent", s))?
            .into_inner();
        created.push(probe.agent_id.clone());

        let connections = connections_for(options, watchers * 10, 1);
        let channels = target.channels(connections).await?;
        let fanout = Arc::new(Fanout::default());
        let stop = CancellationToken::new();
        let base = Instant::now();
        let tasks: Vec<JoinHandle<()>> = (0..watchers)
            .map(|index| {
                let request = WatchRequest {
                    since_revision: probe.revision,
                    store_epoch: probe.store_epoch.clone(),
                    filter: None,
                };
                tokio::spawn(watch(
                    index,
                    channels[index % connections].clone(),
                    request,
                    fanout.clone(),
                    base,
                    stop.clone(),
                ))
            })
            .collect();

        // Warm-up: one change every watcher must receive.
        let mut sync = agent_request("wsync", &tag, 0);
        sync.labels.insert(SYNC_LABEL.into(), "1".into());
        created.push(sync.agent_id.clone());
        registry.register_agent(sync).await.map_err(|s| BenchError::rpc("warm-up change", s))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while fanout.synced.load(Ordering::Relaxed) < watchers as u64 {
            if Instant::now() > deadline {
                stop.cancel();
                return Err(BenchError::timeout(
                    format!(
                        "{watchers} watchers to see the warm-up change ({} did)",
                        fanout.synced.load(Ordering::Relaxed)
                    ),
                    Duration::from_secs(60),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Measured: changes at `rate` per second.
        let changes = {
            let label = format!("{watchers} watchers, {rate:.0} changes/s");
            let _shown = ctx.progress.phase(
                &label,
                "deliveries",
                Some(phase_length),
                fanout.deliveries.clone(),
            );
            drive(&mut registry, &tag, rate, phase_length, base, &mut created).await?
        };
        let expected = changes * watchers as u64;
        let drain_deadline = Instant::now() + Duration::from_secs(10);
        while fanout.deliveries.load(Ordering::Relaxed) < expected
            && Instant::now() < drain_deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivered = fanout.deliveries.load(Ordering::Relaxed);
        let mut row = Row::new(
            format!("change → {watchers} watchers"),
            delivered,
            phase_length.as_secs_f64(),
            &fanout.latency.collect(),
        )
        .with("changes", changes)
        .with("missing", expected.saturating_sub(delivered))
        .with_registry(target.stats());
        if background > 0 {
            row = row.with("background_agents", background as u64);
        }
        let ended = fanout.ended.load(Ordering::Relaxed);
        if ended > 0 {
            row = row.with("watchers_ended", ended);
        }
        report.rows.push(row);

        stop.cancel();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(tasks)).await;
        if let Some(fleet) = fleet {
            fleet.stop().await;
        }
        if !target.is_spawned() {
            deregister_all(&driver[0], created, 64).await;
        }
        target.shutdown().await;
    }
    report.note(format!(
        "watch-fanout: new agents registered at {rate:.0}/s; latency = RegisterAgent sent → event \
         received, at every watcher (includes the durable write)"
    ));
    Ok(())
}

/// Registers one new agent every `1/rate` s for `length`; returns how many.
async fn drive(
    registry: &mut RegistryServiceClient<Channel>,
    tag: &str,
    rate: f64,
    length: Duration,
    base: Instant,
    created: &mut Vec<String>,
) -> BenchResult<u64> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + length;
    let mut count = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let mut request = agent_request("wchg", tag, count as usize);
        let sent = base.elapsed().as_nanos().to_string();
        request.labels.insert(SENT_LABEL.into(), sent);
        registry.register_agent(request).await.map_err(|s| BenchError::rpc("change", s))?;
        created.push(agent_id("wchg", tag, count as usize));
        count += 1;
    }
    Ok(count)
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
    let mut client = WatchServiceClient::new(channel);
    let mut stream = tokio::select! {
        () = stop.cancelled() => return,
        opened = client.watch(request) => match opened {
            Ok(response) => response.into_inner(),
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
            fanout.latency.record(index, Duration::from_nanos(nanos));
            fanout.deliveries.fetch_add(1, Ordering::Relaxed);
        } else if agent.labels.contains_key(SYNC_LABEL) {
            fanout.synced.fetch_add(1, Ordering::Relaxed);
        }
    }
}
