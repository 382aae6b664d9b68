//! Clients given several registry addresses (`a:7600,b:7600`, or a name
//! that resolves to several) stay on one and move to another when it dies:
//! an agent re-registers on the other and is healthy there, a dependent
//! keeps calling its provider across the move and takes the wiring the new
//! registry pushes, the gateway routes from its cache while no registry
//! answers and then follows the other one,
//! and the CLI answers from the first address that does.
//!
//! The two registries are separate processes with separate data
//! directories: what moves is the clients, not the state. Each test starts
//! its clients while only the first registry is up, so they all start on it
//! whichever address they try first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_agent::Agent;
use switchboard_client::RegistryAddrs;
use switchboard_examples::date_service;
use switchboard_gateway::GatewayConfig;
use switchboard_proto::v1::{AgentStatus, ListAgentsRequest};
use switchboard_tests::gateway::free_addr;
use switchboard_tests::{
    InProcessGateway, McpClient, TestRegistry, cli, echo, eventually, identity_provider, relay,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// A registry process (kill -9 is what a crash looks like).
async fn registry_process() -> TestRegistry {
    TestRegistry::builder().child_process(&["--heartbeat-interval", "1s"]).start().await
}

/// The second registry, on the address reserved for it.
async fn second_registry(addr: std::net::SocketAddr) -> TestRegistry {
    TestRegistry::builder()
        .child_process(&["--heartbeat-interval", "1s"])
        .pinned(addr)
        .start()
        .await
}

/// The status of agent `id` at `registry`, if it knows it.
async fn status_at(registry: &TestRegistry, id: &str) -> Option<AgentStatus> {
    let mut client = registry.registry_client().await;
    let agents = client.list_agents(ListAgentsRequest::default()).await.ok()?.into_inner().agents;
    agents.iter().find(|agent| agent.id == id).map(|agent| agent.status())
}

async fn healthy_at(registry: &TestRegistry, id: &str) {
    eventually(&format!("{id} HEALTHY at {}", registry.addr), DEADLINE, || async {
        (status_at(registry, id).await == Some(AgentStatus::Healthy)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_moves_to_the_other_registry_and_keeps_its_wiring_until_it_pushes() {
    let first = registry_process().await;
    let second_addr = free_addr();
    let both = format!("{},{second_addr}", first.addr);

    // The provider knows only the first registry: once it is gone, the
    // second one never hears of this provider, though it still answers.
    let stays = identity_provider(&first.addr.to_string(), "the provider that stayed").await;
    let relay = relay(&both).await;
    healthy_at(&first, &relay.agent_id).await;
    let caller = McpClient::new(&format!("http://{}/mcp", relay.local_addr));
    eventually("relay wired to the provider", DEADLINE, || async {
        let answer = caller.call_text("relay", json!({})).await;
        (answer == "ok: the provider that stayed").then_some(())
    })
    .await;

    let second = second_registry(second_addr).await;
    tokio::task::spawn_blocking(move || first.kill()).await.unwrap();
    healthy_at(&second, &relay.agent_id).await;
    assert_eq!(status_at(&second, &stays.agent_id).await, None, "the provider stayed behind");
    assert_eq!(
        caller.call_text("relay", json!({})).await,
        "ok: the provider that stayed",
        "the dependent keeps its wiring across the move"
    );

    // A provider joining the new registry is pushed to the dependent.
    let joins =
        identity_provider(&second_addr.to_string(), "the provider at the new registry").await;
    eventually("the new registry's wiring pushed to the dependent", DEADLINE, || async {
        let answer = caller.call_text("relay", json!({})).await;
        (answer == "ok: the provider at the new registry").then_some(())
    })
    .await;
    drop((stays, joins));
}

/// With separate stores the second registry's snapshot is another epoch:
/// the gateway resyncs from it, and an agent that has not re-registered
/// there yet is not routed until it has. What holds whatever the timing: the
/// cached table routes while no registry answers, and the gateway then
/// follows the other one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_routes_from_its_cache_between_registries_and_follows_the_new_one() {
    let first = registry_process().await;
    let second_addr = free_addr();
    let both = format!("{},{second_addr}", first.addr);
    let moved = echo(&both, "echo", "moved").await;
    let gateway =
        InProcessGateway::start_with(GatewayConfig { registry: both, ..GatewayConfig::default() })
            .await;
    let client = McpClient::new(&gateway.url());
    eventually("the gateway routes whoami", DEADLINE, || async {
        (client.tool_names().await.ok()? == ["whoami"]).then_some(())
    })
    .await;

    // Between registries: neither answers, the cached table routes.
    tokio::task::spawn_blocking(move || first.kill()).await.unwrap();
    for _ in 0..5 {
        assert_eq!(client.call_text("whoami", json!({})).await, "moved", "routed from the cache");
    }
    let second = second_registry(second_addr).await;
    healthy_at(&second, &moved.agent_id).await;

    // Only the second registry knows this one: the gateway watches it now.
    let _date = date_service::start(Agent::new("date-service").registry(&second_addr.to_string()))
        .await
        .unwrap();
    eventually("the gateway follows the second registry", DEADLINE, || async {
        (client.tool_names().await.ok()? == ["get_date", "whoami"]).then_some(())
    })
    .await;
    assert!(client.call_text("get_date", json!({})).await.starts_with('2'));
    assert_eq!(client.call_text("whoami", json!({})).await, "moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_answers_from_the_first_registry_that_does() {
    let alive = TestRegistry::start().await;
    let _echo = echo(&alive.addr.to_string(), "echo", "here").await;
    // Reserved and released: nothing listens there.
    let dead = free_addr();
    let list = format!("{dead},{}", alive.addr);
    let run = cli(&["agents", "--registry", &list, "-o", "json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["agents"][0]["name"], "echo", "{run:?}");

    let none = cli(&["agents", "--registry", &dead.to_string()]).await;
    assert_eq!(none.code, 3, "unreachable: {none:?}");
    assert!(none.stderr.contains(&dead.to_string()), "names the address: {none:?}");

    let bad = cli(&["agents", "--registry", &format!("{},not an address", alive.addr)]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("bad registry address \"not an address\""), "{bad:?}");
}

#[tokio::test]
async fn a_name_resolving_to_several_addresses_is_tried_address_by_address() {
    let registry = TestRegistry::start().await;
    let port = registry.addr.port();
    let resolved = RegistryAddrs::parse(&format!("localhost:{port}")).unwrap().resolve().await;
    assert!(resolved.contains(&format!("http://127.0.0.1:{port}")), "{resolved:?}");
    let has_v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    if has_v6 && resolved.contains(&format!("http://[::1]:{port}")) {
        // The registry listens on 127.0.0.1 only, so agents that start on
        // ::1 find nothing there and move on.
        assert_eq!(resolved.len(), 2, "{resolved:?}");
    }
    // Whichever address each one tries first, they all register.
    let mut agents = Vec::new();
    for n in 0..4 {
        agents.push(echo(&format!("localhost:{port}"), &format!("echo-{n}"), "named").await);
    }
    for agent in &agents {
        healthy_at(&registry, &agent.agent_id).await;
    }
}

#[tokio::test]
async fn a_bad_entry_in_the_list_is_named() {
    let agent = Agent::new("date").registry("127.0.0.1:1,,127.0.0.1:2").listen("127.0.0.1:0");
    let error = date_service::start(agent).await.err().expect("a bad registry list is refused");
    assert!(
        error.to_string().contains("registry: bad registry address \"\": empty entry"),
        "{error}"
    );

    let config =
        GatewayConfig { registry: "127.0.0.1:1,ftp://b:1".into(), ..GatewayConfig::default() };
    let message = config.validate().unwrap_err();
    assert!(message.contains("bad registry address \"ftp://b:1\""), "{message}");
}
