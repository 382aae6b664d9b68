//! `heartbeat`: N registered agents, each with its own bidi heartbeat
//! stream. Phase 1 saturates (each agent sends its next heartbeat as soon as
//! the previous one is acked) and gives the acks/s the registry sustains;
//! phase 2 runs at a fixed total rate (`--rate`, default half the saturated
//! throughput) and gives the send → ack latency an agent sees under load.
//! The registry's write syscalls over both phases show that a heartbeat
//! never touches the disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_proto::v1::ListAgentsRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{agent_request, deregister_all, register_all, run_tag};
use crate::fleet::{Fleet, Mode, Phase};
use crate::procfs::{ProcessStats, WriteDelta};
use crate::report::{Report, Row};

use super::{Ctx, connections_for};

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.agents, &[1000, 10_000], &[50]);
    let phase_length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    for agents in sizes {
        let target = ctx.target(&[]).await?;
        let tag = run_tag();
        let connections = connections_for(options, agents, 4);
        let channels = target.channels(connections).await?;
        let requests: Vec<_> = (0..agents).map(|i| agent_request("hb", &tag, i)).collect();
        let ids: Vec<String> = requests.iter().map(|r| r.agent_id.clone()).collect();
        let done = Arc::new(AtomicU64::new(0));
        let registered = {
            let _shown = ctx.progress.phase(
                &format!("registering {agents} agents"),
                "registered",
                None,
                done.clone(),
            );
            register_all(&channels, requests, 64, || {
                done.fetch_add(1, Ordering::Relaxed);
            })
            .await?
        };
        let interval = registered
            .last
            .as_ref()
            .and_then(|r| r.heartbeat.as_ref())
            .and_then(|h| h.interval)
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or(Duration::from_secs(5));

        let registered_rss = target.stats().and_then(|s| s.rss_mb());
        let fleet = Fleet::start(ids.clone(), &channels, Mode::Every(interval))?;
        ctx.progress
            .say(format!("opening {agents} heartbeat streams over {connections} connections"));
        fleet.wait_ready(Duration::from_secs(120)).await?;
        let revision_before = revision(&channels[0]).await?;
        let before = target.stats();
        let me = std::process::id();
        let bench_before = ProcessStats::read(me);
        if let (Some(registered), Some(open)) = (registered_rss, before.and_then(|s| s.rss_mb())) {
            ctx.progress.say(format!(
                "registry RSS: {registered:.0} MB with {agents} agents registered, {open:.0} MB \
                 with their streams open"
            ));
        }

        // Phase 1: saturation.
        let saturate = Phase::new(Mode::Saturate);
        let stats = saturate.stats();
        let started = Instant::now();
        fleet.set_phase(saturate);
        {
            let label = format!("saturate, {agents} agents");
            let _shown = ctx.progress.phase(&label, "acks", Some(phase_length), stats.acks.clone());
            tokio::time::sleep(phase_length).await;
        }
        // Acks that arrive after the phase ended are left out of both figures.
        let saturated_latency = stats.latency.collect();
        let acks = saturated_latency.len();
        let seconds = started.elapsed().as_secs_f64();
        let rate = options.rate.unwrap_or((acks as f64 / seconds * 0.5).max(1.0));
        let middle = target.stats();
        let bench_middle = ProcessStats::read(me);

        // Phase 2: fixed rate; its first interval is a ramp (ticks are spread
        // over one interval), so it is not measured.
        let every = Duration::from_secs_f64(agents as f64 / rate).max(Duration::from_micros(100));
        fleet.set_phase(Phase::new(Mode::Every(every)));
        tokio::time::sleep(every.min(Duration::from_secs(5))).await;
        let fixed = Phase::new(Mode::Every(every));
        let fixed_stats = fixed.stats();
        let fixed_started = Instant::now();
        fleet.set_phase(fixed);
        {
            let label = format!("{rate:.0} heartbeats/s, {agents} agents");
            let _shown =
                ctx.progress.phase(&label, "acks", Some(phase_length), fixed_stats.acks.clone());
            tokio::time::sleep(phase_length).await;
        }
        let fixed_latency = fixed_stats.latency.collect();
        let fixed_acks = fixed_latency.len();
        let fixed_seconds = fixed_started.elapsed().as_secs_f64();
        let after = target.stats();
        let bench_after = ProcessStats::read(me);
        let revisions = revision(&channels[0]).await?.saturating_sub(revision_before);
        let cores = |a: &Option<ProcessStats>, b: &Option<ProcessStats>, wall: f64| match (a, b) {
            (Some(a), Some(b)) => b.cores_since(a, wall).map(|c| (c * 100.0).round() / 100.0),
            _ => None,
        };
        let writes = match (&before, &after) {
            (Some(b), Some(a)) => Some(WriteDelta::between(b, a)),
            _ => None,
        };

        let mut saturated = Row::new(
            format!("heartbeat saturate, {agents} agents"),
            acks,
            seconds,
            &saturated_latency,
        )
        .with("connections", connections as u64)
        .with("registry_revisions", revisions)
        .with_registry(middle);
        if let Some(registered) = registered_rss {
            saturated = saturated.with("rss_mb_registered_no_streams", registered.round() as u64);
        }
        // Saturation phase only (the registry stats above are read at its end).
        if let Some(c) = cores(&before, &middle, seconds) {
            saturated = saturated.with("registry_cores", c);
        }
        if let Some(c) = cores(&bench_before, &bench_middle, seconds) {
            saturated = saturated.with("loadgen_cores", c);
        }
        let mut at_rate = Row::new(
            format!("heartbeat at {rate:.0}/s, {agents} agents"),
            fixed_acks,
            fixed_seconds,
            &fixed_latency,
        )
        .with("target_per_s", rate.round() as u64)
        .with_registry(after);
        // Includes the unmeasured ramp before the fixed-rate phase: slightly low.
        let since_middle = fixed_seconds + every.min(Duration::from_secs(5)).as_secs_f64();
        if let Some(c) = cores(&middle, &after, since_middle) {
            at_rate = at_rate.with("registry_cores", c);
        }
        if let Some(c) = cores(&bench_middle, &bench_after, since_middle) {
            at_rate = at_rate.with("loadgen_cores", c);
        }
        if let Some(writes) = writes {
            // Bytes the registry sent to the block layer over both phases.
            saturated = saturated.with("registry_disk_bytes", writes.disk_bytes);
        }
        let reconnects = fleet.counters.reconnects.load(Ordering::Relaxed);
        if reconnects > 0 {
            saturated = saturated.with("stream_reconnects", reconnects);
        }
        report.rows.push(saturated);
        report.rows.push(at_rate);

        fleet.stop().await;
        if !target.is_spawned() {
            let failed = deregister_all(&channels[0], ids, 64).await;
            if failed > 0 {
                report.note(format!("{failed} benchmark agents could not be deregistered"));
            }
        }
        target.shutdown().await;
    }
    report.note(
        "registry_revisions = mutations recorded during both phases (0: a heartbeat changes \
         nothing durable)",
    );
    report.note(
        "heartbeat: one stream per agent, one heartbeat in flight per stream; latency = send → ack \
         of the same sequence; registry_disk_bytes = bytes the registry process wrote to the \
         block layer during both phases (/proc/<pid>/io write_bytes; 0 = no disk write per \
         heartbeat)",
    );
    Ok(())
}

/// The registry's current revision.
async fn revision(channel: &Channel) -> BenchResult<u64> {
    let request = ListAgentsRequest { page_size: 1, ..ListAgentsRequest::default() };
    let page = RegistryServiceClient::new(channel.clone())
        .list_agents(request)
        .await
        .map_err(|s| BenchError::rpc("reading the revision", s))?;
    Ok(page.into_inner().revision)
}
