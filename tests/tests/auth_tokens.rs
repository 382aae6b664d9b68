//! Tokens and roles on a registry started with auth: every rule is tried
//! by a caller it must stop, and must stop it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_proto::v1::access_service_client::AccessServiceClient;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{
    AuthenticateRequest, CreateTokenRequest, DeregisterAgentRequest, ListAgentsRequest,
    ListTokensRequest, RevokeTokenRequest, Role, StreamHeartbeatsRequest, WatchRequest,
    WhoAmIRequest, stream_heartbeats_response,
};
use switchboard_tests::{TestRegistry, eventually};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

fn agent_token(name: &str, agent: &str, provides: &str) -> CreateTokenRequest {
    CreateTokenRequest {
        name: name.into(),
        role: Role::Agent as i32,
        agent_names: vec![agent.into()],
        provides: vec![provides.into()],
        ..CreateTokenRequest::default()
    }
}

fn role_token(name: &str, role: Role) -> CreateTokenRequest {
    CreateTokenRequest { name: name.into(), role: role as i32, ..CreateTokenRequest::default() }
}

/// How each stream ended, by name.
type Ended = Arc<Mutex<Vec<(&'static str, tonic::Status)>>>;

/// Reads `stream` to its end in a task, recording the status it ends with.
fn record_end<T: Send + 'static>(
    name: &'static str,
    mut stream: tonic::Streaming<T>,
    ended: Ended,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(status) => {
                    ended.lock().unwrap().push((name, status));
                    break;
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_garbage_or_malformed_credentials_are_unauthenticated_saying_why() {
    let registry = TestRegistry::builder().auth().start().await;
    let request = || common::provider("weather", "weather_forecast", "1.0.0", &[]);

    let missing = registry.registry_client().await.register_agent(request()).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(missing.message().contains("missing credentials"), "{missing:?}");

    let garbage = registry.registry_client_as("sbt_not-a-real-token").await;
    let unknown = garbage.clone().register_agent(request()).await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(unknown.message(), "unknown token");

    let mut raw = tonic::Request::new(request());
    raw.metadata_mut().insert("authorization", "Basic dXNlcjpwdw==".parse().unwrap());
    let malformed = registry.registry_client().await.register_agent(raw).await.unwrap_err();
    assert_eq!(malformed.code(), Code::Unauthenticated);
    assert!(malformed.message().contains("malformed authorization"), "{malformed:?}");

    // Reads and the watch are closed too; health stays open.
    let list = garbage.clone().list_agents(ListAgentsRequest::default()).await.unwrap_err();
    assert_eq!(list.code(), Code::Unauthenticated);
    let watch = WatchServiceClient::new(registry.channel().await)
        .watch(WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::Unauthenticated);
    let health = tonic_health::pb::health_client::HealthClient::new(registry.channel().await)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health is open without a token");
    assert_eq!(health.into_inner().status, 1, "SERVING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused() {
    let registry = TestRegistry::builder().auth().start().await;
    let (_, secret) = registry
        .issue_token(CreateTokenRequest {
            ttl: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
            ..agent_token("brief", "weather", "weather_*")
        })
        .await;
    let client = registry.registry_client_as(&secret).await;
    let status = eventually("the token to expire", Duration::from_secs(10), || {
        let mut client = client.clone();
        async move {
            let request = common::provider("weather", "weather_forecast", "1.0.0", &[]);
            client.register_agent(request).await.err()
        }
    })
    .await;
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "token expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_and_its_open_streams_end_within_a_second() {
    let registry = TestRegistry::builder().auth().start().await;
    let (token, secret) =
        registry.issue_token(agent_token("weather", "weather", "weather_*")).await;
    let mut client = registry.registry_client_as(&secret).await;
    let registered = client
        .register_agent(common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await
        .expect("an agent token registers in scope")
        .into_inner();

    // A heartbeat stream and a watch, both opened with the token.
    let (beats, outgoing) = mpsc::channel(4);
    let mut heartbeats = HeartbeatServiceClient::new(registry.channel_as(&secret).await)
        .stream_heartbeats(ReceiverStream::new(outgoing))
        .await
        .expect("stream opens")
        .into_inner();
    let beat = StreamHeartbeatsRequest {
        agent_id: registered.agent_id.clone(),
        sequence: 1,
        ..StreamHeartbeatsRequest::default()
    };
    beats.send(beat).await.unwrap();
    let first = heartbeats.message().await.expect("an answer").expect("an ack");
    assert!(matches!(first.message, Some(stream_heartbeats_response::Message::Ack(_))));
    let mut watch = WatchServiceClient::new(registry.channel_as(&secret).await)
        .watch(WatchRequest::default())
        .await
        .expect("an agent may watch")
        .into_inner();
    watch.message().await.expect("the snapshot starts").expect("a message");

    // Each stream's end is recorded by a reader task, so the test can poll.
    let ended: Ended = Arc::default();
    let heartbeat_reader = record_end("heartbeat", heartbeats, ended.clone());
    let watch_reader = record_end("watch", watch, ended.clone());

    let mut admin = AccessServiceClient::new(registry.channel_as(&registry.admin_token()).await);
    let revoked = admin
        .revoke_token(RevokeTokenRequest { id: token.id.clone() })
        .await
        .expect("admin revokes")
        .into_inner()
        .token
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let ends = eventually("both streams to end", Duration::from_secs(1), || {
        let ended = ended.clone();
        async move {
            let ended = ended.lock().unwrap();
            (ended.len() == 2).then(|| ended.clone())
        }
    })
    .await;
    for (stream, status) in ends {
        assert_eq!(status.code(), Code::Unauthenticated, "{stream}: {status:?}");
        assert_eq!(status.message(), "token revoked", "{stream}");
    }
    heartbeat_reader.await.unwrap();
    watch_reader.await.unwrap();
    drop(beats);

    // Reuse after the revoke: refused, for calls and for new streams.
    let reuse = client
        .register_agent(common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::Unauthenticated);
    assert_eq!(reuse.message(), "token revoked");
    let (_keep, outgoing) = mpsc::channel::<StreamHeartbeatsRequest>(1);
    let reopen = HeartbeatServiceClient::new(registry.channel_as(&secret).await)
        .stream_heartbeats(ReceiverStream::new(outgoing))
        .await
        .unwrap_err();
    assert_eq!(reopen.code(), Code::Unauthenticated);

    // The list shows it only when asked for inactive tokens.
    let active = admin.list_tokens(ListTokensRequest::default()).await.unwrap().into_inner();
    assert!(active.tokens.iter().all(|t| t.id != token.id));
    let all =
        admin.list_tokens(ListTokensRequest { include_inactive: true }).await.unwrap().into_inner();
    assert!(all.tokens.iter().any(|t| t.id == token.id && t.revoked_at.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_but_cannot_write() {
    let registry = TestRegistry::builder().auth().start().await;
    let (_, secret) = registry.issue_token(role_token("dash", Role::Viewer)).await;
    let mut viewer = registry.registry_client_as(&secret).await;
    viewer.list_agents(ListAgentsRequest::default()).await.expect("a viewer reads");
    let write = viewer
        .register_agent(common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await
        .unwrap_err();
    assert_eq!(write.code(), Code::PermissionDenied);
    assert_eq!(write.message(), "token:dash has role viewer and may not register agents");
    let drain = viewer
        .deregister_agent(DeregisterAgentRequest { agent_id: "weather-00000000".into() })
        .await
        .unwrap_err();
    assert_eq!(drain.code(), Code::PermissionDenied);
    let mut access = AccessServiceClient::new(registry.channel_as(&secret).await);
    let create = access.create_token(role_token("mine", Role::Admin)).await.unwrap_err();
    assert_eq!(create.code(), Code::PermissionDenied);
    assert!(create.message().contains("may not create tokens"), "{create:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_drains_any_agent_but_cannot_create_tokens() {
    let registry = TestRegistry::builder().auth().start().await;
    let (_, agent_secret) =
        registry.issue_token(agent_token("weather", "weather", "weather_*")).await;
    let (_, operator_secret) = registry.issue_token(role_token("oncall", Role::Operator)).await;
    let id = registry
        .register_as(&agent_secret, common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await;

    let mut operator = registry.registry_client_as(&operator_secret).await;
    let register = operator
        .register_agent(common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await
        .unwrap_err();
    assert_eq!(register.code(), Code::PermissionDenied);
    operator
        .deregister_agent(DeregisterAgentRequest { agent_id: id.clone() })
        .await
        .expect("an operator drains another identity's agent");
    let list = operator.list_agents(ListAgentsRequest::default()).await.unwrap().into_inner();
    assert!(list.agents.is_empty(), "{:?}", list.agents);

    let mut access = AccessServiceClient::new(registry.channel_as(&operator_secret).await);
    let create = access.create_token(role_token("escalate", Role::Admin)).await.unwrap_err();
    assert_eq!(create.code(), Code::PermissionDenied);
    assert_eq!(create.message(), "token:oncall has role operator and may not create tokens");
    let revoke = access.revoke_token(RevokeTokenRequest { id: "weather".into() }).await;
    assert_eq!(revoke.unwrap_err().code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_resolves_a_gateway_key_for_viewers_only() {
    let registry = TestRegistry::builder().auth().start().await;
    let (key, key_secret) = registry
        .issue_token(CreateTokenRequest {
            scopes: vec!["tools:call".into(), "tools:list".into()],
            ..role_token("ide", Role::Client)
        })
        .await;
    let (_, gateway_secret) = registry.issue_token(role_token("gateway", Role::Viewer)).await;
    let mut gateway = AccessServiceClient::new(registry.channel_as(&gateway_secret).await);
    let grant = gateway
        .authenticate(AuthenticateRequest { secret: key_secret.clone() })
        .await
        .expect("a viewer resolves an api key")
        .into_inner()
        .token
        .unwrap();
    assert_eq!(grant.id, key.id);
    assert_eq!(grant.role(), Role::Client);
    assert_eq!(grant.scopes, ["tools:call", "tools:list"]);

    let unknown =
        gateway.authenticate(AuthenticateRequest { secret: "sbt_nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(unknown.message(), "unknown token");

    // The key itself has no registry rights, not even Authenticate.
    let mut client = AccessServiceClient::new(registry.channel_as(&key_secret).await);
    let own = client.authenticate(AuthenticateRequest { secret: key_secret.clone() }).await;
    assert_eq!(own.unwrap_err().code(), Code::PermissionDenied);
    let read = registry
        .registry_client_as(&key_secret)
        .await
        .list_agents(ListAgentsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::PermissionDenied);
    assert!(read.message().contains("role client"), "{read:?}");

    // A revoked key stops resolving.
    let mut admin = AccessServiceClient::new(registry.channel_as(&registry.admin_token()).await);
    admin.revoke_token(RevokeTokenRequest { id: "ide".into() }).await.unwrap();
    let revoked = gateway.authenticate(AuthenticateRequest { secret: key_secret }).await;
    assert_eq!(revoked.unwrap_err().message(), "token revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_identity_and_role() {
    let registry = TestRegistry::builder().auth().start().await;
    let mut admin = AccessServiceClient::new(registry.channel_as(&registry.admin_token()).await);
    let me = admin.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(me.identity, "token:bootstrap");
    assert_eq!(me.role(), Role::Admin);
    let (token, secret) =
        registry.issue_token(agent_token("weather", "weather", "weather_*")).await;
    let mut agent = AccessServiceClient::new(registry.channel_as(&secret).await);
    let me = agent.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(me.identity, "token:weather");
    assert_eq!(me.role(), Role::Agent);
    let shown = me.token.unwrap();
    assert_eq!(shown.id, token.id);
    assert_eq!(shown.agent_names, ["weather"]);

    // Without auth: everyone is anonymous with every right, as before.
    let open = TestRegistry::start().await;
    let mut anyone = AccessServiceClient::new(open.channel().await);
    let me = anyone.who_am_i(WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(me.identity, "anonymous");
    assert_eq!(me.role(), Role::Admin);
    let create = anyone.create_token(role_token("x", Role::Viewer)).await.unwrap_err();
    assert_eq!(create.code(), Code::FailedPrecondition);
    assert!(create.message().contains("--auth"), "{create:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_revocations_survive_a_registry_kill_9() {
    let process = TestRegistry::builder().auth().child_process(&[]).start().await;
    let admin_secret = process.admin_token();
    let (_, kept) = process.issue_token(agent_token("weather", "weather", "weather_*")).await;
    let (revoked, revoked_secret) = process.issue_token(role_token("gone", Role::Viewer)).await;
    let mut admin = AccessServiceClient::new(process.channel_as(&admin_secret).await);
    admin.revoke_token(RevokeTokenRequest { id: revoked.id.clone() }).await.unwrap();
    let again = process.relaunch();
    process.kill();

    let process = again.start().await;
    assert_eq!(process.admin_token(), admin_secret, "bootstrapped again after a restart");
    process
        .registry_client_as(&kept)
        .await
        .register_agent(common::provider("weather", "weather_forecast", "1.0.0", &[]))
        .await
        .expect("the token issued before the crash still works");
    let refused = process
        .registry_client_as(&revoked_secret)
        .await
        .list_agents(ListAgentsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.message(), "token revoked");
    let mut admin = AccessServiceClient::new(process.channel_as(&admin_secret).await);
    let all =
        admin.list_tokens(ListTokensRequest { include_inactive: true }).await.unwrap().into_inner();
    assert_eq!(all.tokens.len(), 3, "{:?}", all.tokens);
}
