//! The gateway's probes and metrics on its MCP port: `/readyz` is 503 until
//! the first routing snapshot is in, `/healthz` always answers, and
//! `/metrics` exposes the series operators rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_tests::gateway::{error_code, free_addr, sample};
use switchboard_tests::{
    InProcessGateway, McpClient, TestRegistry, echo, eventually, metric_value,
};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_the_first_snapshot_and_200_after() {
    let addr = free_addr();
    let gateway = InProcessGateway::start_unready(&addr.to_string()).await;

    let (status, body) = gateway.get("/readyz").await;
    assert_eq!(status, 503, "nothing listens at the registry address yet: {body}");
    let (status, body) = gateway.get("/healthz").await;
    assert_eq!(status, 200, "alive even when not ready: {body}");
    let client = McpClient::new(&gateway.url());
    let error = client.tool_names().await.expect_err("no table yet");
    assert_eq!(error_code(&error), Some(-32006), "{error}");
    let error = client.call("whoami", json!({})).await.expect_err("no table yet");
    assert_eq!(error_code(&error), Some(-32006), "{error}");

    let registry = TestRegistry::builder().pinned(addr).start().await;
    eventually("/readyz 200 after the first snapshot", DEADLINE, || async {
        (gateway.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(client.tool_names().await.unwrap(), Vec::<String>::new());
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_requests_latency_breakers_revision_and_sessions() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let agent = echo(&addr, "echo", "echo").await;
    let gateway = InProcessGateway::start(&addr).await;
    let revision = registry.registry().snapshot().revision;
    gateway.caught_up(revision).await;

    // A legacy client holds a session (for list_changed); a modern one does not.
    let legacy = McpClient::legacy(&gateway.url());
    let modern = McpClient::new(&gateway.url());
    for client in [&legacy, &modern] {
        assert_eq!(client.call_text("whoami", json!({})).await, "echo");
    }
    let unknown = modern.call("nope", json!({})).await.expect_err("unknown");
    assert_eq!(error_code(&unknown), Some(-32602));

    let metrics = gateway.metrics().await;
    for family in [
        "switchboard_gateway_requests_total",
        "switchboard_gateway_upstream_duration_seconds",
        "switchboard_gateway_breaker_state",
        "switchboard_gateway_table_revision",
        "switchboard_gateway_sessions",
        "switchboard_gateway_tools",
        "switchboard_gateway_failovers_total",
    ] {
        assert!(
            metrics.lines().any(|l| !l.starts_with('#') && l.starts_with(family)),
            "{family} has samples:\n{metrics}"
        );
    }
    let value = |name: &str| sample(&metrics, name);
    assert_eq!(
        value(r#"switchboard_gateway_requests_total{tool="whoami",outcome="ok"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"switchboard_gateway_requests_total{tool="-",outcome="unknown_tool"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"switchboard_gateway_upstream_duration_seconds_count{tool="whoami"}"#),
        Some(2.0)
    );
    let breaker = format!(r#"switchboard_gateway_breaker_state{{endpoint="{}"}}"#, agent.endpoint);
    assert_eq!(value(&breaker), Some(0.0), "{metrics}");
    assert!(value("switchboard_gateway_table_revision").unwrap() >= revision as f64);
    assert_eq!(value("switchboard_gateway_tools"), Some(1.0));
    assert!(value("switchboard_gateway_sessions").unwrap() >= 1.0, "the legacy session: {metrics}");
    assert_eq!(metric_value(&metrics, "switchboard_gateway_failovers_total"), Some(0.0));
}
