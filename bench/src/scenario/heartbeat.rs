//! `heartbeat`: N registered agents, each with its own bidi heartbeat
//! stream. Phase 1 saturates (each agent sends its next heartbeat as soon as
//! the previous one is acked) and gives the acks/s the registry sustains;
//! phase 2 runs at a fixed total rate (`--rate`, default half the saturated
//! throughput) and gives the send → ack latency an agent sees under load.
//! The registry's write syscalls over both phases show that a heartbeat
//! never touches the disk.

use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_proto::v1::ListAgentsRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{deregister_all, run_tag};
use crate::fleet::{Fleet, Mode, Phase};
use crate::phase::{PhaseStats, hold};
use crate::procfs::WriteDelta;
use crate::report::{Report, Row};
use crate::target::RegistryTarget;

use super::{Ctx, Population};

/// Longest unmeasured ramp before the fixed-rate phase.
const MAX_RAMP: Duration = Duration::from_secs(5);
/// etcd's write counters are "settled" when they hold this long...
const ETCD_QUIET: Duration = Duration::from_millis(500);
/// ...or after this long at most (claims trailing the streams' binding).
const ETCD_SETTLE: Duration = Duration::from_secs(15);

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.agents, &[1000, 10_000], &[50]);
    let length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    for agents in sizes {
        let target = ctx.target(&[]).await?;
        let connections = options.connections_for(agents, 4);
        let population = ctx.populate(&target, "hb", &run_tag(), agents, connections).await?;
        report.rows.extend(measure(ctx, &target, &population, length).await?);
        population.fleet.stop().await;
        if !target.is_spawned() {
            let failed = deregister_all(&population.channels[0], population.ids, 64).await;
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
    if options.replicas.is_some() {
        report.note(
            "etcd_puts / etcd_txns / etcd_deletes = etcd_mvcc_{put,txn,delete}_total summed over \
             every etcd member, from after registration and stream binding (counters settled) to \
             the end of both phases (0: a heartbeat writes nothing to etcd)",
        );
    }
    report.note(
        "heartbeat: one stream per agent, one heartbeat in flight per stream; latency = send → ack \
         of the same sequence; registry_disk_bytes = bytes the registry process wrote to the \
         block layer during both phases (/proc/<pid>/io write_bytes; 0 = no disk write per \
         heartbeat)",
    );
    Ok(())
}

/// Both phases on one population: the saturated row and the fixed-rate row.
async fn measure(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    population: &Population,
    length: Duration,
) -> BenchResult<[Row; 2]> {
    let agents = population.ids.len();
    let fleet = &population.fleet;
    // Registration and stream binding (owner claims) are over: from here on
    // only heartbeats flow, so etcd's counters must not move.
    let etcd_before = match target.etcd() {
        Some(etcd) => {
            let (start, started) = (etcd.writes().await?, std::time::Instant::now());
            let settled = etcd.settle(ETCD_QUIET, ETCD_SETTLE).await?;
            let trailing = settled.since(start);
            ctx.progress.say(format!(
                "etcd settled in {:.1} s after the streams opened ({} puts, {} txns meanwhile)",
                started.elapsed().as_secs_f64(),
                trailing.puts,
                trailing.txns
            ));
            Some(settled)
        }
        None => None,
    };
    // After the settling: a replica applying its peer's registrations from
    // the feed is not a heartbeat's doing.
    let revision_before = revision(&population.channels[0]).await?;
    if let (Some(registered), Some(open)) =
        (population.registered_rss_mb, target.stats().and_then(|s| s.rss_mb()))
    {
        ctx.progress.say(format!(
            "registry RSS: {registered:.0} MB with {agents} agents registered, {open:.0} MB with \
             their streams open"
        ));
    }
    let label = format!("saturate, {agents} agents");
    let saturated = phase(ctx, target, fleet, Mode::Saturate, &label, length, Duration::ZERO).await;
    let rate = ctx.options.rate.unwrap_or((saturated.rate() * 0.5).max(1.0));
    // Ticks are spread over one interval, so the first interval is a ramp.
    let every = Duration::from_secs_f64(agents as f64 / rate).max(Duration::from_micros(100));
    let label = format!("{rate:.0} heartbeats/s, {agents} agents");
    let ramp = every.min(MAX_RAMP);
    let fixed = phase(ctx, target, fleet, Mode::Every(every), &label, length, ramp).await;
    let revisions = revision(&population.channels[0]).await?.saturating_sub(revision_before);
    let etcd_writes = match (target.etcd(), etcd_before) {
        (Some(etcd), Some(before)) => Some(etcd.writes().await?.since(before)),
        _ => None,
    };

    let mut saturated_row = Row::phase(format!("heartbeat saturate, {agents} agents"), &saturated)
        .with("connections", population.channels.len() as u64)
        .with("registry_revisions", revisions);
    if let Some(registered) = population.registered_rss_mb {
        saturated_row =
            saturated_row.with("rss_mb_registered_no_streams", registered.round() as u64);
    }
    if let (Some(start), Some(end)) = (&saturated.server_start, &fixed.server_end) {
        // Bytes the registry sent to the block layer over both phases.
        saturated_row =
            saturated_row.with("registry_disk_bytes", WriteDelta::between(start, end).disk_bytes);
    }
    if let Some(writes) = etcd_writes {
        ctx.progress.say(format!(
            "etcd over both phases ({} acks): {} puts, {} txns, {} deletes",
            saturated.count() + fixed.count(),
            writes.puts,
            writes.txns,
            writes.deletes
        ));
        saturated_row = saturated_row
            .with("etcd_puts", writes.puts)
            .with("etcd_txns", writes.txns)
            .with("etcd_deletes", writes.deletes);
    }
    let reconnects = fleet.counters.reconnects.load(Ordering::Relaxed);
    if reconnects > 0 {
        saturated_row = saturated_row.with("stream_reconnects", reconnects);
        for (why, count) in fleet.counters.break_reasons() {
            ctx.progress.say(format!("{count} streams broke: {why}"));
        }
    }
    let at_rate = Row::phase(format!("heartbeat at {rate:.0}/s, {agents} agents"), &fixed)
        .with("target_per_s", rate.round() as u64);
    Ok([saturated_row, at_rate])
}

/// Switches the fleet to `mode` and measures it for `length` after `ramp`;
/// acks that arrive after the phase ended are left out.
async fn phase(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    fleet: &Fleet,
    mode: Mode,
    label: &str,
    length: Duration,
    ramp: Duration,
) -> PhaseStats {
    let phase = Phase::new(mode);
    let recorder = phase.recorder();
    fleet.set_phase(phase);
    hold(&ctx.plan(label, "acks", length, target), ramp, &recorder).await
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
