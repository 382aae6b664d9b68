//! Faults between agents and the registry, one at a time: partitions
//! (half-open links, some longer than `expired_after`), delay, loss,
//! connection resets, a frozen (SIGSTOP) agent process, and provider crashes
//! — `kill -9` of a `date-service` process and the crash of an in-process
//! provider — each followed by a replacement, with dependents of both kinds
//! of provider recording the wiring they are pushed.

use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use rand::Rng;

use super::{agent, rules, settle};
use crate::faults::agent::AgentChild;
use crate::faults::cluster::{Cluster, Settings};
use crate::faults::load::{Reader, WriteLoad, Writers};
use crate::faults::proxy::{FaultProxy, LinkFaults};
use crate::faults::run::{Report, Run};
use crate::faults::watcher::{Pace, Watcher};

/// Capability of the in-process providers.
const CAPABILITY: &str = "cap.p";

/// `rounds` faults on agents' links and processes; see the module docs.
pub async fn agent_faults(seed: u64, rounds: usize) -> Report {
    let mut run = Run::new("agent-faults", seed);
    let settings = Settings::short();
    let cluster_seed = run.sub_seed();
    let mut cluster = Cluster::start(settings.clone(), &run.history, cluster_seed).await;
    let addr = cluster.addr();

    let mut providers = Vec::new();
    let mut next_provider = 0;
    while next_provider < 3 {
        providers
            .push(agent(&mut run, &addr, &settings, "prov", next_provider, CAPABILITY, None).await);
        next_provider += 1;
    }
    let mut others = Vec::new();
    for n in 0..2 {
        others.push(agent(&mut run, &addr, &settings, "dep", n, "plain", Some(CAPABILITY)).await);
    }
    for n in 0..2 {
        others.push(
            agent(&mut run, &addr, &settings, "dated", n, "plain", Some("date_service")).await,
        );
    }
    for n in 0..2 {
        others.push(agent(&mut run, &addr, &settings, "beat", n, "plain", None).await);
    }
    let mut children = Vec::new();
    for _ in 0..2 {
        let seed = run.sub_seed();
        children.push(AgentChild::start(&addr, &run.history, seed).await);
    }
    let load = WriteLoad {
        writers: 1,
        own_ids: 8,
        shared_ids: 0,
        think: Duration::from_millis(50),
        payload: 0,
    };
    let writers_seed = run.sub_seed();
    let writers = Writers::start(&load, &addr, &run.history, writers_seed);
    let ids = providers.iter().chain(&others).map(|a| a.agent_id.clone()).collect();
    let reader_seed = run.sub_seed();
    let reader = Reader::start(&addr, ids, &run.history, reader_seed);
    let mut watchers = vec![Watcher::start("watch-0", &addr, Pace::Live, &run.history)];

    for _ in 0..rounds {
        let pick = run.rng.random_range(0..100);
        match pick {
            0..45 => {
                let everyone = providers.len() + others.len();
                let index = run.rng.random_range(0..everyone);
                let target = providers.iter().chain(&others).nth(index).expect("an agent");
                let (id, link) = (target.agent_id.clone(), target.link());
                link_fault(&mut run, &id, link).await;
            }
            45..60 => {
                let index = run.rng.random_range(0..children.len());
                let child = &children[index];
                let (id, link) = (child.agent_id.clone(), &child.link);
                if run.rng.random_bool(0.5) {
                    link_fault(&mut run, &id, link).await;
                } else {
                    freeze(&mut run, child).await;
                }
            }
            60..80 => {
                let index = run.rng.random_range(0..children.len());
                let child = children.swap_remove(index);
                child.crash(&run.history).await;
                run.injected("agent process kill -9");
                let seed = run.sub_seed();
                children.push(AgentChild::start(&addr, &run.history, seed).await);
            }
            _ => {
                let index = run.rng.random_range(0..providers.len());
                providers.swap_remove(index).crash();
                run.injected("in-process provider crash");
                let n = next_provider;
                next_provider += 1;
                providers
                    .push(agent(&mut run, &addr, &settings, "prov", n, CAPABILITY, None).await);
            }
        }
        let calm = run.between(Duration::from_millis(200), Duration::from_millis(600));
        tokio::time::sleep(calm).await;
    }

    writers.stop().await;
    reader.stop().await;
    settle(&mut run, &addr, &mut watchers).await;
    for watcher in watchers {
        watcher.stop().await;
    }
    for agent in providers.into_iter().chain(others) {
        agent.stop().await;
    }
    drop(children);
    cluster.stop().await;
    run.finish(&rules(&settings))
}

/// One fault on `link` for a while, then healed.
async fn link_fault(run: &mut Run, agent_id: &str, link: &FaultProxy) {
    let started = SystemTime::now();
    let (what, faults, hold) = match run.rng.random_range(0..4) {
        0 => {
            // Up to past `expired_after`: the agent may expire, legitimately.
            let hold = run.between(Duration::from_millis(300), Duration::from_millis(3000));
            ("partition", LinkFaults { partitioned: true, ..LinkFaults::default() }, hold)
        }
        1 => {
            let delay = run.between(Duration::from_millis(20), Duration::from_millis(200));
            let hold = run.between(Duration::from_millis(500), Duration::from_millis(2000));
            ("delay", LinkFaults { delay, ..LinkFaults::default() }, hold)
        }
        2 => {
            let loss = run.rng.random_range(0.05..0.3);
            let hold = run.between(Duration::from_millis(500), Duration::from_millis(2000));
            ("loss", LinkFaults { loss, ..LinkFaults::default() }, hold)
        }
        _ => ("reset", LinkFaults::default(), Duration::ZERO),
    };
    if what == "reset" {
        link.cut();
    } else {
        link.set(faults);
        tokio::time::sleep(hold).await;
        link.heal();
    }
    run.history.fault(agent_id, what, started);
    run.injected(&format!("link {what}"));
}

/// SIGSTOP of an agent process for a while (past `degraded_after` at times),
/// then SIGCONT.
async fn freeze(run: &mut Run, child: &AgentChild) {
    let started = SystemTime::now();
    let hold = run.between(Duration::from_millis(300), Duration::from_millis(2500));
    if kill(child.pid(), Signal::SIGSTOP).is_ok() {
        tokio::time::sleep(hold).await;
        let _ = kill(child.pid(), Signal::SIGCONT);
        run.history.fault(&child.agent_id, "freeze", started);
        run.injected("agent process SIGSTOP");
    }
}
