//! A minimal agent process for crash tests: registers one tool providing a
//! capability, then heartbeats on the bidirectional stream until killed.
//!
//! Usage: `sb-test-provider REGISTRY_ADDR NAME CAPABILITY VERSION [TAG...]`.
//! Prints `REGISTERED <agent id>` on stdout once registered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{RegisterAgentRequest, Tool};
use switchboard_tests::HeartbeatSession;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, registry, name, capability, version, tags @ ..] = args.as_slice() else {
        eprintln!("usage: sb-test-provider REGISTRY_ADDR NAME CAPABILITY VERSION [TAG...]");
        std::process::exit(2);
    };
    let channel = switchboard_client::connect(registry).await.expect("connect");
    let request = RegisterAgentRequest {
        name: name.clone(),
        endpoint: format!("http://127.0.0.1:9/{name}/mcp"),
        tools: vec![Tool {
            name: "serve".into(),
            capability: capability.clone(),
            version: version.clone(),
            tags: tags.to_vec(),
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    };
    let registered = RegistryServiceClient::new(channel.clone())
        .register_agent(request)
        .await
        .expect("register");
    let agent_id = registered.into_inner().agent_id;
    let mut session = HeartbeatSession::open(channel, &agent_id, Duration::from_millis(200)).await;
    println!("REGISTERED {agent_id}");
    // Read acks until the stream ends (the registry went away), then stay
    // up doing nothing until killed, as a wedged agent would: tests kill it.
    while session.next(Duration::from_secs(3600)).await.is_ok() {}
    std::future::pending::<()>().await;
}
