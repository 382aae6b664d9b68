//! The bidirectional heartbeat stream as a dependent agent sees it: every
//! heartbeat is acked, and its dependency wiring is pushed the moment it
//! changes (a provider joins, crashes, is outranked or leaves), and only to
//! the agents a change affects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchboard_health::LivenessConfig;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    AgentStatus, DeregisterAgentRequest, GetAgentRequest, Provider, RegisterAgentRequest,
    ResolutionUpdate, SendHeartbeatRequest,
};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{HeartbeatSession, ProviderProcess, TestRegistry, metric_value};
use tonic::transport::Channel;

/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(10);
/// How often the test agents heartbeat.
const EVERY: Duration = Duration::from_millis(200);

fn provider_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_sb-test-provider"))
}

/// Providers of the first dependency of the first tool.
fn providers(update: &ResolutionUpdate) -> &[Provider] {
    &update.resolutions[0].dependencies[0].providers
}

/// Their agent ids, in the order the registry returns them.
fn provider_ids(update: &ResolutionUpdate) -> Vec<&str> {
    providers(update).iter().map(|p| p.agent_id.as_str()).collect()
}

async fn register(
    client: &mut RegistryServiceClient<Channel>,
    request: RegisterAgentRequest,
) -> String {
    client.register_agent(request).await.expect("register").into_inner().agent_id
}

/// Registers `request` and opens its heartbeat stream; returns the session
/// and the wiring it is sent when the stream binds.
async fn dependent(
    server: &TestRegistry,
    request: RegisterAgentRequest,
) -> (HeartbeatSession, ResolutionUpdate) {
    let id = register(&mut server.registry_client().await, request).await;
    let mut session = HeartbeatSession::open(server.channel().await, &id, EVERY).await;
    let initial = session.resolution_where(SOON, |_| true).await;
    (session, initial)
}

/// Waits until `n` heartbeat streams are bound to their agents (so a
/// connection loss is noticed as one).
async fn bound_streams(server: &TestRegistry, n: f64) {
    switchboard_tests::eventually(&format!("{n} bound heartbeat streams"), SOON, || async {
        let text = server.render_metrics();
        (metric_value(&text, "switchboard_registry_heartbeat_streams") == Some(n)).then_some(())
    })
    .await;
}

async fn status(client: &mut RegistryServiceClient<Channel>, id: &str) -> AgentStatus {
    let agent = client
        .get_agent(GetAgentRequest { agent_id: id.to_owned() })
        .await
        .expect("get agent")
        .into_inner()
        .agent
        .expect("agent");
    agent.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_heartbeat_is_acked_with_its_sequence_status_server_time_and_interval() {
    let config = RegistryConfig {
        liveness: LivenessConfig { interval: Duration::from_secs(2), ..LivenessConfig::default() },
        ..RegistryConfig::default()
    };
    let server = TestRegistry::builder().config(config).start().await;
    let mut client = server.registry_client().await;
    let id = register(&mut client, common::provider("clock", "time", "1.0.0", &[])).await;
    let before = std::time::SystemTime::now();
    let mut session =
        HeartbeatSession::open(server.channel().await, &id, Duration::from_millis(20)).await;

    let mut sequences = Vec::new();
    while sequences.len() < 5 {
        match session.next(SOON).await.expect("stream stays open") {
            Message::Ack(ack) => {
                assert_eq!(ack.status(), AgentStatus::Healthy, "{ack:?}");
                let server_time: std::time::SystemTime =
                    ack.server_time.expect("server time").try_into().unwrap();
                let slack = Duration::from_secs(1);
                assert!(
                    server_time + slack >= before,
                    "server time {server_time:?} before the test"
                );
                assert!(
                    server_time <= std::time::SystemTime::now() + slack,
                    "server time in the future"
                );
                let heartbeat = ack.heartbeat.expect("heartbeat parameters");
                assert_eq!(
                    heartbeat.interval,
                    Some(prost_types::Duration { seconds: 2, nanos: 0 })
                );
                assert_eq!(heartbeat.degraded_after.unwrap().seconds, 15);
                assert_eq!(heartbeat.expired_after.unwrap().seconds, 30);
                assert!(ack.resolution_revision > 0, "{ack:?}");
                sequences.push(ack.sequence);
            }
            Message::Resolution(_) => {}
            Message::Control(control) => panic!("unexpected control message {control:?}"),
        }
    }
    assert_eq!(sequences, [1, 2, 3, 4, 5], "one ack per heartbeat, in order, same sequence");

    // The unary heartbeat echoes its sequence too.
    let ack = server
        .heartbeat_client()
        .await
        .send_heartbeat(SendHeartbeatRequest {
            agent_id: id.clone(),
            sequence: 4242,
            labels: None,
            health: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ack
        .unwrap();
    assert_eq!(ack.sequence, 4242);
    assert_eq!(ack.status(), AgentStatus::Healthy);
    assert!(ack.server_time.is_some());
    assert_eq!(ack.heartbeat.unwrap().interval.unwrap().seconds, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_registers_is_pushed_to_the_waiting_dependent() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let (mut hello, initial) =
        dependent(&server, common::consumer("hello", "date_service", ">=1.0", &[])).await;
    assert!(providers(&initial).is_empty(), "nothing provides date_service yet: {initial:?}");
    assert!(!initial.resolutions[0].dependencies[0].reason.is_empty(), "unresolved says why");

    let date = register(&mut client, common::provider("date", "date_service", "1.2.0", &[])).await;
    let update = hello.resolution_where(SOON, |u| !providers(u).is_empty()).await;
    assert_eq!(provider_ids(&update), [date.as_str()]);
    let provider = &providers(&update)[0];
    assert_eq!(provider.status(), AgentStatus::Healthy);
    assert_eq!(provider.version, "1.2.0");
    assert_eq!(provider.endpoint, "http://127.0.0.1:9/date/mcp");
    assert!(update.resolution_revision > initial.resolution_revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_provider_is_replaced_by_a_healthy_one_at_once() {
    // Default timings: no timer could degrade anyone within this test, so the
    // rewiring can only come from the broken stream.
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let addr = server.addr.to_string();
    let fast =
        ProviderProcess::spawn(provider_bin(), &addr, "fastdate", "date_service", "2.0.0", &[])
            .await;
    let spare =
        register(&mut client, common::provider("spare", "date_service", "1.0.0", &[])).await;
    let _spare_session = HeartbeatSession::open(server.channel().await, &spare, EVERY).await;
    let (mut hello, initial) =
        dependent(&server, common::consumer("hello", "date_service", ">=1.0", &[])).await;
    assert_eq!(provider_ids(&initial), [fast.agent_id.as_str()], "highest version wins");
    bound_streams(&server, 3.0).await;

    let fast_id = fast.agent_id.clone();
    fast.kill();
    let update = hello.resolution_where(SOON, |u| provider_ids(u) != [fast_id.as_str()]).await;
    assert_eq!(provider_ids(&update), [spare.as_str()], "rewired to the healthy provider");
    assert_eq!(providers(&update)[0].status(), AgentStatus::Healthy);
    assert_eq!(status(&mut client, &fast_id).await, AgentStatus::Degraded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_last_provider_leaves_the_dependent_unresolved_at_once() {
    // Default timings: nothing can expire within this test, so "unresolved"
    // can only come from the broken stream.
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let addr = server.addr.to_string();
    let only =
        ProviderProcess::spawn(provider_bin(), &addr, "date", "date_service", "1.0.0", &[]).await;
    let (mut hello, initial) =
        dependent(&server, common::consumer("hello", "date_service", ">=1.0", &[])).await;
    assert_eq!(provider_ids(&initial), [only.agent_id.as_str()]);
    bound_streams(&server, 2.0).await;

    let only_id = only.agent_id.clone();
    only.kill();
    let update = hello.resolution_where(SOON, |u| provider_ids(u) != [only_id.as_str()]).await;
    assert!(providers(&update).is_empty(), "a crashed provider is not wired: {update:?}");
    let reason = &update.resolutions[0].dependencies[0].reason;
    assert!(reason.contains("date_service"), "reason names the capability: {reason}");
    assert!(update.resolution_revision > initial.resolution_revision);
    // Not expired: it may come back within expired_after.
    assert_eq!(status(&mut client, &only_id).await, AgentStatus::Degraded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_whose_stream_comes_back_is_wired_again() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let date = register(&mut client, common::provider("date", "date_service", "1.0.0", &[])).await;
    let session = HeartbeatSession::open(server.channel().await, &date, EVERY).await;
    let (mut hello, initial) =
        dependent(&server, common::consumer("hello", "date_service", ">=1.0", &[])).await;
    assert_eq!(provider_ids(&initial), [date.as_str()]);
    bound_streams(&server, 2.0).await;

    // The provider's connection drops: unwired at once.
    session.abort();
    hello.resolution_where(SOON, |u| providers(u).is_empty()).await;
    assert_eq!(status(&mut client, &date).await, AgentStatus::Degraded);

    // It reconnects and heartbeats: HEALTHY again and wired again.
    let _session = HeartbeatSession::open(server.channel().await, &date, EVERY).await;
    let update = hello.resolution_where(SOON, |u| !providers(u).is_empty()).await;
    assert_eq!(provider_ids(&update), [date.as_str()]);
    assert_eq!(providers(&update)[0].status(), AgentStatus::Healthy);
    assert_eq!(status(&mut client, &date).await, AgentStatus::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_better_tagged_provider_takes_over_and_equals_are_balanced() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let plain =
        register(&mut client, common::provider("plain", "date_service", "1.5.0", &[])).await;
    let (mut hello, initial) =
        dependent(&server, common::consumer("hello", "date_service", ">=1.0", &["+fast"])).await;
    assert_eq!(provider_ids(&initial), [plain.as_str()], "a preferred tag is not required");

    // A lower version with the preferred tag outranks a higher one without.
    let fast =
        register(&mut client, common::provider("fast", "date_service", "1.0.0", &["fast"])).await;
    let update = hello.resolution_where(SOON, |u| provider_ids(u) != [plain.as_str()]).await;
    assert_eq!(provider_ids(&update), [fast.as_str()]);
    assert_eq!(providers(&update)[0].score, 10);

    // An equal replica joins: all top-ranked providers are returned.
    let twin =
        register(&mut client, common::provider("twin", "date_service", "1.0.0", &["fast"])).await;
    let update = hello.resolution_where(SOON, |u| providers(u).len() == 2).await;
    let mut ids = provider_ids(&update);
    ids.sort_unstable();
    let mut expected = [fast.as_str(), twin.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregistered_providers_are_pushed_away() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let one = register(&mut client, common::provider("one", "date_service", "1.0.0", &[])).await;
    let two = register(&mut client, common::provider("two", "date_service", "1.0.0", &[])).await;
    let (mut hello, initial) =
        dependent(&server, common::consumer("hello", "date_service", ">=1.0", &[])).await;
    assert_eq!(providers(&initial).len(), 2);

    client.deregister_agent(DeregisterAgentRequest { agent_id: one.clone() }).await.unwrap();
    let update = hello.resolution_where(SOON, |u| providers(u).len() != 2).await;
    assert_eq!(provider_ids(&update), [two.as_str()]);

    client.deregister_agent(DeregisterAgentRequest { agent_id: two.clone() }).await.unwrap();
    let update = hello.resolution_where(SOON, |u| providers(u).len() != 1).await;
    assert!(providers(&update).is_empty(), "no provider left: {update:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_pushed_only_to_the_agents_it_affects() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let (mut needs_alpha, _) =
        dependent(&server, common::consumer("needs-alpha", "alpha", "", &[])).await;
    let (mut needs_beta, _) =
        dependent(&server, common::consumer("needs-beta", "beta", "", &[])).await;
    let quiet = Duration::from_secs(1);

    let alpha = register(&mut client, common::provider("alpha", "alpha", "1.0.0", &[])).await;
    let update = needs_alpha.resolution_where(SOON, |u| !providers(u).is_empty()).await;
    assert_eq!(provider_ids(&update), [alpha.as_str()]);
    let stray = needs_beta.resolutions_within(quiet).await;
    assert!(stray.is_empty(), "an alpha change was pushed to the beta dependent: {stray:?}");

    let beta = register(&mut client, common::provider("beta", "beta", "1.0.0", &[])).await;
    let update = needs_beta.resolution_where(SOON, |u| !providers(u).is_empty()).await;
    assert_eq!(provider_ids(&update), [beta.as_str()]);
    let stray = needs_alpha.resolutions_within(quiet).await;
    assert!(stray.is_empty(), "a beta change was pushed to the alpha dependent: {stray:?}");

    // A provider nobody depends on wakes nobody.
    register(&mut client, common::provider("gamma", "gamma", "1.0.0", &[])).await;
    let (a, b) =
        tokio::join!(needs_alpha.resolutions_within(quiet), needs_beta.resolutions_within(quiet));
    assert!(a.is_empty() && b.is_empty(), "unrelated change pushed: {a:?} {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joining_is_pushed_to_every_dependent_sharing_the_spec() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let first = register(&mut client, common::provider("date", "date_service", "1.2.0", &[])).await;
    // One of the dependents also provides the capability: it must get the
    // others, never itself, while everyone else shares one resolution.
    let mut both = common::provider("both", "date_service", "1.2.0", &[]);
    both.tools[0].dependencies =
        common::consumer("x", "date_service", ">=1.0", &[]).tools[0].dependencies.clone();
    let both_id = register(&mut client, both).await;
    let mut both_session = HeartbeatSession::open(server.channel().await, &both_id, EVERY).await;
    let mut sessions = Vec::new();
    for i in 0..40 {
        let request = common::consumer(&format!("hello{i}"), "date_service", ">=1.0", &[]);
        sessions.push(dependent(&server, request).await.0);
    }

    let second =
        register(&mut client, common::provider("date", "date_service", "1.2.0", &[])).await;
    let mut everyone = vec![first.as_str(), second.as_str(), both_id.as_str()];
    everyone.sort_unstable();
    for session in &mut sessions {
        let update = session.resolution_where(SOON, |u| providers(u).len() == 3).await;
        assert_eq!(provider_ids(&update), everyone);
    }
    let update = both_session.resolution_where(SOON, |u| providers(u).len() == 2).await;
    let mut others = vec![first.as_str(), second.as_str()];
    others.sort_unstable();
    assert_eq!(provider_ids(&update), others, "an agent never resolves to itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_dependents_sharing_a_spec_are_all_pushed_the_same_wiring() {
    const DEPENDENTS: usize = 300;
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let requests = (0..DEPENDENTS)
        .map(|i| common::consumer(&format!("fan{i:03}"), "fan_service", ">=1.0", &[]));
    let started = futures::future::join_all(requests.map(|r| dependent(&server, r))).await;
    let (mut sessions, initial): (Vec<_>, Vec<_>) = started.into_iter().unzip();
    assert!(initial.iter().all(|u| providers(u).is_empty()), "nothing provides fan_service yet");
    bound_streams(&server, DEPENDENTS as f64).await;

    // One provider joins: every dependent gets the very same update, naming it.
    let first = register(&mut client, common::provider("fan", "fan_service", "1.0.0", &[])).await;
    let joined = futures::future::join_all(
        sessions.iter_mut().map(|s| s.resolution_where(SOON, |u| !providers(u).is_empty())),
    )
    .await;
    let expected = &joined[0];
    assert_eq!(provider_ids(expected), [first.as_str()]);
    assert_eq!(providers(expected)[0].endpoint, "http://127.0.0.1:9/fan/mcp");
    assert_eq!(providers(expected)[0].status(), AgentStatus::Healthy);
    assert!(expected.resolution_revision > initial[0].resolution_revision);
    for (session, update) in sessions.iter().zip(&joined) {
        assert_eq!(update, expected, "{} was pushed another wiring", session.agent_id);
    }

    // A second replica: every dependent ends with both, at a newer revision,
    // and is never pushed the older wiring again.
    let second = register(&mut client, common::provider("fan", "fan_service", "1.0.0", &[])).await;
    let mut both = vec![first.as_str(), second.as_str()];
    both.sort_unstable();
    for session in &mut sessions {
        let update = session.resolution_where(SOON, |u| providers(u).len() == 2).await;
        assert_eq!(provider_ids(&update), both);
        assert!(update.resolution_revision > expected.resolution_revision);
    }
    let quiet = Duration::from_millis(300);
    let later =
        futures::future::join_all(sessions.iter_mut().map(|s| s.resolutions_within(quiet))).await;
    for (session, later) in sessions.iter().zip(later) {
        assert!(
            later.iter().all(|u| providers(u).len() == 2),
            "{} was pushed an older wiring: {later:?}",
            session.agent_id
        );
    }
}
