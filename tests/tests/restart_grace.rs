//! A registry restart is invisible to agents that reconnect: they are HEALTHY
//! on their new streams with no status churn in the event history, and an
//! agent that does not come back gets one full `expired_after` of grace
//! before it expires, so a restart never causes an eviction storm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime};

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{
    Agent, AgentStatus, EventType, GetAgentRequest, ListAgentsRequest, WatchRequest, WatchResponse,
};
use switchboard_tests::{HeartbeatSession, TestRegistry};
use tonic::transport::Channel;

/// Short liveness timings for the child registry.
const FLAGS: [&str; 6] =
    ["--heartbeat-interval", "200ms", "--degraded-after", "1s", "--expired-after", "2s"];
const EVERY: Duration = Duration::from_millis(200);
const EXPIRED_AFTER: Duration = Duration::from_secs(2);
/// Generous bound for anything that should happen within a few seconds.
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    Terminate,
}

async fn get(client: &mut RegistryServiceClient<Channel>, id: &str) -> Agent {
    client
        .get_agent(GetAgentRequest { agent_id: id.to_owned() })
        .await
        .unwrap_or_else(|e| panic!("get {id}: {e}"))
        .into_inner()
        .agent
        .expect("agent")
}

/// Waits for the first ack on a session and returns its status.
async fn first_ack_status(session: &mut HeartbeatSession) -> AgentStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match session.next(left).await {
            Ok(Message::Ack(ack)) => return ack.status(),
            Ok(_) => {}
            Err(status) => panic!("{}: stream failed: {status:?}", session.agent_id),
        }
    }
}

async fn restart_is_invisible_to_agents_that_reconnect(stop: Stop) {
    let first = TestRegistry::builder().child_process(&FLAGS).start().await;
    let again = first.relaunch();
    let channel = switchboard_client::connect(&first.addr.to_string()).await.unwrap();
    let mut client = RegistryServiceClient::new(channel.clone());

    let mut returning = Vec::new();
    for i in 0..3 {
        let request = common::provider(&format!("date{i}"), "date_service", "1.0.0", &[]);
        returning.push(client.register_agent(request).await.unwrap().into_inner().agent_id);
    }
    let hello = client
        .register_agent(common::consumer("hello", "date_service", ">=1.0", &[]))
        .await
        .unwrap()
        .into_inner();
    returning.push(hello.agent_id.clone());
    let lost = client
        .register_agent(common::provider("lost", "lost_service", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    let mut sessions = Vec::new();
    for id in returning.iter().chain([&lost]) {
        let mut session = HeartbeatSession::open(channel.clone(), id, EVERY).await;
        assert_eq!(first_ack_status(&mut session).await, AgentStatus::Healthy);
        sessions.push(session);
    }
    let before = client.list_agents(ListAgentsRequest::default()).await.unwrap().into_inner();
    assert!(before.agents.iter().all(|a| a.status() == AgentStatus::Healthy), "{before:?}");
    let revision_before = before.revision;

    match stop {
        Stop::Kill => first.kill(),
        Stop::Terminate => first.stop().await, // asserts a clean exit on SIGTERM
    };
    for session in sessions {
        session.abort();
    }

    let restarted_at = SystemTime::now();
    let second = again.start().await;
    let channel = switchboard_client::connect(&second.addr.to_string()).await.unwrap();
    let mut sessions = Vec::new();
    for id in &returning {
        sessions.push(HeartbeatSession::open(channel.clone(), id, EVERY).await);
    }
    for session in &mut sessions {
        let status = first_ack_status(session).await;
        assert_eq!(status, AgentStatus::Healthy, "{} after reconnecting", session.agent_id);
    }
    let mut client = RegistryServiceClient::new(channel.clone());
    let status = get(&mut client, &lost).await.status();
    assert_ne!(status, AgentStatus::Expired, "the silent agent expired right after the restart");

    // Follow the history from just before the restart until the silent agent
    // expires: nothing may have happened to the agents that came back.
    let mut watch = WatchServiceClient::new(channel.clone())
        .watch(WatchRequest {
            since_revision: revision_before,
            store_epoch: hello.store_epoch.clone(),
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen: Vec<WatchResponse> = Vec::new();
    let expired = tokio::time::timeout(PATIENCE, async {
        loop {
            let message = watch.message().await.expect("watch stream").expect("watch open");
            let kind = message.r#type();
            assert_ne!(kind, EventType::ResyncRequired, "history lost across the restart");
            let agent = message.agent.clone();
            seen.push(message.clone());
            if kind == EventType::StatusChanged
                && let Some(agent) = agent
                && agent.id == lost
                && agent.status() == AgentStatus::Expired
            {
                return message;
            }
        }
    })
    .await
    .expect("the silent agent eventually expires");
    let churn: Vec<_> = seen
        .iter()
        .filter(|m| m.agent.as_ref().is_some_and(|a| returning.contains(&a.id)))
        .collect();
    assert!(churn.is_empty(), "events for agents that reconnected: {churn:#?}");
    let lost_changes: Vec<AgentStatus> = seen
        .iter()
        .filter_map(|m| m.agent.as_ref())
        .filter(|a| a.id == lost)
        .map(Agent::status)
        .collect();
    assert_eq!(lost_changes, [AgentStatus::Degraded, AgentStatus::Expired]);

    // The grace period: no expiry earlier than one expired_after after the
    // restart began (clock slack only; lateness under load is fine).
    let expired_at: SystemTime = expired.time.expect("event time").try_into().unwrap();
    let earliest = restarted_at + EXPIRED_AFTER - Duration::from_millis(50);
    assert!(
        expired_at >= earliest,
        "expired {:?} after the restart began, before the grace of {EXPIRED_AFTER:?}",
        expired_at.duration_since(restarted_at).unwrap_or_default()
    );

    // The agents that came back are still healthy, and the dependent was
    // handed its wiring on its new stream.
    for id in &returning {
        assert_eq!(get(&mut client, id).await.status(), AgentStatus::Healthy, "{id}");
    }
    let hello_session = sessions.iter_mut().find(|s| s.agent_id == hello.agent_id).unwrap();
    let wiring = hello_session
        .resolution_where(PATIENCE, |u| u.resolutions[0].dependencies[0].providers.len() == 3)
        .await;
    let providers = &wiring.resolutions[0].dependencies[0].providers;
    assert!(providers.iter().all(|p| p.status() == AgentStatus::Healthy), "{providers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_reconnecting_agents_stay_healthy_and_the_silent_one_gets_grace() {
    restart_is_invisible_to_agents_that_reconnect(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_reconnecting_agents_stay_healthy_and_the_silent_one_gets_grace() {
    restart_is_invisible_to_agents_that_reconnect(Stop::Terminate).await;
}
