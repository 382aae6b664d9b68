//! Scope and ownership on a registry started with auth: an agent identity
//! registers only the names and capabilities its token allows, and only it
//! (or an admin) may overwrite, heartbeat for or deregister what it
//! registered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use switchboard_proto::v1::access_service_client::AccessServiceClient;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::{
    CreateTokenRequest, DeregisterAgentRequest, GetAgentRequest, LabelUpdate, Role,
    SendHeartbeatRequest, StreamHeartbeatsRequest, Tool, stream_heartbeats_response,
};
use switchboard_tests::{InProcessGateway, McpClient, TestRegistry, eventually};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// An agent token's secret, issued by the bootstrap admin.
async fn issue(registry: &TestRegistry, name: &str, agent: &str, provides: &[&str]) -> String {
    let request = CreateTokenRequest {
        name: name.into(),
        role: Role::Agent as i32,
        agent_names: vec![agent.into()],
        provides: provides.iter().map(|p| (*p).to_owned()).collect(),
        ..CreateTokenRequest::default()
    };
    registry.issue_token(request).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capability_or_a_name_outside_the_scope_is_permission_denied() {
    let registry = TestRegistry::builder().auth().start().await;
    let secret = issue(&registry, "weather", "weather*", &["weather_*"]).await;
    let mut agent = registry.registry_client_as(&secret).await;

    // The hijack the rule is for: a fake `payments` provider.
    let mut request = common::provider("weather", "weather_forecast", "1.0.0", &[]);
    request.tools.push(Tool {
        name: "charge".into(),
        capability: "payments".into(),
        version: "1.0.0".into(),
        ..Tool::default()
    });
    let hijack = agent.register_agent(request).await.unwrap_err();
    assert_eq!(hijack.code(), Code::PermissionDenied);
    assert_eq!(
        hijack.message(),
        "token:weather may not provide capability \"payments\" (tool \"charge\"): outside its scope"
    );

    let name = agent
        .register_agent(common::provider("billing", "weather_forecast", "1.0.0", &[]))
        .await
        .unwrap_err();
    assert_eq!(name.code(), Code::PermissionDenied);
    assert!(name.message().contains("agent name \"billing\""), "{name:?}");

    // Inside the scope (a glob on both): registered, and owned.
    let id = agent
        .register_agent(common::provider("weather-eu", "weather_radar", "1.0.0", &[]))
        .await
        .expect("in scope")
        .into_inner()
        .agent_id;
    let stored = agent.get_agent(GetAgentRequest { agent_id: id }).await.unwrap().into_inner();
    assert_eq!(stored.agent.unwrap().owner, "token:weather");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_identity_cannot_overwrite_deregister_or_heartbeat_an_agent() {
    let registry = TestRegistry::builder().auth().start().await;
    let owner = issue(&registry, "weather", "weather", &["weather_*"]).await;
    // Same scope, another identity: scope alone does not confer ownership.
    let rival = issue(&registry, "rival", "weather", &["weather_*"]).await;
    let mut owner_client = registry.registry_client_as(&owner).await;
    let id = owner_client
        .register_agent(common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    let mut rival_client = registry.registry_client_as(&rival).await;

    let mut overwrite = common::provider("weather", "weather_forecast", "9.9.9", &[]);
    overwrite.agent_id = id.clone();
    let refused = rival_client.register_agent(overwrite.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        format!(
            "agent \"{id}\" belongs to another identity: token:rival may not register again \
             (overwrite) it"
        )
    );

    let deregister = rival_client
        .deregister_agent(DeregisterAgentRequest { agent_id: id.clone() })
        .await
        .unwrap_err();
    assert_eq!(deregister.code(), Code::PermissionDenied);
    assert!(deregister.message().contains("may not deregister it"), "{deregister:?}");

    let unary = HeartbeatServiceClient::new(registry.channel_as(&rival).await)
        .send_heartbeat(SendHeartbeatRequest {
            agent_id: id.clone(),
            sequence: 1,
            labels: Some(LabelUpdate { labels: HashMap::from([("x".into(), "y".into())]) }),
            ..SendHeartbeatRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unary.code(), Code::PermissionDenied);
    assert!(unary.message().contains("may not heartbeat for or change it"), "{unary:?}");

    let (beats, outgoing) = mpsc::channel(4);
    let mut stream = HeartbeatServiceClient::new(registry.channel_as(&rival).await)
        .stream_heartbeats(ReceiverStream::new(outgoing))
        .await
        .expect("an agent identity may open a stream")
        .into_inner();
    beats
        .send(StreamHeartbeatsRequest { agent_id: id.clone(), sequence: 1, ..Default::default() })
        .await
        .unwrap();
    let ended = loop {
        match stream.message().await {
            Ok(Some(message)) => {
                assert!(
                    !matches!(message.message, Some(stream_heartbeats_response::Message::Ack(_))),
                    "a rival's heartbeat was acknowledged"
                );
            }
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::PermissionDenied);

    // Nothing of that changed the record; its owner still may.
    let stored = owner_client
        .get_agent(GetAgentRequest { agent_id: id.clone() })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(stored.tools[0].version, "1.0.0");
    assert!(stored.labels.is_empty());
    HeartbeatServiceClient::new(registry.channel_as(&owner).await)
        .send_heartbeat(SendHeartbeatRequest {
            agent_id: id.clone(),
            sequence: 1,
            ..Default::default()
        })
        .await
        .expect("the owner heartbeats");

    // An admin may take anything over.
    let mut admin = registry.registry_client_as(&registry.admin_token()).await;
    admin.register_agent(overwrite).await.expect("admin overwrites");
    admin
        .deregister_agent(DeregisterAgentRequest { agent_id: id })
        .await
        .expect("admin deregisters anyone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_bound_to_the_identity_that_opened_it() {
    let registry = TestRegistry::builder().auth().start().await;
    let weather = issue(&registry, "weather", "weather", &["weather_*"]).await;
    let radar = issue(&registry, "radar", "radar", &["radar_*"]).await;
    let mine = registry
        .register_as(&weather, common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await;
    let theirs =
        registry.register_as(&radar, common::provider("radar", "radar_scan", "1.0.0", &[])).await;

    let (beats, outgoing) = mpsc::channel(4);
    let mut stream = HeartbeatServiceClient::new(registry.channel_as(&weather).await)
        .stream_heartbeats(ReceiverStream::new(outgoing))
        .await
        .unwrap()
        .into_inner();
    beats
        .send(StreamHeartbeatsRequest { agent_id: mine, sequence: 1, ..Default::default() })
        .await
        .unwrap();
    let ack = stream.message().await.unwrap().unwrap();
    assert!(matches!(ack.message, Some(stream_heartbeats_response::Message::Ack(_))));
    // The same stream, now claiming another identity's agent.
    beats
        .send(StreamHeartbeatsRequest { agent_id: theirs, sequence: 2, ..Default::default() })
        .await
        .unwrap();
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::PermissionDenied, "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_agent_with_a_token_joins_and_a_gateway_with_a_viewer_token_routes_it() {
    let registry = TestRegistry::builder().auth().start().await;
    let agent_secret = issue(&registry, "date", "date-service", &["date_*"]).await;
    let mut access = AccessServiceClient::new(registry.channel_as(&registry.admin_token()).await);
    let viewer = access
        .create_token(CreateTokenRequest {
            name: "gateway".into(),
            role: Role::Viewer as i32,
            ..CreateTokenRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .secret;

    // Without the token, or with one scoped to another name, it cannot join.
    for (token, why) in [(None, "missing credentials"), (Some(&viewer), "role viewer")] {
        let agent = switchboard_agent::Agent::new("date-service")
            .registry(&registry.addr.to_string())
            .listen("127.0.0.1:0")
            .require_registry(true);
        let agent = match token {
            Some(token) => agent.token(token),
            None => agent.token(""),
        };
        let refused = switchboard_examples::date_service::start(agent).await.err().unwrap();
        assert!(refused.to_string().contains(why), "{refused}");
    }

    let agent = switchboard_examples::date_service::start(
        switchboard_agent::Agent::new("date-service")
            .registry(&registry.addr.to_string())
            .listen("127.0.0.1:0")
            .token(&agent_secret)
            .require_registry(true),
    )
    .await
    .expect("the agent registers with its token");
    let stored = registry
        .registry_client_as(&viewer)
        .await
        .get_agent(GetAgentRequest { agent_id: agent.agent_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(stored.owner, "token:date");

    let gateway = InProcessGateway::start_with(switchboard_gateway::GatewayConfig {
        registry: registry.addr.to_string(),
        registry_token: switchboard_client::Bearer::new(Some(&viewer)).unwrap(),
        ..switchboard_gateway::GatewayConfig::default()
    })
    .await;
    let client = McpClient::new(&gateway.url());
    let tools =
        eventually("the gateway to list the agent's tools", Duration::from_secs(10), || {
            let client = &client;
            async move { client.tool_names().await.ok().filter(|names| !names.is_empty()) }
        })
        .await;
    assert!(!tools.is_empty());
    agent.shutdown().await.expect("the agent deregisters with its token");
    gateway.stop().await.unwrap();
}
