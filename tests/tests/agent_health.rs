//! Agents on their own terms: an agent started before its registry serves at
//! once and joins the mesh when the registry appears, with no restart; an
//! agent whose own health check fails reports itself not ready on its
//! heartbeat and the registry makes it DEGRADED ("agent reports
//! unhealthy"): out of its dependents' wiring while a healthy replica
//! exists, a last resort otherwise, and back the moment the check passes.
//! Every `/metrics` carries the process metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use switchboard_agent::{Agent, AgentError, Dependency, HealthCheck, RunningAgent};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{
    AgentHealth, AgentStatus, GetAgentRequest, GetAgentResponse, RegisterAgentRequest,
    SendHeartbeatRequest, StatusReason,
};
use switchboard_tests::gateway::{free_addr, http_get};
use switchboard_tests::{InProcessGateway, McpClient, Relay, TestRegistry, eventually, start_echo};
use tonic::Code;
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(30);

async fn relay(registry: &str) -> RunningAgent {
    let identity = Dependency::new("identity", "");
    Agent::new("relay")
        .registry(registry)
        .tool("relay", |t| t.depends_on(&identity))
        .start(Relay { identity }, Relay::tool_router())
        .await
        .unwrap()
}

/// An `identity` provider answering `name`, with `agent`'s other settings.
async fn provider(agent: Agent, name: &str) -> RunningAgent {
    start_echo(agent.tool("whoami", |t| t.capability("identity")), name).await
}

async fn get(client: &mut RegistryServiceClient<Channel>, agent_id: &str) -> GetAgentResponse {
    let request = GetAgentRequest { agent_id: agent_id.to_owned() };
    client.get_agent(request).await.unwrap().into_inner()
}

/// The provider ids the dependent's `relay` tool is wired to.
async fn wired_to(client: &mut RegistryServiceClient<Channel>, dependent: &str) -> Vec<String> {
    let response = get(client, dependent).await;
    let mut ids: Vec<String> = response
        .resolutions
        .iter()
        .flat_map(|tool| &tool.dependencies)
        .flat_map(|resolution| &resolution.providers)
        .map(|provider| provider.agent_id.clone())
        .collect();
    ids.sort();
    ids
}

/// Six answers of `whoami` through the gateway, or None if one failed.
async fn whoami_six_times(gateway: &McpClient) -> Option<Vec<String>> {
    let mut answers = Vec::new();
    for _ in 0..6 {
        let result = gateway.call("whoami", json!({})).await.ok()?;
        answers.push(switchboard_tests::mcp::text(&result));
    }
    Some(answers)
}

async fn relay_says(dependent: &RunningAgent) -> String {
    McpClient::new(&dependent.endpoint).call_text("relay", json!({})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_started_before_the_registry_becomes_routable_when_it_starts() {
    let addr = free_addr();
    let dependent = relay(&addr.to_string()).await;
    let early = provider(Agent::new("early").registry(&addr.to_string()), "early").await;
    assert!(!dependent.is_registered() && !early.is_registered());

    // Serving already: the tool answers, degraded, for want of wiring.
    let answer = relay_says(&dependent).await;
    assert!(answer.starts_with("unresolved"), "{answer}");

    let registry = TestRegistry::builder().pinned(addr).start().await;
    tokio::time::timeout(DEADLINE, early.registered()).await.expect("early registers");
    let mut client = registry.registry_client().await;
    let status = get(&mut client, &early.agent_id).await.agent.unwrap().status();
    assert_eq!(status, AgentStatus::Healthy);
    eventually("the dependent wired to the early provider", DEADLINE, || async {
        let answer = relay_says(&dependent).await;
        (answer == "ok: early").then_some(())
    })
    .await;
    assert!(dependent.is_registered());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_requires_the_registry_fails_at_start_without_it() {
    let addr = free_addr().to_string();
    let agent = Agent::new("strict").registry(&addr).require_registry(true);
    let handler = Relay { identity: Dependency::new("identity", "") };
    let error = agent.start(handler, Relay::tool_router()).await.map(|_| ()).unwrap_err();
    assert!(matches!(error, AgentError::RegistryUnreachable(_)), "{error}");
    assert!(error.to_string().contains("require_registry"), "{error}");
}

/// A health check named `disk` that fails while `failing` is set.
fn disk_check(failing: &Arc<AtomicBool>) -> HealthCheck {
    let failing = failing.clone();
    HealthCheck::new("disk", move || {
        let failing = failing.load(Ordering::SeqCst);
        async move { if failing { Err("no space left in /data") } else { Ok(()) } }
    })
    .interval(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_makes_the_agent_unroutable_until_it_passes() {
    let registry = TestRegistry::start().await;
    let address = registry.addr.to_string();
    let failing = Arc::new(AtomicBool::new(false));
    let sick =
        provider(Agent::new("echo").registry(&address).health_check(disk_check(&failing)), "sick")
            .await;
    // Replicas: one agent name, so the gateway serves one `whoami` tool.
    let well = provider(Agent::new("echo").registry(&address), "well").await;
    let dependent = relay(&address).await;
    let front = InProcessGateway::start(&address).await;
    let gateway = McpClient::new(&front.url());
    let mut client = registry.registry_client().await;
    let both = {
        let mut ids = vec![sick.agent_id.clone(), well.agent_id.clone()];
        ids.sort();
        ids
    };
    eventually("wired to both replicas", DEADLINE, || {
        let mut client = client.clone();
        let (both, dependent) = (both.clone(), dependent.agent_id.clone());
        async move { (wired_to(&mut client, &dependent).await == both).then_some(()) }
    })
    .await;
    let (code, body) = http_get(&format!("http://{}/readyz", sick.local_addr)).await;
    assert_eq!(code, 200, "{body}");
    eventually("the gateway routes to both replicas", DEADLINE, || async {
        let answers = whoami_six_times(&gateway).await?;
        (answers.iter().any(|a| a == "sick") && answers.iter().any(|a| a == "well")).then_some(())
    })
    .await;

    failing.store(true, Ordering::SeqCst);
    eventually("the sick replica unwired", DEADLINE, || {
        let mut client = client.clone();
        let (well, dependent) = (well.agent_id.clone(), dependent.agent_id.clone());
        async move { (wired_to(&mut client, &dependent).await == [well]).then_some(()) }
    })
    .await;
    let agent = get(&mut client, &sick.agent_id).await.agent.unwrap();
    assert_eq!(agent.status(), AgentStatus::Degraded);
    assert_eq!(agent.cause(), StatusReason::AgentUnhealthy);
    assert_eq!(agent.status_reason, "agent reports unhealthy");
    for _ in 0..4 {
        assert_eq!(relay_says(&dependent).await, "ok: well");
    }
    // The gateway follows the same rule.
    eventually("the gateway routes to the healthy replica only", DEADLINE, || async {
        let answers = whoami_six_times(&gateway).await?;
        answers.iter().all(|answer| answer == "well").then_some(())
    })
    .await;

    let (code, body) = http_get(&format!("http://{}/readyz", sick.local_addr)).await;
    assert_eq!(code, 503, "{body}");
    let probe: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(probe["status"], "not ready");
    assert_eq!(probe["registered"], true);
    let check = &probe["checks"][0];
    assert_eq!((check["name"].as_str(), check["ok"].as_bool()), (Some("disk"), Some(false)));
    assert_eq!(check["last_error"], "no space left in /data");
    assert!(check["last_run"].as_str().is_some_and(|t| t.ends_with('Z')), "{check}");
    let (code, body) = http_get(&format!("http://{}/healthz", sick.local_addr)).await;
    assert_eq!(code, 200, "alive though not ready: {body}");

    // With no healthy replica left, the unhealthy one is a last resort.
    well.shutdown().await.unwrap();
    eventually("the sick replica as last resort", DEADLINE, || {
        let mut client = client.clone();
        let (sick, dependent) = (sick.agent_id.clone(), dependent.agent_id.clone());
        async move { (wired_to(&mut client, &dependent).await == [sick]).then_some(()) }
    })
    .await;
    assert_eq!(relay_says(&dependent).await, "ok: sick");

    failing.store(false, Ordering::SeqCst);
    eventually("the sick replica healthy again", DEADLINE, || {
        let mut client = client.clone();
        let sick = sick.agent_id.clone();
        async move {
            let agent = get(&mut client, &sick).await.agent?;
            (agent.status() == AgentStatus::Healthy).then_some(())
        }
    })
    .await;
    let (code, body) = http_get(&format!("http://{}/readyz", sick.local_addr)).await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metrics_endpoint_has_the_process_metrics() {
    let registry = TestRegistry::start().await;
    let address = registry.addr.to_string();
    let agent = provider(Agent::new("measured").registry(&address), "measured").await;
    let gateway = InProcessGateway::start(&address).await;
    let (_, registry_text) = http_get(&format!("http://{}/metrics", registry.admin_addr)).await;
    let (_, agent_text) = http_get(&format!("http://{}/metrics", agent.local_addr)).await;
    let gateway_text = gateway.metrics().await;
    for (who, text) in
        [("registry", &registry_text), ("agent", &agent_text), ("gateway", &gateway_text)]
    {
        for name in
            ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"]
        {
            let value = switchboard_tests::gateway::sample(text, name);
            assert!(value.is_some_and(|v| v >= 0.0), "{who}: {name} missing:\n{text}");
        }
        let rss = switchboard_tests::gateway::sample(text, "process_resident_memory_bytes");
        assert!(rss.is_some_and(|bytes| bytes > 1_000_000.0), "{who}: {rss:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unary_heartbeat_carries_the_verdict_and_a_malformed_one_is_refused() {
    let registry = TestRegistry::start().await;
    let mut client = registry.registry_client().await;
    // Registered without an SDK, so no heartbeat but the test's own.
    let request = RegisterAgentRequest {
        name: "unary".into(),
        endpoint: "http://127.0.0.1:1/mcp".into(),
        ..RegisterAgentRequest::default()
    };
    let agent_id = client.register_agent(request).await.unwrap().into_inner().agent_id;
    let mut heartbeats = registry.heartbeat_client().await;
    let send = |sequence, health| SendHeartbeatRequest {
        agent_id: agent_id.clone(),
        sequence,
        labels: None,
        health,
    };

    let bad = AgentHealth { ready: false, failing_checks: vec!["db".into(), "Bad Name".into()] };
    let status = heartbeats.send_heartbeat(send(1, Some(bad))).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("health.failing_checks[1]"), "{status:?}");
    let many = AgentHealth { ready: false, failing_checks: vec!["x".into(); 65] };
    let status = heartbeats.send_heartbeat(send(2, Some(many))).await.unwrap_err();
    assert!(status.message().contains("health.failing_checks"), "{status:?}");

    let sick = AgentHealth { ready: false, failing_checks: vec!["db".into()] };
    let ack = heartbeats.send_heartbeat(send(3, Some(sick))).await.unwrap().into_inner().ack;
    assert_eq!(ack.unwrap().status(), AgentStatus::Degraded);
    let stored = |client: &RegistryServiceClient<Channel>, cause: StatusReason| {
        let (mut client, agent_id) = (client.clone(), agent_id.clone());
        async move {
            let agent = get(&mut client, &agent_id).await.agent?;
            (agent.cause() == cause).then_some(agent)
        }
    };
    let agent = eventually("stored as unhealthy", DEADLINE, || {
        stored(&client, StatusReason::AgentUnhealthy)
    })
    .await;
    assert_eq!(agent.status_reason, "agent reports unhealthy");

    // A heartbeat without a verdict counts as ready.
    let ack = heartbeats.send_heartbeat(send(4, None)).await.unwrap().into_inner().ack;
    assert_eq!(ack.unwrap().status(), AgentStatus::Healthy);
    eventually("stored as healthy", DEADLINE, || stored(&client, StatusReason::Unspecified)).await;
}
