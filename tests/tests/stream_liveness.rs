//! Which heartbeat stream breaking makes an agent DEGRADED, and what the
//! registry says about an agent's last heartbeat across a restart.
//!
//! An agent is connected while any of its heartbeat streams is open: two
//! streams for one agent (a reconnect race, or an operator's `grpcurl`
//! session beside the live agent) must not hide the break of the last one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{Agent, AgentStatus, GetAgentRequest, StatusReason};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{RawHeartbeatStream, TestRegistry, eventually, metric_value};
use tonic::transport::Channel;

/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);

async fn get(client: &mut RegistryServiceClient<Channel>, id: &str) -> Agent {
    let request = GetAgentRequest { agent_id: id.to_owned() };
    let response = client.get_agent(request).await.expect("get agent").into_inner();
    response.agent.expect("agent")
}

/// The agent once `check` holds for it.
async fn agent_where(
    client: &RegistryServiceClient<Channel>,
    id: &str,
    check: impl Fn(&Agent) -> bool,
) -> Agent {
    eventually(&format!("agent {id} in the expected state"), SOON, || {
        let mut client = client.clone();
        let check = &check;
        async move {
            let agent = get(&mut client, id).await;
            check(&agent).then_some(agent)
        }
    })
    .await
}

async fn degraded(client: &RegistryServiceClient<Channel>, id: &str) -> Agent {
    agent_where(client, id, |agent| agent.status() == AgentStatus::Degraded).await
}

/// Providers wired to the consumer's only dependency, per GetAgent.
async fn wired(client: &mut RegistryServiceClient<Channel>, id: &str) -> Vec<String> {
    let request = GetAgentRequest { agent_id: id.to_owned() };
    let response = client.get_agent(request).await.expect("get agent").into_inner();
    let dependency = &response.resolutions[0].dependencies[0];
    dependency.providers.iter().map(|p| p.agent_id.clone()).collect()
}

/// Heartbeats on `stream` and waits for its ack.
async fn heartbeat(stream: &mut RawHeartbeatStream, agent_id: &str, sequence: u64) -> AgentStatus {
    stream.send(agent_id, sequence).await;
    loop {
        match stream.next(SOON).await.expect("stream open") {
            Some(Message::Ack(ack)) if ack.sequence == sequence => return ack.status(),
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
}

async fn open_streams(server: &TestRegistry, n: f64) {
    eventually(&format!("{n} open heartbeat streams"), SOON, || async {
        let text = server.render_metrics();
        (metric_value(&text, "switchboard_registry_heartbeat_streams") == Some(n)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_stream_breaking_degrades_even_when_a_newer_one_broke_first() {
    // Default timings: nothing turns late within this test, so DEGRADED can
    // only come from a broken stream.
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let provider = common::provider("weather", "forecast", "1.0.0", &[]);
    let provider_id = client.register_agent(provider).await.unwrap().into_inner().agent_id;
    let consumer = common::consumer("planner", "forecast", "", &[]);
    let consumer_id = client.register_agent(consumer).await.unwrap().into_inner().agent_id;
    assert_eq!(wired(&mut client, &consumer_id).await, std::slice::from_ref(&provider_id));

    // Both streams on one connection: of a replica set, one replica holds
    // both, as one registry would.
    let channel = server.channel().await;
    let mut older = RawHeartbeatStream::open(channel.clone()).await;
    assert_eq!(heartbeat(&mut older, &provider_id, 1).await, AgentStatus::Healthy);
    let mut newer = RawHeartbeatStream::open(channel).await;
    assert_eq!(heartbeat(&mut newer, &provider_id, 2).await, AgentStatus::Healthy);
    open_streams(&server, 2.0).await;

    // The newer stream breaks while the older one still carries heartbeats:
    // the agent is still connected.
    drop(newer);
    open_streams(&server, 1.0).await;
    assert_eq!(heartbeat(&mut older, &provider_id, 3).await, AgentStatus::Healthy);
    assert_eq!(get(&mut client, &provider_id).await.status(), AgentStatus::Healthy);

    // Now the last one breaks: DEGRADED at once, and the dependent is rewired.
    drop(older);
    let agent = degraded(&client, &provider_id).await;
    assert_eq!(agent.status_cause(), StatusReason::StreamBroke);
    assert_eq!(agent.status_reason, "connection lost", "the text is kept for operators");
    assert!(wired(&mut client, &consumer_id).await.is_empty(), "dependent told: unresolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_agent_whose_stream_then_breaks_is_out_of_resolution() {
    let mut config = RegistryConfig::default();
    config.liveness.interval = Duration::from_millis(100);
    config.liveness.degraded_after = Duration::from_millis(500);
    config.liveness.expired_after = Duration::from_secs(60);
    let server = TestRegistry::builder().config(config).start().await;
    let mut client = server.registry_client().await;
    let provider = common::provider("weather", "forecast", "1.0.0", &[]);
    let provider_id = client.register_agent(provider).await.unwrap().into_inner().agent_id;
    let consumer = common::consumer("planner", "forecast", "", &[]);
    let consumer_id = client.register_agent(consumer).await.unwrap().into_inner().agent_id;

    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    heartbeat(&mut stream, &provider_id, 1).await;
    // Silent but connected: late, still a last-resort provider.
    let late = degraded(&client, &provider_id).await;
    assert_eq!(late.status_cause(), StatusReason::HeartbeatLate);
    assert_eq!(wired(&mut client, &consumer_id).await, std::slice::from_ref(&provider_id));

    drop(stream);
    agent_where(&client, &provider_id, |a| a.status_cause() == StatusReason::StreamBroke).await;
    assert!(wired(&mut client, &consumer_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_heartbeat_is_unset_after_a_restart_until_the_agent_heartbeats() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let provider = common::provider("weather", "forecast", "1.0.0", &[]);
    let id = client.register_agent(provider).await.unwrap().into_inner().agent_id;
    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    heartbeat(&mut stream, &id, 1).await;
    assert!(heard_from(&server, &id).await);
    drop(stream);

    let dir = server.stop().await;
    let server = TestRegistry::builder().data_dir(dir).start().await;
    let mut client = server.registry_client().await;
    let restored = get(&mut client, &id).await;
    assert_eq!(restored.last_heartbeat_at, None, "the restart is not a heartbeat");

    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    heartbeat(&mut stream, &id, 2).await;
    assert!(heard_from(&server, &id).await);
}

/// Whether the registry reports when it last heard from `id`. Of a replica
/// set, the replica holding the agent's stream does, and a fresh
/// connection reaches each replica in turn.
async fn heard_from(server: &TestRegistry, id: &str) -> bool {
    for _ in 0..server.replicas() {
        let mut client = server.registry_client().await;
        if get(&mut client, id).await.last_heartbeat_at.is_some() {
            return true;
        }
    }
    false
}

/// `switchboard_registry_status_transitions_total` now.
fn transitions(server: &TestRegistry) -> f64 {
    let text = server.render_metrics();
    metric_value(&text, "switchboard_registry_status_transitions_total").unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_transition_is_counted_whatever_caused_it() {
    // A broken stream and the heartbeat that revives the agent are
    // transitions as much as the timers' ones: an alert on the rate of
    // transitions must see a crash-looping fleet.
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let provider = common::provider("weather", "forecast", "1.0.0", &[]);
    let provider_id = client.register_agent(provider).await.unwrap().into_inner().agent_id;
    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    assert_eq!(heartbeat(&mut stream, &provider_id, 1).await, AgentStatus::Healthy);
    let before = transitions(&server);

    drop(stream);
    degraded(&client, &provider_id).await;
    assert_eq!(transitions(&server), before + 1.0, "the stream break");

    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    assert_eq!(heartbeat(&mut stream, &provider_id, 2).await, AgentStatus::Healthy);
    assert_eq!(transitions(&server), before + 2.0, "the revival on a heartbeat");
}
