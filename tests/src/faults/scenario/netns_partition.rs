//! Agents in a network namespace, partitioned from the registry by setting
//! their veth link down (some outages past `expired_after`) and up again: a
//! provider and a dependent inside, a provider and a watcher outside.
//!
//! Needs root and `ip`; otherwise it returns an error saying so.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use super::{agent, rules, settle};
use crate::faults::agent::{AgentSpec, RecordedAgent};
use crate::faults::cluster::{Cluster, Settings};
use crate::faults::netns::NetnsLink;
use crate::faults::proxy::FaultProxy;
use crate::faults::run::{Report, Run};
use crate::faults::watcher::{Pace, Watcher};

/// Capability served inside and outside the namespace.
const CAPABILITY: &str = "cap.n";

/// `rounds` outages of the namespace's link; see the module docs.
pub async fn netns_partition(seed: u64, rounds: usize) -> Result<Report, String> {
    let link = NetnsLink::create()?;
    let mut run = Run::new("netns-partition", seed);
    let settings = Settings::short();
    let cluster_seed = run.sub_seed();
    let mut cluster = Cluster::start(settings.clone(), &run.history, cluster_seed).await;
    let addr = cluster.addr();
    // The namespace reaches the registry through the veth's host address.
    let upstream: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let listen = SocketAddr::from((link.host_ip, 0));
    let gate = FaultProxy::start_on(listen, upstream, run.sub_seed())
        .await
        .map_err(|e| format!("listen on {listen}: {e}"))?;

    let outside = agent(&mut run, &addr, &settings, "prov", 0, CAPABILITY, None).await;
    let inside =
        [("prov", 1, None), ("dep", 0, Some(CAPABILITY))].map(|(name, n, depends)| AgentSpec {
            agent_id: format!("{name}-{n:08x}"),
            provides: if depends.is_some() { "plain".into() } else { CAPABILITY.into() },
            depends_on: depends.map(str::to_owned),
            every: settings.interval,
        });
    let inside_ids: Vec<String> = inside.iter().map(|spec| spec.agent_id.clone()).collect();
    let (stop, stopped) = oneshot::channel::<()>();
    let history = run.history.clone();
    let through = gate.addr().to_string();
    let seeds = [run.sub_seed(), run.sub_seed()];
    let agents_inside = link.spawn(move || async move {
        let mut agents = Vec::new();
        for (spec, seed) in inside.into_iter().zip(seeds) {
            agents.push(RecordedAgent::start(spec, &through, &history, seed).await);
        }
        let _ = stopped.await;
        for agent in agents {
            agent.stop().await;
        }
    });
    let mut watchers = vec![Watcher::start("watch-0", &addr, Pace::Live, &run.history)];

    for _ in 0..rounds {
        let calm = run.between(Duration::from_millis(300), Duration::from_millis(900));
        tokio::time::sleep(calm).await;
        let outage = run.between(Duration::from_millis(300), Duration::from_millis(3000));
        let started = SystemTime::now();
        link.down()?;
        tokio::time::sleep(outage).await;
        link.up()?;
        for id in &inside_ids {
            run.history.fault(id, "link down", started);
        }
        run.injected("veth link down");
    }

    settle(&mut run, &addr, &mut watchers).await;
    let _ = stop.send(());
    let joined = tokio::task::spawn_blocking(move || agents_inside.join()).await;
    if let Ok(Ok(Err(error))) = joined {
        run.note(format!("agents in the namespace: {error}"));
    }
    for watcher in watchers {
        watcher.stop().await;
    }
    outside.stop().await;
    drop(gate);
    cluster.stop().await;
    Ok(run.finish(&rules(&settings)))
}
