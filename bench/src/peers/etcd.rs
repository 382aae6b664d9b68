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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, WatchOptions};
use tokio_util::sync::CancellationToken;

use crate::error::{BenchError, BenchResult};
use crate::progress::Progress;
use crate::report::{Report, Row};
use crate::stats::SharedLatency;

/// Bytes of a value: about one encoded five-tool registration.
pub const VALUE_BYTES: usize = 1500;

fn etcd_error(what: &str, error: etcd_client::Error) -> BenchError {
    BenchError::Mcp(format!("etcd {what}: {error}"))
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
pub async fn keepalive(
    clients: &[Client],
    leases: usize,
    length: Duration,
    rate: Option<f64>,
    progress: &Progress,
    report: &mut Report,
) -> BenchResult<()> {
    progress.say(format!("granting {leases} leases"));
    let mut ids = Vec::with_capacity(leases);
    for i in 0..leases {
        let mut client = clients[i % clients.len()].clone();
        let lease = client.lease_grant(60, None).await.map_err(|e| etcd_error("lease grant", e))?;
        ids.push(lease.id());
    }
    let saturate = run_keepalive_phase(clients, &ids, None, length, progress).await?;
    let rate = rate.unwrap_or((saturate.0 as f64 / saturate.1 * 0.5).max(1.0));
    let fixed = run_keepalive_phase(clients, &ids, Some(rate), length, progress).await?;
    report.rows.push(
        Row::new(
            format!("heartbeat saturate, {leases} agents"),
            saturate.0,
            saturate.1,
            &saturate.2.collect(),
        )
        .with("connections", clients.len() as u64),
    );
    report.rows.push(
        Row::new(
            format!("heartbeat at {rate:.0}/s, {leases} agents"),
            fixed.0,
            fixed.1,
            &fixed.2.collect(),
        )
        .with("target_per_s", rate.round() as u64),
    );
    Ok(())
}

/// One phase: every lease's stream keeps one keep-alive in flight, paced at
/// `rate` in total when given. Returns (acks, seconds, latency).
async fn run_keepalive_phase(
    clients: &[Client],
    ids: &[i64],
    rate: Option<f64>,
    length: Duration,
    progress: &Progress,
) -> BenchResult<(u64, f64, Arc<SharedLatency>)> {
    let latency = Arc::new(SharedLatency::new());
    let acks = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicUsize::new(0));
    let start = CancellationToken::new();
    let stop = CancellationToken::new();
    let every = rate.map(|r| Duration::from_secs_f64(ids.len() as f64 / r));
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(index, &id)| {
            let mut client = clients[index % clients.len()].clone();
            let (latency, acks, ready, start, stop) =
                (latency.clone(), acks.clone(), ready.clone(), start.clone(), stop.clone());
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
                            Ok(Some(_)) => {}
                            _ => return,
                        },
                    }
                    if !stop.is_cancelled() {
                        latency.record(index, sent.elapsed());
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::Relaxed) < ids.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.cancel();
    {
        let label = match rate {
            Some(r) => format!("{r:.0} keep-alives/s, {} leases", ids.len()),
            None => format!("saturate, {} leases", ids.len()),
        };
        let _shown = progress.phase(&label, "acks", Some(length), acks.clone());
        // The fixed-rate phase's first interval is a ramp: not measured.
        if let Some(every) = every {
            tokio::time::sleep(every.min(Duration::from_secs(5))).await;
        }
        let measured_from = (acks.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(length).await;
        stop.cancel();
        let count = acks.load(Ordering::Relaxed) - measured_from.0;
        let seconds = measured_from.1.elapsed().as_secs_f64();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(tasks)).await;
        Ok((count, seconds, latency))
    }
}

/// Durable puts: `clients` concurrent clients putting new keys back to back.
pub async fn put(
    connections: &[Client],
    clients: usize,
    length: Duration,
    progress: &Progress,
    report: &mut Report,
) -> BenchResult<()> {
    let tag = crate::fixture::run_tag();
    let value = vec![b'x'; VALUE_BYTES];
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(SharedLatency::new());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + length;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let mut client = connections[worker % connections.len()].clone();
            let (done, errors, latency, next, tag, value) = (
                done.clone(),
                errors.clone(),
                latency.clone(),
                next.clone(),
                tag.clone(),
                value.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let key = format!("/bench/reg/{tag}/{}", next.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    match client.put(key, value.clone(), None).await {
                        Ok(_) => {
                            latency.record(worker, sent.elapsed());
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    {
        let _shown =
            progress.phase(&format!("{clients} clients"), "puts", Some(length), done.clone());
        for worker in workers {
            let _ = worker.await;
        }
    }
    let mut row = Row::new(
        format!("register (durable), {clients} clients"),
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        &latency.collect(),
    )
    .with("value_bytes", VALUE_BYTES as u64)
    .with("connections", connections.len() as u64);
    let failed = errors.load(Ordering::Relaxed);
    if failed > 0 {
        row = row.with("errors", failed);
    }
    report.rows.push(row);
    Ok(())
}

/// Put → watch: `watchers` watch streams on a prefix; new keys put at `rate`
/// per second, each carrying its send time; every watcher records send →
/// receipt.
pub async fn watch(
    connections: &[Client],
    watchers: usize,
    rate: f64,
    length: Duration,
    progress: &Progress,
    report: &mut Report,
) -> BenchResult<()> {
    let tag = crate::fixture::run_tag();
    let prefix = format!("/bench/watch/{tag}/");
    let base = Instant::now();
    let latency = Arc::new(SharedLatency::new());
    let deliveries = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicUsize::new(0));
    let stop = CancellationToken::new();
    let tasks: Vec<_> = (0..watchers)
        .map(|index| {
            let mut client = connections[index % connections.len()].clone();
            let (latency, deliveries, ready, stop, prefix) =
                (latency.clone(), deliveries.clone(), ready.clone(), stop.clone(), prefix.clone());
            tokio::spawn(async move {
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
                        let Some(sent) =
                            std::str::from_utf8(&kv.value()[..kv.value().len().min(40)])
                                .ok()
                                .and_then(|v| v.split(';').next())
                                .and_then(|v| v.parse::<u128>().ok())
                        else {
                            continue;
                        };
                        let now = base.elapsed().as_nanos();
                        let nanos = u64::try_from(now.saturating_sub(sent)).unwrap_or(u64::MAX);
                        latency.record(index, Duration::from_nanos(nanos));
                        deliveries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < watchers {
        if Instant::now() > deadline {
            stop.cancel();
            return Err(BenchError::timeout(
                format!("{watchers} etcd watchers"),
                Duration::from_secs(60),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut client = connections[0].clone();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + length;
    let mut changes = 0u64;
    {
        let label = format!("{watchers} watchers, {rate:.0} puts/s");
        let _shown = progress.phase(&label, "deliveries", Some(length), deliveries.clone());
        while Instant::now() < end {
            tick.tick().await;
            let mut value = format!("{};", base.elapsed().as_nanos()).into_bytes();
            value.resize(VALUE_BYTES, b'x');
            client
                .put(format!("{prefix}{changes}"), value, None)
                .await
                .map_err(|e| etcd_error("put", e))?;
            changes += 1;
        }
    }
    let expected = changes * watchers as u64;
    let drain = Instant::now() + Duration::from_secs(10);
    while deliveries.load(Ordering::Relaxed) < expected && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(tasks)).await;
    let delivered = deliveries.load(Ordering::Relaxed);
    report.rows.push(
        Row::new(
            format!("change → {watchers} watchers"),
            delivered,
            length.as_secs_f64(),
            &latency.collect(),
        )
        .with("changes", changes)
        .with("missing", expected.saturating_sub(delivered)),
    );
    Ok(())
}
