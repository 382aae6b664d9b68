//! `replica-kill` (`--replicas R`, R ≥ 2): N agents (five tools each) spread
//! over the replicas, each on its own heartbeat stream that moves to the next
//! replica when it breaks. Each round `kill -9`s the replica holding the most
//! streams and measures, from the kill, until every agent it held got an ack
//! on a stream to another replica (`rehome`) and then until a surviving
//! replica lists every agent of the run HEALTHY (`recovered`); then restarts
//! the killed replica on its port and waits until every agent heartbeats
//! again before the next round. Statuses other than HEALTHY seen meanwhile
//! are counted (they must stay 0: a moved agent is claimed at its first
//! heartbeat, never expired).
//!
//! The replicas run with a liveness ladder of interval 1 s, degraded 5 s,
//! expired 10 s, so a round takes seconds; an agent that took longer than
//! 5 s to re-home would show up DEGRADED.

use std::time::{Duration, Instant};

use crate::error::{BenchError, BenchResult};
use crate::fixture::run_tag;
use crate::fleet::Home;
use crate::report::{Report, Row};
use crate::stats::Latency;
use crate::target::RegistryTarget;

use super::restart::{Census, census};
use super::{Ctx, Population};

/// The replicas' liveness ladder: interval, degraded after, expired after.
const LADDER: [&str; 3] = ["1s", "5s", "10s"];
/// Longest wait for one round's agents to re-home and be listed HEALTHY.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the fleet's homes and the census are read while waiting.
const POLL: Duration = Duration::from_millis(5);

/// What one round saw.
struct Round {
    moved: usize,
    rehome: Duration,
    recovered: Duration,
    not_healthy: u64,
}

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let args: Vec<String> = [
        "--heartbeat-interval",
        LADDER[0],
        "--degraded-after",
        LADDER[1],
        "--expired-after",
        LADDER[2],
    ]
    .map(String::from)
    .into();
    let agents = options.sizes(&options.agents, &[1000], &[30])[0];
    let iterations = options.iterations.unwrap_or(if options.smoke { 2 } else { 10 });
    let mut target = ctx.target(&args).await?;
    let tag = run_tag();
    let connections = options.connections_for(agents, 4);
    let population = ctx.populate(&target, "rk", &tag, agents, connections).await?;
    let prefix = format!("bench-rk-{tag}-");
    let (mut rehome, mut recovered) = (Latency::new(), Latency::new());
    let (mut moved, mut not_healthy) = (0usize, 0u64);
    for round in 0..iterations {
        let seen = kill_one(ctx, &mut target, &population, &prefix, round).await?;
        rehome.record(seen.rehome);
        recovered.record(seen.recovered);
        moved += seen.moved;
        not_healthy += seen.not_healthy;
    }
    let replicas = target.replicas();
    let mut row = Row::samples(
        format!(
            "replica kill -9 → its agents re-homed and HEALTHY, {agents} agents over {replicas} \
             replicas"
        ),
        &recovered,
    )
    .with("agents_moved_per_kill", (moved / iterations.max(1)) as u64)
    .with("not_healthy_seen", not_healthy);
    if let Some(summary) = rehome.summary() {
        row = row.with("rehome_p50_ms", summary.p50_ms).with("rehome_p99_ms", summary.p99_ms);
    }
    report.rows.push(row);
    let reconnects =
        population.fleet.counters.reconnects.load(std::sync::atomic::Ordering::Relaxed);
    population.fleet.stop().await;
    report.note(format!(
        "replica-kill: each round SIGKILLs the replica holding the most streams; time from the \
         kill until every agent it held got an ack from another replica (rehome) and a surviving \
         replica lists all {agents} agents HEALTHY (the row's latency); the killed replica is \
         restarted on its port between rounds; agents reopen a broken stream on the next replica \
         after a jittered 0-100 ms backoff ({reconnects} stream reconnects in all); liveness \
         ladder {} / {} / {}; not_healthy_seen = DEGRADED or EXPIRED statuses listed while \
         waiting (must be 0)",
        LADDER[0], LADDER[1], LADDER[2]
    ));
    target.shutdown().await;
    Ok(())
}

/// One round: kill the busiest replica, wait for recovery, restart it.
async fn kill_one(
    ctx: &Ctx<'_>,
    target: &mut RegistryTarget,
    population: &Population,
    prefix: &str,
    round: usize,
) -> BenchResult<Round> {
    let fleet = &population.fleet;
    let homes = fleet.homes();
    let victim = busiest(&homes, target.replicas(), |c| target.replica_of(c));
    let held: Vec<usize> = (0..homes.len())
        .filter(|&agent| target.replica_of(homes[agent].connection) == victim)
        .collect();
    let survivor =
        crate::helpers::connect(&target.addrs()[(victim + 1) % target.replicas()]).await?;
    ctx.progress.say(format!(
        "kill #{}: SIGKILL replica {victim} holding {} of {} streams",
        round + 1,
        held.len(),
        homes.len()
    ));
    let killed_at = fleet.clock();
    let started = Instant::now();
    let replica = target
        .replica_mut(victim)
        .ok_or_else(|| BenchError::Option(format!("no replica {victim}")))?;
    replica.stop_process(true).await?;

    let deadline = started + RECOVERY_TIMEOUT;
    loop {
        let homes = fleet.homes();
        let away = |&agent: &usize| {
            let home = homes[agent];
            home.acked.is_some_and(|at| at > killed_at)
                && target.replica_of(home.connection) != victim
        };
        if held.iter().all(away) {
            break;
        }
        if Instant::now() > deadline {
            let left = held.iter().filter(|agent| !away(agent)).count();
            return Err(BenchError::timeout(
                format!("{left} of {} agents of replica {victim} to re-home", held.len()),
                RECOVERY_TIMEOUT,
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    let rehome = started.elapsed();
    let mut not_healthy = 0;
    loop {
        let seen: Census = census(&survivor, "bench-rk", prefix).await?;
        not_healthy = not_healthy.max(seen.degraded + seen.expired);
        if seen.healthy == population.ids.len() as u64 {
            break;
        }
        if Instant::now() > deadline {
            return Err(BenchError::timeout(
                format!("{} agents listed HEALTHY ({} were)", population.ids.len(), seen.healthy),
                RECOVERY_TIMEOUT,
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    let recovered = started.elapsed();
    ctx.progress.say(format!(
        "re-homed in {:.0} ms, all HEALTHY at {:.0} ms; restarting replica {victim}",
        rehome.as_secs_f64() * 1000.0,
        recovered.as_secs_f64() * 1000.0
    ));
    let replica = target
        .replica_mut(victim)
        .ok_or_else(|| BenchError::Option(format!("no replica {victim}")))?;
    replica.restart().await?;
    // Steady again before the next kill: every agent acked since the restart.
    let restarted_at = fleet.clock();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    while !fleet.homes().iter().all(|home| home.acked.is_some_and(|at| at > restarted_at)) {
        if Instant::now() > deadline {
            return Err(BenchError::timeout("every agent to heartbeat again", RECOVERY_TIMEOUT));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Round { moved: held.len(), rehome, recovered, not_healthy })
}

/// The replica holding the most streams (the lowest index on a tie).
fn busiest(homes: &[Home], replicas: usize, replica_of: impl Fn(usize) -> usize) -> usize {
    let mut held = vec![0usize; replicas.max(1)];
    for home in homes.iter().filter(|home| home.acked.is_some()) {
        if let Some(count) = held.get_mut(replica_of(home.connection)) {
            *count += 1;
        }
    }
    let most = held.iter().copied().max().unwrap_or(0);
    held.iter().position(|&count| count == most).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(connection: usize, acked: bool) -> Home {
        Home { connection, acked: acked.then_some(Duration::from_millis(1)) }
    }

    #[test]
    fn the_busiest_replica_is_the_one_holding_most_acked_streams() {
        // Connections 0..6 over 3 replicas: connection c goes to replica c % 3.
        let homes = [home(1, true), home(4, true), home(2, true), home(0, false), home(3, false)];
        assert_eq!(busiest(&homes, 3, |c| c % 3), 1);
        // A tie goes to the lowest index; nothing acked yet: replica 0.
        assert_eq!(busiest(&[home(1, true), home(2, true)], 3, |c| c % 3), 1);
        assert_eq!(busiest(&[home(2, false)], 3, |c| c % 3), 0);
        assert_eq!(busiest(&[], 0, |c| c), 0);
    }
}
