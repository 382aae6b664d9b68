//! Liveness across registry replicas on one etcd (real 3-member cluster,
//! replicas as child processes of the real binary): the replica holding an
//! agent's stream owns it. A replica killed with `kill -9` hands its agents
//! to the others as their streams reconnect (the SDK moves to the next
//! address), none of them turns EXPIRED, and a dependent keeps its wiring;
//! a replica restarting meanwhile does not take over agents others own; an
//! agent nobody owns once the dead replica's lease lapsed is expired after
//! its grace by the elected sweeper.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use switchboard_proto::v1::{AgentStatus, ListAgentsRequest, RegisterAgentRequest};
use switchboard_tests::etcd::EtcdCluster;
use switchboard_tests::{Backend, McpClient, TestRegistry, eventually, identity_provider, relay};

const DEADLINE: Duration = Duration::from_secs(40);
/// `--expired-after` of the replicas: short, so a replica tracking an agent
/// it does not hold would expire it within the test.
const EXPIRED_AFTER: Duration = Duration::from_secs(4);

async fn replica(cluster: &EtcdCluster) -> TestRegistry {
    let endpoints = cluster.endpoint_list();
    let flags = [
        "--store",
        "etcd",
        "--etcd-endpoints",
        &endpoints,
        "--etcd-prefix",
        "/replicas",
        "--heartbeat-interval",
        "500ms",
        "--degraded-after",
        "2s",
        "--expired-after",
        "4s",
    ];
    TestRegistry::builder().backend(Backend::Sled).child_process(&flags).start().await
}

async fn statuses(registry: &TestRegistry) -> Vec<(String, AgentStatus)> {
    let mut client = registry.registry_client().await;
    let Ok(listed) = client.list_agents(ListAgentsRequest::default()).await else {
        return Vec::new();
    };
    listed.into_inner().agents.iter().map(|a| (a.id.clone(), a.status())).collect()
}

async fn status_at(registry: &TestRegistry, id: &str) -> Option<AgentStatus> {
    statuses(registry).await.into_iter().find(|(agent, _)| agent == id).map(|(_, s)| s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_hands_its_agents_over_and_none_expires() {
    let cluster = EtcdCluster::start().await;
    let a = replica(&cluster).await;
    let b = replica(&cluster).await;
    let c = replica(&cluster).await;
    // Providers start on A, the dependent on B; both move on along the list.
    let from_a = format!("{},{},{}", a.addr, b.addr, c.addr);
    let from_b = format!("{},{},{}", b.addr, c.addr, a.addr);
    let mut providers = Vec::new();
    for i in 0..3 {
        providers.push(identity_provider(&from_a, &format!("p{i}")).await);
    }
    let relay = relay(&from_b).await;
    let caller = McpClient::new(&format!("http://{}/mcp", relay.local_addr));
    eventually("the relay wired to a provider on another replica", DEADLINE, || async {
        caller.call_text("relay", json!({})).await.starts_with("ok: p").then_some(())
    })
    .await;
    // An agent registered on A with no stream: A owns it, nobody else.
    let ghost = a
        .registry_client()
        .await
        .register_agent(RegisterAgentRequest {
            name: "ghost".into(),
            endpoint: "http://127.0.0.1:9/ghost/mcp".into(),
            ..RegisterAgentRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .agent_id;

    let again = a.relaunch();
    tokio::task::spawn_blocking(move || a.kill()).await.unwrap();
    for agent in &providers {
        eventually(&format!("{} HEALTHY on B and C", agent.agent_id), DEADLINE, || async {
            let on_b = status_at(&b, &agent.agent_id).await;
            let on_c = status_at(&c, &agent.agent_id).await;
            (on_b == Some(AgentStatus::Healthy) && on_c == on_b).then_some(())
        })
        .await;
    }
    // A back on its address: it loads every agent but tracks only those
    // nobody owns, so it expires none of the others'.
    let a = again.start().await;

    // Nobody holds the ghost's stream: once A's old lease lapses, it expires.
    eventually("the unowned agent EXPIRED after its grace", DEADLINE, || async {
        (status_at(&b, &ghost).await == Some(AgentStatus::Expired)).then_some(())
    })
    .await;
    // Long past the expiry of anything tracked without heartbeats: every
    // streaming agent is still HEALTHY everywhere, and the relay still works.
    let watched: Vec<&str> =
        providers.iter().chain([&relay]).map(|agent| agent.agent_id.as_str()).collect();
    let until = tokio::time::Instant::now() + 2 * EXPIRED_AFTER;
    while tokio::time::Instant::now() < until {
        for registry in [&a, &b, &c] {
            for (id, status) in statuses(registry).await {
                if watched.contains(&id.as_str()) {
                    assert_ne!(status, AgentStatus::Expired, "{id} expired at {}", registry.addr);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for registry in [&a, &b, &c] {
        for id in &watched {
            assert_eq!(status_at(registry, id).await, Some(AgentStatus::Healthy), "{id}");
        }
    }
    assert!(caller.call_text("relay", json!({})).await.starts_with("ok: p"));
}

/// Registers `name` on the first of `replicas` that answers: a client that
/// lists several registry addresses moves on when one fails.
async fn register_anywhere(replicas: &[std::net::SocketAddr], name: &str) -> Option<String> {
    for addr in replicas {
        let Ok(channel) = switchboard_client::connect(&addr.to_string()).await else { continue };
        let mut client =
            switchboard_proto::v1::registry_service_client::RegistryServiceClient::new(channel);
        let request = RegisterAgentRequest {
            name: name.to_owned(),
            endpoint: format!("http://127.0.0.1:9/{name}/mcp"),
            ..RegisterAgentRequest::default()
        };
        if let Ok(done) = client.register_agent(request).await {
            return Some(done.into_inner().agent_id);
        }
    }
    None
}

/// `switchboard_registry_watch_resyncs_total` of a replica.
async fn resyncs(registry: &TestRegistry) -> f64 {
    let url = format!("http://{}/metrics", registry.admin_addr);
    let (_, text) = switchboard_tests::gateway::http_get(&url).await;
    switchboard_tests::metric_value(&text, "switchboard_registry_watch_resyncs_total")
        .unwrap_or(0.0)
}

/// The number of open watch streams of a replica.
async fn watchers(registry: &TestRegistry) -> f64 {
    let url = format!("http://{}/metrics", registry.admin_addr);
    let (_, text) = switchboard_tests::gateway::http_get(&url).await;
    switchboard_tests::metric_value(&text, "switchboard_registry_watchers").unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_in_flight_and_the_gateways_watch_survive_a_replica_kill() {
    let cluster = EtcdCluster::start().await;
    let mut replicas =
        vec![replica(&cluster).await, replica(&cluster).await, replica(&cluster).await];
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr).collect();
    let list = addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let gateway = switchboard_tests::InProcessGateway::start(&list).await;
    let provider = identity_provider(&list, "streaming").await;
    let client = McpClient::new(&gateway.url());

    // Registrations keep coming, from before the kill until after it.
    let done = Arc::new(AtomicUsize::new(0));
    let counted = done.clone();
    let writer = tokio::spawn(async move {
        let mut acked = Vec::new();
        for i in 0..60 {
            if let Some(id) = register_anywhere(&addrs, &format!("inflight{i}")).await {
                acked.push(id);
                counted.fetch_add(1, Ordering::Relaxed);
            }
            // Paced, so the kill lands in the middle of them.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acked
    });
    // The replica the gateway watches (clients start at a random one) dies.
    let watched = eventually("the gateway watching a replica", DEADLINE, || async {
        for (index, registry) in replicas.iter().enumerate() {
            if watchers(registry).await >= 1.0 {
                return Some(index);
            }
        }
        None
    })
    .await;
    let doomed = replicas.remove(watched);
    eventually("some registrations acknowledged before the kill", DEADLINE, || async {
        (done.load(Ordering::Relaxed) >= 10).then_some(())
    })
    .await;
    tokio::task::spawn_blocking(move || doomed.kill()).await.unwrap();
    let acked = writer.await.unwrap();
    assert!(acked.len() >= 50, "registrations went on through the others: {}", acked.len());
    let [b, c] = [&replicas[0], &replicas[1]];

    // Every acknowledged registration is there, on both survivors.
    for registry in [b, c] {
        let listed = statuses(registry).await;
        for id in &acked {
            assert!(listed.iter().any(|(agent, _)| agent == id), "{id} lost at {}", registry.addr);
        }
    }
    // The gateway's Watch resumed on a survivor from its revision: it
    // follows the writes made after the kill, and neither survivor had to
    // send it a fresh snapshot.
    register_anywhere(&[b.addr], "after-the-kill").await.expect("registered on a survivor");
    let revision = {
        let mut client = b.registry_client().await;
        let request = ListAgentsRequest::default();
        client.list_agents(request).await.unwrap().into_inner().revision
    };
    gateway.caught_up(revision).await;
    assert_eq!(watchers(b).await + watchers(c).await, 1.0, "the gateway moved to a survivor");
    assert_eq!(resyncs(b).await + resyncs(c).await, 0.0, "resumed, not resynced");
    // Calls still route to the agent that streamed to the dead replica.
    eventually("the tools through the gateway", DEADLINE, || async {
        client.tool_names().await.ok().filter(|names| !names.is_empty())
    })
    .await;
    eventually("the streaming agent HEALTHY", DEADLINE, || async {
        (status_at(b, &provider.agent_id).await == Some(AgentStatus::Healthy)).then_some(())
    })
    .await;
}
