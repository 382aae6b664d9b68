//! A slow agent: the gateway answers -32004 within its call timeout instead
//! of hanging, and keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rmcp::{tool, tool_router};
use switchboard_agent::Agent;
use switchboard_gateway::GatewayConfig;
use switchboard_proto::v1::ListAgentsRequest;
use switchboard_tests::TestRegistry;
use switchboard_tests::gateway::{InProcessGateway, McpClient, error_code};

#[derive(Clone)]
struct Slow;

#[tool_router(server_handler)]
impl Slow {
    #[tool(description = "Answers after five seconds")]
    async fn slow(&self) -> String {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "finally".into()
    }

    #[tool(description = "Answers at once")]
    async fn fast(&self) -> String {
        "now".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_slower_than_the_timeout_gets_32004_and_the_gateway_keeps_serving() {
    let registry = TestRegistry::start().await;
    let address = registry.addr.to_string();
    let agent = Agent::new("slowpoke").registry(&address).listen("127.0.0.1:0");
    let _agent = agent.start(Slow, Slow::tool_router()).await.unwrap();
    let config = GatewayConfig {
        registry: address.clone(),
        call_timeout: Duration::from_millis(500),
        ..GatewayConfig::default()
    };
    let gateway = InProcessGateway::start_with(config).await;
    let revision = registry
        .registry_client()
        .await
        .list_agents(ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .revision;
    gateway.caught_up(revision).await;

    let client = McpClient::new(&gateway.url());
    let error = client.call("slow", serde_json::json!({})).await.unwrap_err();
    assert_eq!(error_code(&error), Some(-32004), "{error}");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert_eq!(client.call_text("fast", serde_json::json!({})).await, "now");
}
