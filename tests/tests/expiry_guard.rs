//! The mass-expiry guard (Eureka's self-preservation idea): when most of the
//! fleet goes silent at once, the fault is more likely the registry's side
//! than every agent, so the registry keeps those agents DEGRADED instead of
//! expiring them, says so in its metrics, and lets go once heartbeats return.
//!
//! Two ways to silence 16 of 20 agents at once: across a registry restart
//! (every stored agent restarts its clock at the same instant, so all 16 are
//! due to expire in the same instant), and on a running registry (their last
//! heartbeats land milliseconds apart, as in a real partition).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_health::{GuardConfig, LivenessConfig};
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::{AgentStatus, ListAgentsRequest, SendHeartbeatRequest};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{TestRegistry, eventually, metric_value};
use tonic::transport::Channel;

const FLEET: usize = 20;
const CUT: usize = 16;
const INTERVAL: Duration = Duration::from_millis(100);
const PATIENCE: Duration = Duration::from_secs(20);
const GUARD_METRIC: &str = "switchboard_registry_expiry_guard_active";

fn config() -> RegistryConfig {
    RegistryConfig {
        liveness: LivenessConfig {
            interval: INTERVAL,
            // Far above the 100 ms heartbeat interval: the agents kept
            // heartbeating must never expire, even when a loaded machine
            // stalls the test's heartbeat rounds for a second.
            degraded_after: Duration::from_millis(500),
            expired_after: Duration::from_secs(2),
            guard: GuardConfig {
                max_expiring_fraction: 0.5,
                min_agents: 10,
                ..GuardConfig::default()
            },
            ..LivenessConfig::default()
        },
        ..RegistryConfig::default()
    }
}

/// Heartbeats every agent in `live` every interval, with unary
/// `SendHeartbeat` calls sent together, until dropped.
struct Fleet {
    live: Arc<Mutex<BTreeSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fleet {
    fn start(channel: Channel, ids: &[String]) -> Self {
        let live = Arc::new(Mutex::new(ids.iter().cloned().collect::<BTreeSet<_>>()));
        let beating = live.clone();
        let task = tokio::spawn(async move {
            let client = HeartbeatServiceClient::new(channel);
            for sequence in 1.. {
                let round: Vec<String> = beating.lock().unwrap().iter().cloned().collect();
                let calls = round.into_iter().map(|agent_id| {
                    let mut client = client.clone();
                    async move {
                        let request =
                            SendHeartbeatRequest { agent_id, sequence, labels: None, health: None };
                        client.send_heartbeat(request).await.expect("heartbeat accepted");
                    }
                });
                futures::future::join_all(calls).await;
                tokio::time::sleep(INTERVAL).await;
            }
        });
        Self { live, task }
    }

    fn silence(&self, ids: &[String]) {
        let mut live = self.live.lock().unwrap();
        for id in ids {
            live.remove(id);
        }
    }

    fn resume(&self, ids: &[String]) {
        self.live.lock().unwrap().extend(ids.iter().cloned());
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Ids of the agents with `status`.
async fn with_status(server: &TestRegistry, status: AgentStatus) -> BTreeSet<String> {
    let request = ListAgentsRequest {
        status: status as i32,
        page_size: 1000,
        ..ListAgentsRequest::default()
    };
    let list = server.registry_client().await.list_agents(request).await.unwrap().into_inner();
    list.agents.into_iter().map(|a| a.id).collect()
}

fn guard_metric(server: &TestRegistry) -> Option<f64> {
    metric_value(&server.render_metrics(), GUARD_METRIC)
}

/// Registers `FLEET` agents; returns their ids, the first `CUT` to be silenced.
async fn register_fleet(server: &TestRegistry) -> Vec<String> {
    let mut client = server.registry_client().await;
    let mut ids = Vec::new();
    for i in 0..FLEET {
        let request = common::provider(&format!("node{i:02}"), "fleet", "1.0.0", &[]);
        ids.push(client.register_agent(request).await.unwrap().into_inner().agent_id);
    }
    ids
}

/// With `cut` silent and `kept` heartbeating through `fleet`: the guard
/// engages and holds every silent agent DEGRADED; once they heartbeat again
/// everyone is HEALTHY and the guard lets go.
async fn guard_holds_the_cut_until_they_return(
    server: &TestRegistry,
    fleet: &Fleet,
    cut: &[String],
    kept: &[String],
) {
    eventually("the guard to engage", PATIENCE, || async {
        (guard_metric(server) == Some(1.0)).then_some(())
    })
    .await;
    let cut_set: BTreeSet<String> = cut.iter().cloned().collect();
    let kept_set: BTreeSet<String> = kept.iter().cloned().collect();
    // Every silent agent reaches DEGRADED (the last may still be on its way).
    eventually("the silent agents DEGRADED", PATIENCE, || async {
        let degraded = with_status(server, AgentStatus::Degraded).await;
        let expired = with_status(server, AgentStatus::Expired).await;
        assert_eq!(expired, BTreeSet::new(), "the guard let silent agents expire");
        degraded.is_superset(&cut_set).then_some(())
    })
    .await;

    // Held, not merely late: well past expired_after nothing has expired.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(with_status(server, AgentStatus::Expired).await, BTreeSet::new(), "none expired");
    let degraded = with_status(server, AgentStatus::Degraded).await;
    assert!(degraded.is_superset(&cut_set), "every silent agent held DEGRADED: {degraded:?}");
    assert_eq!(guard_metric(server), Some(1.0), "the guard is still engaged");
    // (A heartbeating agent may flap under load; it only has to be healthy.)
    eventually("the heartbeating agents HEALTHY", PATIENCE, || async {
        with_status(server, AgentStatus::Healthy).await.is_superset(&kept_set).then_some(())
    })
    .await;

    // Heartbeats return: everyone healthy, the guard lets go.
    fleet.resume(cut);
    eventually("the fleet healthy again", PATIENCE, || async {
        (with_status(server, AgentStatus::Healthy).await.len() == FLEET).then_some(())
    })
    .await;
    eventually("the guard to disengage", PATIENCE, || async {
        (guard_metric(server) == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(with_status(server, AgentStatus::Expired).await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_cut_off_across_a_restart_is_held_by_the_guard_until_heartbeats_return() {
    let server = TestRegistry::builder().config(config()).start().await;
    let ids = register_fleet(&server).await;
    let dir = server.stop().await;

    let server = TestRegistry::builder().config(config()).data_dir(dir).start().await;
    assert_eq!(with_status(&server, AgentStatus::Expired).await, BTreeSet::new());
    let (cut, kept) = ids.split_at(CUT);
    let fleet = Fleet::start(server.channel().await, kept);
    guard_holds_the_cut_until_they_return(&server, &fleet, cut, kept).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_most_of_a_running_fleet_at_once_engages_the_guard_until_heartbeats_return() {
    let server = TestRegistry::builder().config(config()).start().await;
    let ids = register_fleet(&server).await;
    let fleet = Fleet::start(server.channel().await, &ids);
    eventually("a healthy fleet", PATIENCE, || async {
        (with_status(&server, AgentStatus::Healthy).await.len() == FLEET).then_some(())
    })
    .await;
    assert_eq!(guard_metric(&server), Some(0.0));

    let (cut, kept) = ids.split_at(CUT);
    fleet.silence(cut);
    guard_holds_the_cut_until_they_return(&server, &fleet, cut, kept).await;
}
