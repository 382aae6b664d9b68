//! The Rust agent SDK with real processes: the example agents `date-service`
//! and `hello` against a real registry process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use rmcp::{tool, tool_router};
use serde_json::json;
use switchboard_agent::{Agent, AgentError};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{
    AgentStatus, EventType, GetAgentRequest, ListAgentsRequest, WatchRequest,
};
use switchboard_tests::gateway::free_addr;
use switchboard_tests::{AgentProcess, TestRegistry, eventually, mcp};

const DEADLINE: Duration = Duration::from_secs(30);

async fn greet(hello: &AgentProcess) -> String {
    let result = mcp::call_tool(&hello.endpoint(), "greet", json!({"name": "Ada"}))
        .await
        .expect("greet answers");
    mcp::text(&result)
}

async fn greets_with_date(hello: &AgentProcess) -> bool {
    greet(hello).await.contains("Today is ")
}

async fn registry_client(registry: &str) -> RegistryServiceClient<tonic::transport::Channel> {
    RegistryServiceClient::new(switchboard_client::connect(registry).await.expect("registry"))
}

/// Short liveness timings for a registry that must come back on the same address.
const FLAGS: [&str; 6] =
    ["--heartbeat-interval", "300ms", "--degraded-after", "2s", "--expired-after", "4s"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_greets_with_the_date_served_by_date_service() {
    let registry = TestRegistry::builder().child_process(&[]).start().await;
    let _date = AgentProcess::spawn("date-service", &registry.addr.to_string());
    let hello = AgentProcess::spawn("hello", &registry.addr.to_string());
    let text = greet(&hello).await;
    assert!(text.starts_with("Hello, Ada! Today is 2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greet_degrades_when_date_service_is_killed_and_recovers_when_it_returns() {
    let registry = TestRegistry::builder().child_process(&[]).start().await;
    // hello first: its wiring arrives by push when date-service joins.
    let hello = AgentProcess::spawn("hello", &registry.addr.to_string());
    let date = AgentProcess::spawn("date-service", &registry.addr.to_string());
    eventually("greet with a date", DEADLINE, || async {
        greets_with_date(&hello).await.then_some(())
    })
    .await;

    date.kill();
    let degraded = eventually("a degraded greet", DEADLINE, || async {
        let text = greet(&hello).await;
        text.contains("no date today").then_some(text)
    })
    .await;
    assert!(degraded.starts_with("Hello, Ada!"), "still answers: {degraded}");

    let _date = AgentProcess::spawn("date-service", &registry.addr.to_string());
    eventually("the date again, without restarting hello", DEADLINE, || async {
        greets_with_date(&hello).await.then_some(())
    })
    .await;
}

fn tool_calls_served(metrics: &str) -> f64 {
    let sample = r#"switchboard_agent_tool_calls_total{tool="get_date",outcome="ok"} "#;
    metrics.lines().find_map(|l| l.strip_prefix(sample)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_spread_across_two_date_service_replicas() {
    let registry = TestRegistry::builder().child_process(&[]).start().await;
    let replicas = [
        AgentProcess::spawn("date-service", &registry.addr.to_string()),
        AgentProcess::spawn("date-service", &registry.addr.to_string()),
    ];
    let hello = AgentProcess::spawn("hello", &registry.addr.to_string());
    let mut client = registry_client(&registry.addr.to_string()).await;
    eventually("hello wired to both replicas", DEADLINE, || {
        let mut client = client.clone();
        let id = hello.agent_id.clone();
        async move {
            let answer =
                client.get_agent(GetAgentRequest { agent_id: id }).await.ok()?.into_inner();
            (answer.resolutions[0].dependencies[0].providers.len() == 2).then_some(())
        }
    })
    .await;
    for _ in 0..8 {
        assert!(greets_with_date(&hello).await);
    }
    for replica in &replicas {
        let url = format!("http://{}/metrics", replica.mcp_addr);
        let metrics = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let served = tool_calls_served(&metrics);
        assert!(served >= 1.0, "replica {} served no call:\n{metrics}", replica.agent_id);
    }
    drop(client.get_agent(GetAgentRequest { agent_id: hello.agent_id.clone() }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_keep_serving_through_a_registry_outage_and_reattach_after_it() {
    let registry = TestRegistry::builder().child_process(&FLAGS).pinned(free_addr()).start().await;
    let addr = registry.addr.to_string();
    let again = registry.relaunch();
    let date = AgentProcess::spawn("date-service", &addr);
    let hello = AgentProcess::spawn("hello", &addr);
    eventually("greet with a date", DEADLINE, || async {
        greets_with_date(&hello).await.then_some(())
    })
    .await;

    registry.kill();
    for _ in 0..3 {
        assert!(greets_with_date(&hello).await, "last wiring kept while the registry is down");
    }

    let _registry = again.start().await;
    let mut client = registry_client(&addr).await;
    for agent in [&date.agent_id, &hello.agent_id] {
        eventually("the agent re-attached and heartbeats", DEADLINE, || {
            let mut client = client.clone();
            let id = agent.clone();
            async move {
                let agent = client
                    .get_agent(GetAgentRequest { agent_id: id })
                    .await
                    .ok()?
                    .into_inner()
                    .agent?;
                // last_heartbeat_at lives in memory: set only once the agent is back.
                (agent.status() == AgentStatus::Healthy && agent.last_heartbeat_at.is_some())
                    .then_some(())
            }
        })
        .await;
    }
    assert!(greets_with_date(&hello).await);
    drop(client.get_agent(GetAgentRequest { agent_id: date.agent_id.clone() }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_deregisters_at_once_and_dependents_are_rewired() {
    let registry = TestRegistry::builder().child_process(&[]).start().await;
    let date = AgentProcess::spawn("date-service", &registry.addr.to_string());
    let hello = AgentProcess::spawn("hello", &registry.addr.to_string());
    eventually("greet with a date", DEADLINE, || async {
        greets_with_date(&hello).await.then_some(())
    })
    .await;

    let date_id = date.agent_id.clone();
    let mut client = registry_client(&registry.addr.to_string()).await;
    let before =
        client.list_agents(ListAgentsRequest::default()).await.unwrap().into_inner().revision;
    let status = date.terminate();
    assert!(status.success(), "clean exit: {status:?}");
    // The history after the shutdown: a removal, and no DEGRADED before it
    // (the SDK deregisters before it closes its heartbeat stream).
    let channel = switchboard_client::connect(&registry.addr.to_string()).await.unwrap();
    let request = WatchRequest { since_revision: before, ..WatchRequest::default() };
    let mut watch = WatchServiceClient::new(channel).watch(request).await.unwrap().into_inner();
    loop {
        let event =
            tokio::time::timeout(DEADLINE, watch.message()).await.unwrap().unwrap().unwrap();
        if event.agent.as_ref().is_none_or(|a| a.id != date_id) {
            continue;
        }
        assert_eq!(
            event.r#type(),
            EventType::Removed,
            "first event of the leaving agent: {event:?}"
        );
        assert_eq!(event.reason, "deregistered");
        break;
    }
    let gone = client.get_agent(GetAgentRequest { agent_id: date_id }).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "deregistered before exiting");
    let text = greet(&hello).await;
    assert!(text.contains("no date today"), "rewired at once: {text}");
}

#[derive(Clone)]
struct Clock;

#[tool_router(server_handler)]
impl Clock {
    #[tool(description = "Now")]
    async fn now(&self) -> String {
        "now".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_a_clear_error_naming_the_problem() {
    // Agents wait for an absent registry unless they are told to require it.
    let output = std::process::Command::new(switchboard_tests::workspace_bin("hello"))
        .env("SWITCHBOARD_REGISTRY", "127.0.0.1:1")
        .env("SWITCHBOARD_REQUIRE_REGISTRY", "true")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("registry unreachable at start"), "{stderr}");
    assert!(stderr.contains("require_registry"), "{stderr}");
    let output = std::process::Command::new(switchboard_tests::workspace_bin("hello"))
        .env("SWITCHBOARD_REQUIRE_REGISTRY", "maybe")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"SWITCHBOARD_REQUIRE_REGISTRY "maybe""#), "{stderr}");

    let registry = TestRegistry::builder().child_process(&[]).start().await;
    let address = registry.addr.to_string();
    let start = |configure: fn(Agent) -> Agent| {
        let agent = configure(Agent::new("clock").registry(&address));
        async move { agent.start(Clock, Clock::tool_router()).await.map(|_| ()) }
    };
    let error = start(|a| a.tool("now", |t| t.capability("Not A Capability"))).await.unwrap_err();
    assert!(matches!(error, AgentError::Rejected(_)));
    assert!(error.to_string().contains(r#"tool "now": capability"#), "{error}");

    let error =
        start(|a| a.tool("now", |t| t.capability("clock").version("one.two"))).await.unwrap_err();
    assert!(error.to_string().contains(r#"tool "now": version"#), "{error}");

    let error = start(|a| a.tool("later", |t| t.capability("clock"))).await.unwrap_err();
    assert!(matches!(error, AgentError::Config(_)));
    assert!(error.to_string().contains("later"), "{error}");

    let error = start(|a| a.listen("not-an-address")).await.unwrap_err();
    assert!(error.to_string().contains("not-an-address"), "{error}");
}
