//! The registry process killed (`kill -9`), frozen (SIGSTOP) and restarted
//! (SIGTERM) in a loop, on one data directory, under concurrent register and
//! deregister load on shared agent ids, with heartbeating agents, dependents
//! and resuming watchers. Right after every restart the driver reads the
//! whole state: a registry that lost an acknowledged write shows it there
//! (and again when a later write reuses the lost revision).

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;

use super::{agent, rules, settle};
use crate::faults::cluster::{Cluster, Settings};
use crate::faults::load::{Reader, WriteLoad, Writers, read_all, registry_client};
use crate::faults::run::{Report, Run};
use crate::faults::watcher::{Pace, Watcher};
use crate::history::{Op, OpKind, Outcome};

/// `rounds` faults on the registry; see the module docs.
pub async fn registry_crashes(seed: u64, rounds: usize) -> Report {
    let mut run = Run::new("registry-crash", seed);
    let settings = Settings::short();
    let cluster_seed = run.sub_seed();
    let mut cluster = Cluster::start(settings.clone(), &run.history, cluster_seed).await;
    let addr = cluster.addr();

    let mut agents = Vec::new();
    for n in 0..3 {
        agents.push(agent(&mut run, &addr, &settings, "prov", n, "cap.p", None).await);
    }
    for n in 0..2 {
        agents.push(agent(&mut run, &addr, &settings, "dep", n, "plain", Some("cap.p")).await);
    }
    for n in 0..2 {
        agents.push(agent(&mut run, &addr, &settings, "beat", n, "plain", None).await);
    }
    let load = WriteLoad {
        writers: 3,
        own_ids: 16,
        shared_ids: 4,
        think: Duration::from_millis(30),
        payload: 0,
    };
    let writers_seed = run.sub_seed();
    let writers = Writers::start(&load, &addr, &run.history, writers_seed);
    let ids = agents.iter().map(|a| a.agent_id.clone()).collect();
    let reader_seed = run.sub_seed();
    let reader = Reader::start(&addr, ids, &run.history, reader_seed);
    let mut watchers: Vec<Watcher> = (0..2)
        .map(|i| Watcher::start(&format!("watch-{i}"), &addr, Pace::Live, &run.history))
        .collect();

    let mut client = registry_client(&addr);
    for _ in 0..rounds {
        let load_for = run.between(Duration::from_millis(300), Duration::from_millis(900));
        tokio::time::sleep(load_for).await;
        match run.rng.random_range(0..100) {
            0..70 => {
                let down = run.between(Duration::ZERO, Duration::from_millis(400));
                cluster.crash_and_restart(down).await;
                run.injected("registry kill -9");
            }
            70..85 => {
                let frozen = run.between(Duration::from_millis(200), Duration::from_millis(800));
                cluster.freeze(frozen).await;
                run.injected("registry SIGSTOP");
            }
            _ => {
                cluster.graceful_restart().await;
                run.injected("registry SIGTERM + restart");
            }
        }
        read_all(&mut client, "driver", &run.history).await;
    }

    writers.stop().await;
    reader.stop().await;
    settle(&mut run, &addr, &mut watchers).await;
    for watcher in watchers {
        watcher.stop().await;
    }
    for agent in agents {
        agent.stop().await;
    }
    cluster.stop().await;
    let alarms = overlapped_deregistrations(&run.history.ops());
    run.note(format!(
        "{alarms} reads after a restart lacked an agent whose registration was acknowledged, \
         with no deregistration begun after that acknowledgment: each one removed by a \
         deregistration that overlapped the registration and committed after it"
    ));
    run.finish(&rules(&settings))
}

/// The cases a durability check that ignores concurrency would call a lost
/// registration: a driver read (right after a restart) lacks an agent whose
/// latest acknowledged registration completed before the read, and no
/// deregistration of it began after that acknowledgment; yet a
/// deregistration that overlapped the registration committed after it (a
/// higher revision), so the agent is rightly gone. The checker proper
/// orders writes by revision and does not count these.
fn overlapped_deregistrations(ops: &[Op]) -> usize {
    let acked = |op: &&Op| matches!(op.result, Outcome::Written { revision, .. } if revision > 0);
    let writes: Vec<&Op> = ops.iter().filter(|op| op.is_write()).filter(acked).collect();
    let mut alarms = 0;
    for read in ops.iter().filter(|op| op.client == "driver") {
        let (OpKind::List { view, .. }, Outcome::Ok) = (&read.kind, &read.result) else { continue };
        let mut latest: HashMap<&str, &Op> = HashMap::new();
        for write in writes.iter().filter(|w| w.completed_at < read.invoked_at) {
            if matches!(write.kind, OpKind::Register { .. })
                && let Some(id) = write.agent_id()
                && latest.get(id).is_none_or(|l| l.completed_at < write.completed_at)
            {
                latest.insert(id, write);
            }
        }
        for (id, registration) in latest {
            if view.contains_key(id) {
                continue;
            }
            let deregistrations = writes.iter().filter(|w| {
                matches!(w.kind, OpKind::Deregister { .. })
                    && w.agent_id() == Some(id)
                    && w.invoked_at < read.invoked_at
            });
            let mut begun_after = false;
            let mut overlapped_later = false;
            for deregistration in deregistrations {
                if deregistration.invoked_at > registration.completed_at {
                    begun_after = true;
                } else if deregistration.result.revision() > registration.result.revision() {
                    overlapped_later = true;
                }
            }
            if !begun_after && overlapped_later {
                alarms += 1;
            }
        }
    }
    alarms
}
