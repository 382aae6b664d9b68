//! etcd (3.4) driven with the scenarios equivalent to ours, for
//! `bench/compare-etcd` (feature `etcd`: the etcd-client crate needs `protoc`).
//!
//! | ours | etcd |
//! |---|---|
//! | one heartbeat stream per agent | one lease per agent, one `LeaseKeepAlive` stream per lease |
//! | RegisterAgent (durable) | `Put` of a value the size of our registration (durable) |
//! | change → Watch at W watchers | `Put` → one watch stream per watcher on the key prefix |
//!
//! Streams are spread over the same number of HTTP/2 connections as ours,
//! one `etcd_client::Client` per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, WatchOptions};
use tokio_util::sync::CancellationToken;

use crate::error::{BenchError, BenchResult};
use crate::phase::{PhaseStats, Recorder, Window, closed_loop, hold, open_loop, wait_until};
use crate::report::{Report, Row};
use crate::{BenchOptions, Scenario};

use super::Driven;

/// Bytes of a value: exactly one encoded five-tool registration, as ours
/// sends it (so both sides write the same number of bytes per change).
pub fn value_bytes() -> usize {
    crate::fixture::registration_bytes()
}
/// Longest wait for every stream to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for the last puts to reach every watcher.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest unmeasured ramp before a fixed-rate phase.
const MAX_RAMP: Duration = Duration::from_secs(5);

fn etcd_error(what: &str, error: etcd_client::Error) -> BenchError {
    BenchError::Mcp(format!("etcd {what}: {error}"))
}

/// The scenario of `options` against the etcd at `driven.url`.
pub(crate) async fn run(
    options: &BenchOptions,
    driven: &Driven<'_>,
    report: &mut Report,
) -> BenchResult<()> {
    let length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    match options.scenario {
        Scenario::Heartbeat => {
            for leases in options.sizes(&options.agents, &[1000, 10_000], &[50]) {
                let clients = clients(driven.url, options.connections_for(leases, 4)).await?;
                keepalive(driven, &clients, leases, length, options.rate, report).await?;
            }
        }
        Scenario::Register => {
            for workers in options.sizes(&options.concurrency, &[64], &[4]) {
                let connections = options.connections.unwrap_or(workers.min(8));
                let clients = clients(driven.url, connections).await?;
                put(driven, &clients, workers, length, report).await;
            }
        }
        Scenario::WatchFanout => {
            for rate in options.watch_rates() {
                for watchers in options.sizes(&options.watchers, &[1, 100, 1000], &[3]) {
                    let clients =
                        clients(driven.url, options.connections_for(watchers * 10, 1)).await?;
                    watch(driven, &clients, watchers, rate, length, report).await?;
                }
            }
        }
        other => return Err(BenchError::Option(format!("--etcd: no {} scenario", other.name()))),
    }
    Ok(())
}

/// `connections` clients of the etcd at `endpoint`.
pub async fn clients(endpoint: &str, connections: usize) -> BenchResult<Vec<Client>> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let client =
            Client::connect([endpoint], None).await.map_err(|e| etcd_error("connect", e))?;
        clients.push(client);
    }
    Ok(clients)
}

/// Lease keep-alives: `leases` leases, each with its own keep-alive stream,
/// one keep-alive in flight per stream; saturated, then at `rate` per second
/// (default: half the saturated rate). Rows named like ours.
async fn keepalive(
    driven: &Driven<'_>,
    clients: &[Client],
    leases: usize,
    length: Duration,
    rate: Option<f64>,
    report: &mut Report,
) -> BenchResult<()> {
    driven.progress.say(format!("granting {leases} leases"));
    let mut ids = Vec::with_capacity(leases);
    for i in 0..leases {
        let mut client = clients[i % clients.len()].clone();
        let lease = client.lease_grant(60, None).await.map_err(|e| etcd_error("lease grant", e))?;
        ids.push(lease.id());
    }
    let label = format!("saturate, {leases} leases");
    let saturated = keepalive_phase(driven, clients, &ids, None, &label, length).await?;
    let rate = rate.unwrap_or((saturated.rate() * 0.5).max(1.0));
    let label = format!("{rate:.0} keep-alives/s, {leases} leases");
    let fixed = keepalive_phase(driven, clients, &ids, Some(rate), &label, length).await?;
    report.rows.push(
        Row::phase(format!("heartbeat saturate, {leases} agents"), &saturated)
            .with("connections", clients.len() as u64),
    );
    report.rows.push(
        Row::phase(format!("heartbeat at {rate:.0}/s, {leases} agents"), &fixed)
            .with("target_per_s", rate.round() as u64),
    );
    Ok(())
}

/// One phase: every lease's stream keeps one keep-alive in flight, paced at
/// `rate` in total when given (its first interval is a ramp, not measured).
async fn keepalive_phase(
    driven: &Driven<'_>,
    clients: &[Client],
    ids: &[i64],
    rate: Option<f64>,
    label: &str,
    length: Duration,
) -> BenchResult<PhaseStats> {
    let recorder = Arc::new(Recorder::paused());
    let ready = Arc::new(AtomicUsize::new(0));
    let (start, stop) = (CancellationToken::new(), CancellationToken::new());
    let every = rate.map(|r| Duration::from_secs_f64(ids.len() as f64 / r));
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(index, &id)| {
            let mut client = clients[index % clients.len()].clone();
            let (recorder, ready, start, stop) =
                (recorder.clone(), ready.clone(), start.clone(), stop.clone());
            tokio::spawn(async move {
                let Ok((mut keeper, mut stream)) = client.lease_keep_alive(id).await else {
                    return;
                };
                ready.fetch_add(1, Ordering::Relaxed);
                start.cancelled().await;
                let mut next = tokio::time::Instant::now()
                    + every.map_or(Duration::ZERO, |e| e.mul_f64(rand::random::<f64>()));
                while !stop.is_cancelled() {
                    if let Some(every) = every {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep_until(next) => {}
                        }
                        next = (next + every).max(tokio::time::Instant::now());
                    }
                    let sent = Instant::now();
                    if keeper.keep_alive().await.is_err() {
                        return;
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        answer = stream.message() => match answer {
                            Ok(Some(_)) => recorder.ok(index, sent.elapsed()),
                            _ => return,
                        },
                    }
                }
            })
        })
        .collect();
    let opened = wait_until("etcd keep-alive streams", &ready, ids.len(), OPEN_TIMEOUT).await;
    start.cancel();
    let _stop_streams = stop.clone().drop_guard();
    opened?;
    let ramp = every.map_or(Duration::ZERO, |e| e.min(MAX_RAMP));
    let stats = hold(&driven.plan(label, "acks", length), ramp, &recorder).await;
    stop.cancel();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, futures::future::join_all(tasks)).await;
    Ok(stats)
}

/// Durable puts: `workers` concurrent clients putting new keys back to back.
async fn put(
    driven: &Driven<'_>,
    connections: &[Client],
    workers: usize,
    length: Duration,
    report: &mut Report,
) {
    let tag = crate::fixture::run_tag();
    let value = vec![b'x'; value_bytes()];
    let label = format!("{workers} clients");
    let stats = closed_loop(&driven.plan(&label, "puts", length), workers, |worker| {
        let (client, tag, value) =
            (connections[worker % connections.len()].clone(), tag.clone(), value.clone());
        move |n: usize| {
            let (mut client, value) = (client.clone(), value.clone());
            let key = format!("/bench/reg/{tag}/{n}");
            Some(async move { client.put(key, value, None).await.is_ok() })
        }
    })
    .await;
    report.rows.push(
        Row::phase(format!("register (durable), {workers} clients"), &stats)
            .with("value_bytes", value_bytes() as u64)
            .with("connections", connections.len() as u64),
    );
}

/// Put → watch: `watchers` watch streams on a prefix; new keys put at `rate`
/// per second, each carrying its send time; every watcher records send →
/// receipt.
async fn watch(
    driven: &Driven<'_>,
    connections: &[Client],
    watchers: usize,
    rate: f64,
    length: Duration,
    report: &mut Report,
) -> BenchResult<()> {
    let prefix = format!("/bench/watch/{}/", crate::fixture::run_tag());
    let base = Instant::now();
    let deliveries = Arc::new(Recorder::new());
    let ready = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let tasks: Vec<_> = (0..watchers)
        .map(|index| {
            let client = connections[index % connections.len()].clone();
            let (deliveries, ready, stop) = (deliveries.clone(), ready.clone(), stop.clone());
            tokio::spawn(watcher(index, client, prefix.clone(), base, deliveries, ready, stop))
        })
        .collect();
    let _stop_watchers = stop.clone().drop_guard();
    wait_until("etcd watchers", &ready, watchers, Duration::from_secs(60)).await?;
    let window = Window::open(driven.server);
    // The same bytes as one of our change events.
    let value_bytes = crate::fixture::change_bytes();
    let changes = {
        let label = format!("{watchers} watchers, {rate:.0} puts/s");
        let _shown =
            driven.progress.phase(&label, "deliveries", Some(length), deliveries.counter());
        open_loop(rate, length, |n| {
            let mut value = format!("{};", base.elapsed().as_nanos()).into_bytes();
            value.resize(value_bytes, b'x');
            let (mut client, key) = (connections[0].clone(), format!("{prefix}{n}"));
            async move { client.put(key, value, None).await.map(drop).map_err(|e| etcd_error("put", e)) }
        })
        .await?
    };
    let expected = changes * watchers as u64;
    deliveries.reaches(expected, DRAIN_TIMEOUT).await;
    let mut stats = window.close(&deliveries);
    // Deliveries follow the puts: their rate is per second of puts.
    stats.seconds = length.as_secs_f64();
    stop.cancel();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, futures::future::join_all(tasks)).await;
    report.rows.push(
        Row::phase(format!("change → {watchers} watchers, {rate:.0}/s"), &stats)
            .with("changes", changes)
            .with("value_bytes", value_bytes as u64)
            .with("missing", expected.saturating_sub(stats.count())),
    );
    Ok(())
}

/// One etcd watcher on `prefix`: records send → receipt of every put.
async fn watcher(
    index: usize,
    mut client: Client,
    prefix: String,
    base: Instant,
    deliveries: Arc<Recorder>,
    ready: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let options = WatchOptions::new().with_prefix();
    let Ok(mut stream) = client.watch(prefix, Some(options)).await else { return };
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            message = stream.message() => message,
        };
        let Ok(Some(response)) = message else { return };
        if response.created() {
            ready.fetch_add(1, Ordering::Relaxed);
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let Some(sent) = std::str::from_utf8(&kv.value()[..kv.value().len().min(40)])
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|v| v.parse::<u128>().ok())
            else {
                continue;
            };
            let nanos = u64::try_from(base.elapsed().as_nanos().saturating_sub(sent));
            deliveries.ok(index, Duration::from_nanos(nanos.unwrap_or(u64::MAX)));
        }
    }
}
