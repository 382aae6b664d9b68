//! The gateway's tool namespace: the union of the mesh's tools, replicas as
//! one tool, and the same tool name from two different agents exposed as
//! `<agent>__<tool>`, each call reaching the right agent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_agent::Agent;
use switchboard_examples::{date_service, hello};
use switchboard_tests::{InProcessGateway, McpClient, TestRegistry, echo, eventually};

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
    let registry = TestRegistry::start().await;
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
    let registry = TestRegistry::start().await;
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

/// A legacy-session client that reports every `tools/list_changed`.
struct ListChanged(tokio::sync::mpsc::UnboundedSender<()>);

impl rmcp::ClientHandler for ListChanged {
    async fn on_tool_list_changed(
        &self,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        let _ = self.0.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_clients_of_both_eras_are_told_when_the_tool_list_changes() {
    use rmcp::model::{ServerNotification, SubscriptionFilter};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::{ClientLifecycleMode, ClientServiceExt as _, ServiceExt as _};

    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let _first = echo(&addr, "first", "first").await;
    gateway.caught_up(registry.registry().snapshot().revision).await;

    // Legacy era: the initialize handshake, notifications on the session's stream.
    let (told, mut legacy_notes) = tokio::sync::mpsc::unbounded_channel();
    let legacy = ListChanged(told)
        .serve(StreamableHttpClientTransport::from_uri(gateway.url()))
        .await
        .expect("legacy session");
    // 2026-07-28: a `subscriptions/listen` stream asking for tool list changes.
    let lifecycle = ClientLifecycleMode::Auto {
        preferred_versions: vec![rmcp::model::ProtocolVersion::LATEST],
        legacy_version: None,
    };
    let modern =
        ().serve_with_lifecycle(StreamableHttpClientTransport::from_uri(gateway.url()), lifecycle)
            .await
            .expect("modern client");
    let mut filter = SubscriptionFilter::default();
    filter.tools_list_changed = Some(true);
    let mut subscription = modern.peer().listen(filter).await.expect("listen");
    assert_eq!(legacy.peer().list_all_tools().await.unwrap().len(), 1);

    let _second = echo(&addr, "second", "second").await;
    tokio::time::timeout(DEADLINE, legacy_notes.recv())
        .await
        .expect("the legacy session is told within the deadline")
        .expect("a notification");
    let note = tokio::time::timeout(DEADLINE, subscription.next())
        .await
        .expect("the listen stream is told within the deadline")
        .expect("the stream is open")
        .expect("a notification");
    assert!(matches!(note, ServerNotification::ToolListChangedNotification(_)), "{note:?}");
    let names: Vec<String> =
        legacy.peer().list_all_tools().await.unwrap().into_iter().map(|t| t.name.into()).collect();
    assert_eq!(names, ["first__whoami", "second__whoami"]);
}
