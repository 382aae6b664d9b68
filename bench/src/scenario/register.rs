//! `register`: C concurrent clients, each registering new agents (five
//! tools each) back to back for the phase; every call is acknowledged only
//! once durable, so this measures group commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;

use crate::error::BenchResult;
use crate::fixture::{TOOLS_PER_AGENT, agent_id, agent_request, deregister_all, run_tag};
use crate::report::{Report, Row};
use crate::stats::SharedLatency;

use super::Ctx;

/// Most registrations of one case, whatever the duration.
const MAX_REGISTRATIONS: usize = 2_000_000;

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.concurrency, &[64], &[4]);
    let phase_length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    for clients in sizes {
        let target = ctx.target(&[]).await?;
        let tag = run_tag();
        let connections = options.connections.unwrap_or(clients.min(8));
        let channels = target.channels(connections).await?;
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let latency = Arc::new(SharedLatency::new());
        let started = Instant::now();
        let deadline = started + phase_length;
        let workers: Vec<_> = (0..clients)
            .map(|worker| {
                let mut client = RegistryServiceClient::new(channels[worker % connections].clone());
                let (next, done, errors, latency, tag) =
                    (next.clone(), done.clone(), errors.clone(), latency.clone(), tag.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= MAX_REGISTRATIONS {
                            return;
                        }
                        let request = agent_request("reg", &tag, index);
                        let sent = Instant::now();
                        match client.register_agent(request).await {
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
            let label = format!("{clients} clients");
            let _shown =
                ctx.progress.phase(&label, "registrations", Some(phase_length), done.clone());
            for worker in workers {
                let _ = worker.await;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let count = done.load(Ordering::Relaxed);
        let mut row = Row::new(
            format!("register (durable), {clients} clients"),
            count,
            seconds,
            &latency.collect(),
        )
        .with("tools_per_agent", TOOLS_PER_AGENT as u64)
        .with("connections", connections as u64)
        .with_registry(target.stats());
        let failed = errors.load(Ordering::Relaxed);
        if failed > 0 {
            row = row.with("errors", failed);
        }
        report.rows.push(row);
        if !target.is_spawned() {
            let issued = next.load(Ordering::Relaxed).min(MAX_REGISTRATIONS);
            let ids = (0..issued).map(|i| agent_id("reg", &tag, i)).collect();
            ctx.progress.say(format!("deregistering {issued} benchmark agents"));
            let cleanup = deregister_all(&channels[0], ids, clients);
            if tokio::time::timeout(Duration::from_secs(120), cleanup).await.is_err() {
                report.note("cleanup: deregistering the benchmark agents took over 120 s; stopped");
            }
        }
        target.shutdown().await;
    }
    report.note(
        "register: each call registers a new agent with 5 tools (schema, description, tags, one \
         dependency) and returns once the write is flushed to disk",
    );
    Ok(())
}
