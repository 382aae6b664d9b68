//! The gateway keeps routing from its cached table while the registry is
//! down (SIGKILL of the registry process), and follows the registry again
//! once it is back on the same address and data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_agent::Agent;
use switchboard_examples::date_service;
use switchboard_tests::gateway::free_addr;
use switchboard_tests::{
    InProcessGateway, McpClient, SwitchboardProcess, TestRegistry, echo, eventually, metric_value,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// A registry process on a pinned address, so it comes back where clients look.
async fn registry() -> TestRegistry {
    TestRegistry::builder().child_process(&[]).pinned(free_addr()).start().await
}

async fn wait_for_tools(client: &McpClient, expected: &[&str]) {
    eventually(&format!("tools/list = {expected:?}"), DEADLINE, || async {
        let names = client.tool_names().await.ok()?;
        (names == expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_keep_working_while_the_registry_is_down_and_new_tools_appear_after_its_restart() {
    let registry = registry().await;
    let addr = registry.addr.to_string();
    let again = registry.relaunch();
    let gateway = InProcessGateway::start(&addr).await;
    let _date = date_service::start(Agent::new("date-service").registry(&addr)).await.unwrap();
    let client = McpClient::new(&gateway.url());
    wait_for_tools(&client, &["get_date"]).await;
    let revision = |metrics: &str| metric_value(metrics, "switchboard_gateway_table_revision");
    let before = revision(&gateway.metrics().await).unwrap();

    tokio::task::spawn_blocking(move || registry.kill()).await.unwrap();
    for _ in 0..5 {
        let date = client.call_text("get_date", json!({})).await;
        assert!(date.starts_with('2'), "served from the cached table: {date}");
        assert_eq!(client.tool_names().await.unwrap(), ["get_date"]);
    }
    let (status, body) = gateway.get("/readyz").await;
    assert_eq!(status, 200, "still ready on its cached table: {body}");

    let _registry = again.start().await;
    let _late = echo(&addr, "latecomer", "registered after the restart").await;
    wait_for_tools(&client, &["get_date", "whoami"]).await;
    assert_eq!(client.call_text("whoami", json!({})).await, "registered after the restart");
    assert!(client.call_text("get_date", json!({})).await.starts_with('2'));
    let after = revision(&gateway.metrics().await).unwrap();
    assert!(after > before, "the table follows the registry's revisions: {before} → {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_process_serves_through_a_registry_crash_and_follows_its_restart() {
    let registry = registry().await;
    let addr = registry.addr.to_string();
    let again = registry.relaunch();
    let gateway = SwitchboardProcess::spawn(
        &["gateway", "--registry", &addr, "--gateway-addr", "127.0.0.1:0"],
        &["gateway"],
    );
    let gateway_addr = gateway.addr("gateway");
    let client = McpClient::new(&format!("http://{gateway_addr}/mcp"));
    let _date = date_service::start(Agent::new("date-service").registry(&addr)).await.unwrap();
    wait_for_tools(&client, &["get_date"]).await;
    let ready = format!("http://{gateway_addr}/readyz");
    assert_eq!(switchboard_tests::gateway::http_get(&ready).await.0, 200);

    tokio::task::spawn_blocking(move || registry.kill()).await.unwrap();
    for _ in 0..3 {
        assert!(client.call_text("get_date", json!({})).await.starts_with('2'));
    }
    assert_eq!(switchboard_tests::gateway::http_get(&ready).await.0, 200, "ready on its cache");

    let _registry = again.start().await;
    let _late = echo(&addr, "latecomer", "after the restart").await;
    wait_for_tools(&client, &["get_date", "whoami"]).await;
    assert_eq!(client.call_text("whoami", json!({})).await, "after the restart");
    let status = tokio::task::spawn_blocking(move || gateway.terminate()).await.unwrap();
    assert!(status.success(), "the gateway exits cleanly on SIGTERM: {status:?}");
}
