//! The gateway's tool namespace: the union of the mesh's tools, replicas as
//! one tool, and the same tool name from two different agents exposed as
//! `<agent>__<tool>`, each call reaching the right agent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_agent::Agent;
use switchboard_examples::{date_service, hello};
use switchboard_tests::{InProcessGateway, InProcessRegistry, McpClient, echo, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

/// Waits until `tools/list` at the gateway is exactly `expected`.
async fn wait_for_tools(client: &McpClient, expected: &[&str]) {
    eventually(&format!("tools/list = {expected:?}"), DEADLINE, || async {
        let names = client.tool_names().await.ok()?;
        (names == expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_of_every_agent_are_listed_and_greet_reaches_its_dependency_through_the_gateway() {
    let registry = InProcessRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let agent = |name: &str| Agent::new(name).registry(&addr).listen("127.0.0.1:0");
    let _date = date_service::start(agent("date-service")).await.unwrap();
    let _hello = hello::start(agent("hello")).await.unwrap();

    for client in [McpClient::new(&gateway.url()), McpClient::legacy(&gateway.url())] {
        wait_for_tools(&client, &["get_date", "greet"]).await;
        let text = eventually("greet with a date", DEADLINE, || async {
            let text = client.call_text("greet", json!({"name": "Ada"})).await;
            text.contains("Today is ").then_some(text)
        })
        .await;
        assert!(text.starts_with("Hello, Ada! Today is 2"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_tool_from_two_agents_is_prefixed_and_each_call_reaches_its_agent() {
    let registry = InProcessRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let client = McpClient::new(&gateway.url());

    let _alpha = echo(&addr, "alpha", "I am alpha").await;
    wait_for_tools(&client, &["whoami"]).await;
    assert_eq!(client.call_text("whoami", json!({})).await, "I am alpha");

    let _beta = echo(&addr, "beta", "I am beta").await;
    wait_for_tools(&client, &["alpha__whoami", "beta__whoami"]).await;
    for _ in 0..5 {
        assert_eq!(client.call_text("alpha__whoami", json!({})).await, "I am alpha");
        assert_eq!(client.call_text("beta__whoami", json!({})).await, "I am beta");
    }
    let bare = client.call("whoami", json!({})).await.expect_err("the bare name is ambiguous now");
    assert_eq!(switchboard_tests::gateway::error_code(&bare), Some(-32602), "{bare}");

    // A replica of alpha (same agent name) does not add a third name.
    let _alpha_2 = echo(&addr, "alpha", "I am alpha too").await;
    eventually("a call served by the second alpha replica", DEADLINE, || async {
        let text = client.call_text("alpha__whoami", json!({})).await;
        (text == "I am alpha too").then_some(())
    })
    .await;
    let names = client.tool_names().await.unwrap();
    assert_eq!(names, ["alpha__whoami", "beta__whoami"]);
}
