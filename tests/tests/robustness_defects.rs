//! Regressions for what a black-box run of the registry found, each through
//! a real tonic client against a real registry on 127.0.0.1:0: heartbeat
//! label updates checked like registrations, error messages that quote a
//! value cut short, oversized and undecodable requests answered with the
//! caller's codes, EXPIRED agents told to register again rather than
//! revived, resyncs from a future revision named so, and page tokens bound to
//! their query.

// Helpers outside #[test] functions panic on failure too, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use prost::bytes::{Buf as _, BufMut as _};
use switchboard_health::LivenessConfig;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    AgentStatus, ControlAction, DependencySpec, DeregisterAgentRequest, EventType, GetAgentRequest,
    LabelUpdate, ListAgentsRequest, RegisterAgentRequest, ResolveDependenciesRequest,
    SendHeartbeatRequest, StreamHeartbeatsRequest, StreamHeartbeatsResponse, WatchFilter,
    WatchRequest,
};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{TestRegistry, eventually};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt as _;

const SOON: Duration = Duration::from_secs(10);
/// Error messages stay far below a client's 16 KiB metadata limit.
const SHORT_MESSAGE: usize = 512;

/// The status is INVALID_ARGUMENT naming `field` (message and BadRequest
/// details), in a message short enough for any client's metadata limit.
fn assert_invalid(status: &Status, field: &str, case: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert!(
        status.message().starts_with(field),
        "{case}: {:?} should name {field}",
        status.message()
    );
    assert!(status.message().len() < SHORT_MESSAGE, "{case}: {} bytes", status.message().len());
    let details = status.get_details_bad_request().expect("BadRequest details");
    assert!(details.field_violations[0].field.starts_with(field), "{case}: {details:?}");
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The labels the issue's run sent: a key that is no name with a 1 KB value,
/// and a non-ASCII key.
fn bad_labels() -> LabelUpdate {
    let long = "v".repeat(1024);
    LabelUpdate { labels: labels(&[("Bad Key", &long), ("é", "1")]) }
}

async fn register_labelled(server: &TestRegistry) -> (RegisterAgentRequest, String) {
    let mut request = common::provider("labelled", "date_service", "1.0.0", &[]);
    request.labels = labels(&[("team", "core")]);
    let id = server
        .registry_client()
        .await
        .register_agent(request.clone())
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    request.agent_id = id.clone();
    (request, id)
}

async fn stored_labels(server: &TestRegistry, id: &str) -> HashMap<String, String> {
    let request = GetAgentRequest { agent_id: id.into() };
    let response = server.registry_client().await.get_agent(request).await.unwrap();
    response.into_inner().agent.unwrap().labels
}

async fn stored_status(server: &TestRegistry, id: &str) -> AgentStatus {
    let request = GetAgentRequest { agent_id: id.into() };
    let response = server.registry_client().await.get_agent(request).await.unwrap();
    response.into_inner().agent.unwrap().status()
}

/// An open heartbeat stream the test writes whole requests to.
struct Stream {
    outgoing: mpsc::Sender<StreamHeartbeatsRequest>,
    inbound: Streaming<StreamHeartbeatsResponse>,
}

impl Stream {
    async fn open(server: &TestRegistry) -> Self {
        let (outgoing, requests) = mpsc::channel(4);
        let inbound = HeartbeatServiceClient::new(server.channel().await)
            .max_encoding_message_size(64 * 1024 * 1024)
            .stream_heartbeats(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        Self { outgoing, inbound }
    }

    async fn send(&self, agent_id: &str, labels: Option<LabelUpdate>) {
        let heartbeat = StreamHeartbeatsRequest {
            agent_id: agent_id.into(),
            sequence: 1,
            labels,
            ..StreamHeartbeatsRequest::default()
        };
        self.outgoing.send(heartbeat).await.unwrap();
    }

    async fn next(&mut self) -> Result<Option<Message>, Status> {
        let message = tokio::time::timeout(SOON, self.inbound.message()).await.expect("answer");
        Ok(message?.and_then(|m| m.message))
    }
}

// --- defect 2: heartbeat label updates skipped validation ---------------------------------

#[tokio::test]
async fn a_unary_heartbeat_with_bad_labels_is_refused_and_stores_nothing() {
    let server = TestRegistry::start().await;
    let (registration, id) = register_labelled(&server).await;
    let mut heartbeats = server.heartbeat_client().await;
    let send =
        |labels| SendHeartbeatRequest { agent_id: id.clone(), sequence: 1, labels, health: None };

    let status = heartbeats.send_heartbeat(send(Some(bad_labels()))).await.unwrap_err();
    assert_invalid(&status, r#"labels.labels["Bad Key"]"#, "bad key");
    let long_value = LabelUpdate { labels: labels(&[("ok", &"v".repeat(1024))]) };
    let status = heartbeats.send_heartbeat(send(Some(long_value))).await.unwrap_err();
    assert_invalid(&status, r#"labels.labels["ok"]"#, "long value");
    assert!(status.message().contains("256 bytes"), "{status:?}");
    let many =
        LabelUpdate { labels: (0..100).map(|i| (format!("k{i}"), "v".to_owned())).collect() };
    let status = heartbeats.send_heartbeat(send(Some(many))).await.unwrap_err();
    assert_invalid(&status, "labels.labels", "too many");

    assert_eq!(stored_labels(&server, &id).await, labels(&[("team", "core")]));
    // The agent can still register with its own labels, and a good update applies.
    server.registry_client().await.register_agent(registration).await.expect("re-register");
    let good = LabelUpdate { labels: labels(&[("team", "edge")]) };
    heartbeats.send_heartbeat(send(Some(good))).await.expect("a valid update is accepted");
    assert_eq!(stored_labels(&server, &id).await, labels(&[("team", "edge")]));
}

#[tokio::test]
async fn a_stream_heartbeat_with_bad_labels_ends_the_stream_and_stores_nothing() {
    let server = TestRegistry::start().await;
    let (registration, id) = register_labelled(&server).await;
    let mut stream = Stream::open(&server).await;
    stream.send(&id, None).await;
    assert!(matches!(stream.next().await, Ok(Some(Message::Ack(_)))));

    stream.send(&id, Some(bad_labels())).await;
    let status = loop {
        match stream.next().await {
            Ok(Some(Message::Resolution(_) | Message::Ack(_))) => {}
            Ok(other) => panic!("expected the stream to end with a status, got {other:?}"),
            Err(status) => break status,
        }
    };
    assert_invalid(&status, r#"labels.labels["Bad Key"]"#, "stream");
    assert_eq!(stored_labels(&server, &id).await, labels(&[("team", "core")]));
    server.registry_client().await.register_agent(registration).await.expect("re-register");
}

// --- defect 3: error messages echoed unbounded input ---------------------------------------

#[tokio::test]
async fn huge_values_are_refused_with_the_field_named_in_a_short_message() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let huge = "x".repeat(10 * 1024);

    let status = client.get_agent(GetAgentRequest { agent_id: "a".repeat(5 * 1024) }).await;
    assert_invalid(&status.unwrap_err(), "agent_id", "GetAgent 5 KB id");
    let status = client.deregister_agent(DeregisterAgentRequest { agent_id: huge.clone() }).await;
    assert_invalid(&status.unwrap_err(), "agent_id", "DeregisterAgent");

    let valid = || common::consumer("hello", "date_service", ">=1.0", &[]);
    let mut cases: Vec<(&str, RegisterAgentRequest)> = Vec::new();
    let mut r = valid();
    r.name = huge.clone();
    cases.push(("name", r));
    let mut r = valid();
    r.agent_id = format!("{huge}!");
    cases.push(("agent_id", r));
    let mut r = valid();
    r.tools[0].dependencies[0].version = format!(">={huge}");
    cases.push(("tools[0].dependencies[0].version", r));
    let mut r = valid();
    r.tools[0].dependencies[0].tags = vec![format!("+{huge}!")];
    cases.push(("tools[0].dependencies[0].tags", r));
    let mut r = valid();
    r.tools[0].dependencies[0].capability = huge.clone();
    cases.push(("tools[0].dependencies[0].capability", r));
    let mut r = valid();
    r.tools[0].version = huge.clone();
    cases.push(("tools[0].version", r));
    let mut r = valid();
    r.tools[0].name = huge.clone();
    cases.push(("tools[0].name", r));
    let mut r = valid();
    r.tools[0].tags = vec![huge.clone()];
    cases.push(("tools[0].tags[0]", r));
    let mut r = valid();
    r.endpoint = format!("ftp://{}", "h".repeat(2000));
    cases.push(("endpoint", r));
    let mut r = valid();
    r.labels = labels(&[(&huge, "v")]);
    cases.push(("labels[", r));
    for (field, request) in cases {
        let status = client.register_agent(request).await.unwrap_err();
        assert_invalid(&status, field, field);
    }

    let list = |f: fn(&mut ListAgentsRequest, String)| {
        let mut request = ListAgentsRequest::default();
        f(&mut request, "X".repeat(10 * 1024));
        request
    };
    for (field, request) in [
        ("capability", list(|r, v| r.capability = v)),
        ("tag", list(|r, v| r.tag = v)),
        ("name", list(|r, v| r.name = v)),
        ("page_token", list(|r, v| r.page_token = v)),
    ] {
        let status = client.list_agents(request).await.unwrap_err();
        assert_invalid(&status, field, &format!("ListAgents {field}"));
    }
    let resolve = ResolveDependenciesRequest {
        dependencies: vec![DependencySpec { capability: huge.clone(), ..Default::default() }],
        requester_agent_id: String::new(),
    };
    let status = client.resolve_dependencies(resolve).await.unwrap_err();
    assert_invalid(&status, "dependencies[0].capability", "ResolveDependencies");

    let filter = WatchFilter { name: huge.clone(), ..WatchFilter::default() };
    let request = WatchRequest { filter: Some(filter), ..WatchRequest::default() };
    let status = server.watch_client().await.watch(request).await.unwrap_err();
    assert_invalid(&status, "filter.name", "Watch filter");

    let request =
        SendHeartbeatRequest { agent_id: huge.clone(), sequence: 1, labels: None, health: None };
    let status = server.heartbeat_client().await.send_heartbeat(request).await.unwrap_err();
    assert_invalid(&status, "agent_id", "SendHeartbeat");
    let mut stream = Stream::open(&server).await;
    stream.send(&huge, None).await;
    assert_invalid(&stream.next().await.unwrap_err(), "agent_id", "StreamHeartbeats");
}

// --- defect 4: oversized messages got OUT_OF_RANGE -----------------------------------------

fn assert_too_large(status: &Status, case: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{case}: {status:?}");
    let limit = RegistryConfig::default().limits.max_message_bytes;
    assert!(status.message().contains(&format!("limit of {limit} bytes")), "{case}: {status:?}");
}

#[tokio::test]
async fn a_message_over_the_limit_is_resource_exhausted_naming_the_limit() {
    let server = TestRegistry::start().await;
    let five_mb = "x".repeat(5 * 1024 * 1024);
    let mut client = server.registry_client().await.max_encoding_message_size(64 << 20);
    let mut request = common::consumer("hello", "date_service", ">=1.0", &[]);
    request.tools[0].description = five_mb.clone();
    let status = client.register_agent(request).await.unwrap_err();
    assert_too_large(&status, "RegisterAgent");
    assert!(status.message().contains("request message of 52"), "names its size: {status:?}");

    let filter = WatchFilter { name: five_mb.clone(), ..WatchFilter::default() };
    let request = WatchRequest { filter: Some(filter), ..WatchRequest::default() };
    let mut watch = server.watch_client().await.max_encoding_message_size(64 << 20);
    assert_too_large(&watch.watch(request).await.unwrap_err(), "Watch");

    let (_, id) = register_labelled(&server).await;
    let mut stream = Stream::open(&server).await;
    stream.send(&id, Some(LabelUpdate { labels: labels(&[("big", &five_mb)]) })).await;
    let status = loop {
        match stream.next().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_too_large(&status, "StreamHeartbeats");
    assert_eq!(stored_labels(&server, &id).await, labels(&[("team", "core")]));
    client
        .register_agent(common::provider("after", "x", "1.0.0", &[]))
        .await
        .expect("the server still serves");
}

// --- undecodable payloads got INTERNAL ------------------------------------------------------

/// Sends raw bytes as the message and reads raw bytes back.
#[derive(Clone, Copy, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Field 1 (a string in every request below) holding bytes that are not UTF-8.
const NOT_UTF8: &[u8] = &[0x0a, 0x02, 0xff, 0xfe];
/// Not even a protobuf key: a varint that never ends.
const NOT_PROTOBUF: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

async fn raw_grpc(server: &TestRegistry) -> tonic::client::Grpc<Channel> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    grpc
}

#[tokio::test]
async fn bytes_that_are_not_the_rpcs_message_are_invalid_argument() {
    let server = TestRegistry::start().await;
    for (path, what) in [
        ("/switchboard.v1.RegistryService/GetAgent", "GetAgentRequest.agent_id"),
        ("/switchboard.v1.RegistryService/RegisterAgent", "RegisterAgentRequest.agent_id"),
        ("/switchboard.v1.HeartbeatService/SendHeartbeat", "SendHeartbeatRequest.agent_id"),
    ] {
        for payload in [NOT_UTF8, NOT_PROTOBUF] {
            let mut grpc = raw_grpc(&server).await;
            let request = tonic::Request::new(payload.to_vec());
            let path = PathAndQuery::from_static(path);
            let status = grpc.unary::<_, Vec<u8>, _>(request, path, RawBytes).await.unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
            if payload == NOT_UTF8 {
                assert!(status.message().contains(what), "names the field: {status:?}");
            }
        }
    }

    // Server streaming: refused before the stream starts.
    let mut grpc = raw_grpc(&server).await;
    let path = PathAndQuery::from_static("/switchboard.v1.WatchService/Watch");
    let request = tonic::Request::new(NOT_PROTOBUF.to_vec());
    let status = grpc.server_streaming::<_, Vec<u8>, _>(request, path, RawBytes).await;
    assert_eq!(status.unwrap_err().code(), Code::InvalidArgument);

    // Bidirectional: the stream ends with the status.
    let mut grpc = raw_grpc(&server).await;
    let path = PathAndQuery::from_static("/switchboard.v1.HeartbeatService/StreamHeartbeats");
    let request = tonic::Request::new(tokio_stream::iter([NOT_UTF8.to_vec()]));
    let mut inbound =
        grpc.streaming::<_, _, Vec<u8>, _>(request, path, RawBytes).await.unwrap().into_inner();
    let status = tokio::time::timeout(SOON, inbound.message()).await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("StreamHeartbeatsRequest.agent_id"), "{status:?}");

    let mut client = server.registry_client().await;
    client.list_agents(ListAgentsRequest::default()).await.expect("the server still serves");
}

// --- decision: a heartbeat does not revive an EXPIRED agent ---------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_agent_is_told_to_register_again_and_stays_expired_until_it_does() {
    let config = RegistryConfig {
        liveness: LivenessConfig {
            interval: Duration::from_millis(100),
            degraded_after: Duration::from_millis(500),
            expired_after: Duration::from_secs(1),
            ..LivenessConfig::default()
        },
        ..RegistryConfig::default()
    };
    let server = TestRegistry::builder().config(config).start().await;
    let (registration, id) = register_labelled(&server).await;
    eventually("the silent agent EXPIRED", SOON, || async {
        (stored_status(&server, &id).await == AgentStatus::Expired).then_some(())
    })
    .await;

    let mut heartbeats = server.heartbeat_client().await;
    let request =
        SendHeartbeatRequest { agent_id: id.clone(), sequence: 1, labels: None, health: None };
    let status = heartbeats.send_heartbeat(request.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");
    assert!(status.message().contains("RegisterAgent"), "{status:?}");

    let mut stream = Stream::open(&server).await;
    stream.send(&id, None).await;
    let Ok(Some(Message::Control(control))) = stream.next().await else {
        panic!("expected a control message");
    };
    assert_eq!(control.action(), ControlAction::Reregister);
    assert!(control.reason.contains("expired"), "{control:?}");
    assert_eq!(stored_status(&server, &id).await, AgentStatus::Expired, "not revived");

    server.registry_client().await.register_agent(registration).await.unwrap();
    let ack = heartbeats.send_heartbeat(request).await.expect("accepted after registering");
    assert_eq!(ack.into_inner().ack.unwrap().status(), AgentStatus::Healthy);
}

// --- decision: a revision beyond the store's resyncs with reason `future` -------------------

#[tokio::test]
async fn a_future_revision_gets_resync_required_with_reason_future() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let registered = client.register_agent(common::provider("p", "x", "1.0.0", &[])).await;
    let epoch = registered.unwrap().into_inner().store_epoch;
    for (since, store_epoch) in [(99, epoch.clone()), (u64::MAX, epoch), (u64::MAX, String::new())]
    {
        let request = WatchRequest { since_revision: since, store_epoch, filter: None };
        let mut watch = server.watch_client().await.watch(request).await.unwrap().into_inner();
        let first = tokio::time::timeout(SOON, watch.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(first.r#type(), EventType::ResyncRequired, "since {since}");
        assert_eq!(first.reason, "future", "since {since}");
        let mut kinds = Vec::new();
        while kinds.last() != Some(&EventType::EndOfSnapshot) {
            let next = tokio::time::timeout(SOON, watch.message()).await.unwrap().unwrap();
            kinds.push(next.expect("a snapshot follows").r#type());
        }
        assert_eq!(kinds, [EventType::Snapshot, EventType::EndOfSnapshot], "since {since}");
    }
}

// --- decision: page tokens are bound to their query -----------------------------------------

async fn page(
    server: &TestRegistry,
    capability: &str,
    status: AgentStatus,
    page_token: &str,
) -> Result<(Vec<String>, String), Status> {
    let request = ListAgentsRequest {
        capability: capability.into(),
        status: status as i32,
        page_size: 1,
        page_token: page_token.into(),
        ..ListAgentsRequest::default()
    };
    let response = server.registry_client().await.list_agents(request).await?.into_inner();
    Ok((response.agents.into_iter().map(|a| a.id).collect(), response.next_page_token))
}

#[tokio::test]
async fn a_page_token_works_only_unchanged_with_its_own_query() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    for name in ["a", "b", "c"] {
        let mut request = common::provider(name, "date_service", "1.0.0", &[]);
        request.agent_id = format!("{name}-00000000");
        client.register_agent(request).await.unwrap();
    }
    client.register_agent(common::provider("w", "weather", "1.0.0", &[])).await.unwrap();
    let any = AgentStatus::Unspecified;

    let (first, token) = page(&server, "date_service", any, "").await.unwrap();
    assert_eq!(first, ["a-00000000"]);
    let (second, _) = page(&server, "date_service", any, &token).await.unwrap();
    assert_eq!(second, ["b-00000000"]);

    use base64::Engine as _;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("b-00000000");
    let truncated = &token[..token.len() - 2];
    let mut altered = token.clone().into_bytes();
    altered[4] = if altered[4] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (case, capability, status, token) in [
        ("forged", "date_service", any, forged.as_str()),
        ("truncated", "date_service", any, truncated),
        ("altered", "date_service", any, altered.as_str()),
        ("another capability", "weather", any, token.as_str()),
        ("another status", "date_service", AgentStatus::Healthy, token.as_str()),
    ] {
        let status = page(&server, capability, status, token).await.unwrap_err();
        assert_invalid(&status, "page_token", case);
    }

    // A token outlives a registry restart: the store, not the process, keys it.
    let dir = server.stop().await;
    let server = TestRegistry::builder().data_dir(dir).start().await;
    let (second, _) = page(&server, "date_service", any, &token).await.unwrap();
    assert_eq!(second, ["b-00000000"]);
}
