//! `switchboard bridge --url`: a Streamable HTTP server someone else runs.
//! It is registered at its own URL (the gateway calls it directly); the
//! bridge only probes it, takes it out of routing when it stops answering,
//! and registers it again when it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard_bridge::BridgeConfig;
use switchboard_proto::v1::{Agent, ListAgentsRequest};
use switchboard_tests::bridge::{BridgeRun, http, npm_server};
use switchboard_tests::gateway::free_addr;
use switchboard_tests::{InProcessGateway, TestRegistry, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

/// server-everything in its own Streamable HTTP mode on `port`.
fn remote_everything(port: u16) -> tokio::process::Child {
    tokio::process::Command::new(npm_server("mcp-server-everything"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn agents(registry: &TestRegistry) -> Vec<Agent> {
    let request = ListAgentsRequest { name: "remote".into(), ..Default::default() };
    registry.registry_client().await.list_agents(request).await.unwrap().into_inner().agents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_server_is_registered_at_its_url_and_probed() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let port = free_addr().port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut server = remote_everything(port);
    let config = BridgeConfig::parse(
        &format!("[servers.remote]\nurl = \"{url}\"\nprobe_interval = \"200ms\"\n"),
        "bridge.toml",
    )
    .unwrap();
    let bridge = BridgeRun::start(config, &addr);

    let registered = eventually("the remote server registered", DEADLINE, || async {
        agents(&registry).await.pop()
    })
    .await;
    assert_eq!(registered.endpoint, url, "registered at its own URL: no hop through the bridge");
    assert!(registered.tools.iter().any(|t| t.name == "echo"));
    let client = http(&gateway.url()).await;
    let has_echo = || async {
        let tools = client.list_all_tools().await.unwrap();
        tools.iter().any(|t| t.name == "echo")
    };
    eventually("echo at the gateway", DEADLINE, || async { has_echo().await.then_some(()) }).await;

    server.kill().await.unwrap();
    eventually("the silent server out of the registry", DEADLINE, || async {
        agents(&registry).await.is_empty().then_some(())
    })
    .await;
    eventually("echo gone from the gateway", DEADLINE, || async {
        (!has_echo().await).then_some(())
    })
    .await;

    let _server = remote_everything(port);
    eventually("the server back in the gateway", DEADLINE, || async {
        has_echo().await.then_some(())
    })
    .await;
    bridge.stop().await.unwrap();
    assert!(agents(&registry).await.is_empty());
}
