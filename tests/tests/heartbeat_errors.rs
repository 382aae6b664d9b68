//! Heartbeats the registry cannot accept get a clear answer — a control
//! message or a status naming the field — and never harm the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    AgentStatus, ControlAction, DeregisterAgentRequest, ListAgentsRequest, RegisterAgentRequest,
    SendHeartbeatRequest,
};
use switchboard_tests::{HeartbeatSession, RawHeartbeatStream, TestRegistry};
use tonic::Code;
use tonic_types::StatusExt as _;

const SOON: Duration = Duration::from_secs(10);

/// The next message that is not an ack.
async fn next_non_ack(stream: &mut RawHeartbeatStream) -> Message {
    loop {
        match stream.next(SOON).await.expect("stream stays open") {
            Some(Message::Ack(_)) => {}
            Some(other) => return other,
            None => panic!("stream ended"),
        }
    }
}

/// Heartbeats from `sequence` on until the registry answers one with a
/// control message, and returns it. One registry answers the first; a
/// replica of a replica set that holds the stream answers once its feed
/// brought the change another replica made (acks until then).
async fn told_to_reregister(
    stream: &mut RawHeartbeatStream,
    agent_id: &str,
    sequence: u64,
) -> switchboard_proto::v1::ControlMessage {
    for sequence in sequence..sequence + 100 {
        stream.send(agent_id, sequence).await;
        match stream.next(SOON).await.expect("stream stays open") {
            Some(Message::Control(control)) => return control,
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            None => panic!("stream ended"),
        }
    }
    panic!("{agent_id}: no control message after 100 heartbeats")
}

/// The next ack, skipping other messages.
async fn next_ack(stream: &mut RawHeartbeatStream) -> switchboard_proto::v1::HeartbeatAck {
    loop {
        match stream.next(SOON).await.expect("stream stays open") {
            Some(Message::Ack(ack)) => return ack,
            Some(_) => {}
            None => panic!("stream ended"),
        }
    }
}

fn assert_invalid_agent_id(status: &tonic::Status, case: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert!(status.message().starts_with("agent_id"), "{case}: {:?}", status.message());
    let details = status.get_details_bad_request().expect("BadRequest details");
    assert_eq!(details.field_violations[0].field, "agent_id", "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_agent_is_told_to_reregister_and_its_stream_stays_usable() {
    let server = TestRegistry::start().await;
    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    stream.send("ghost-0000abcd", 1).await;
    let Message::Control(control) = next_non_ack(&mut stream).await else {
        panic!("expected a control message");
    };
    assert_eq!(control.action(), ControlAction::Reregister);
    assert!(control.reason.contains("ghost-0000abcd"), "{control:?}");

    // The agent registers and carries on on the same stream.
    let mut request = common::provider("ghost", "haunting", "1.0.0", &[]);
    request.agent_id = "ghost-0000abcd".into();
    server.registry_client().await.register_agent(request).await.unwrap();
    stream.send("ghost-0000abcd", 2).await;
    let ack = next_ack(&mut stream).await;
    assert_eq!(ack.sequence, 2);
    assert_eq!(ack.status(), AgentStatus::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_agent_that_was_deregistered_reregisters_and_is_pushed_again() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    let mut request = common::consumer("hello", "date_service", "", &[]);
    request.agent_id = "hello-0000abcd".into();
    client.register_agent(request.clone()).await.unwrap();
    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    stream.send("hello-0000abcd", 1).await;
    assert!(matches!(next_non_ack(&mut stream).await, Message::Resolution(_)), "bound");

    // An operator removes it; its next heartbeat learns so.
    client
        .deregister_agent(DeregisterAgentRequest { agent_id: "hello-0000abcd".into() })
        .await
        .unwrap();
    let control = told_to_reregister(&mut stream, "hello-0000abcd", 2).await;
    assert_eq!(control.action(), ControlAction::Reregister);

    // It registers again and keeps the same stream: it is acked, and wiring
    // changes reach it again.
    client.register_agent(request).await.unwrap();
    stream.send("hello-0000abcd", 3).await;
    assert_eq!(next_ack(&mut stream).await.status(), AgentStatus::Healthy);
    let date = client
        .register_agent(common::provider("date", "date_service", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    loop {
        match next_non_ack(&mut stream).await {
            Message::Resolution(update)
                if update.resolutions[0].dependencies[0].providers.len() == 1 =>
            {
                assert_eq!(update.resolutions[0].dependencies[0].providers[0].agent_id, date);
                break;
            }
            Message::Resolution(_) => {}
            Message::Control(control) => panic!("unexpected control {control:?}"),
            Message::Ack(_) => unreachable!(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_agent_ids_end_the_stream_with_invalid_argument() {
    let server = TestRegistry::start().await;
    for (case, id) in [("empty", ""), ("invalid", "Not An Id!"), ("too long", &"x".repeat(300))] {
        let mut session =
            HeartbeatSession::open(server.channel().await, id, Duration::from_millis(50)).await;
        let status = loop {
            match session.next(SOON).await {
                Ok(Message::Control(control)) => panic!("{case}: got control {control:?}"),
                Ok(_) => {}
                Err(status) => break status,
            }
        };
        assert_invalid_agent_id(&status, case);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_for_another_agent_on_a_bound_stream_is_rejected_naming_both() {
    let server = TestRegistry::start().await;
    let mut client = server.registry_client().await;
    for id in ["first-0000abcd", "other-0000abcd"] {
        let mut request = common::provider(id.split('-').next().unwrap(), "cap", "1.0.0", &[]);
        request.agent_id = id.into();
        client.register_agent(request).await.unwrap();
    }
    let mut stream = RawHeartbeatStream::open(server.channel().await).await;
    stream.send("first-0000abcd", 1).await;
    assert_eq!(next_ack(&mut stream).await.sequence, 1);
    stream.send("other-0000abcd", 2).await;
    let status = stream.end_status(SOON).await;
    assert_invalid_agent_id(&status, "foreign id");
    assert!(
        status.message().contains("first-0000abcd") && status.message().contains("other-0000abcd"),
        "names both ids: {:?}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_heartbeat_errors_and_the_registry_still_serves() {
    let server = TestRegistry::start().await;
    let mut heartbeats = server.heartbeat_client().await;
    let status = heartbeats
        .send_heartbeat(SendHeartbeatRequest {
            agent_id: "ghost-0000abcd".into(),
            sequence: 1,
            ..SendHeartbeatRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("ghost-0000abcd"), "{status:?}");

    let status = heartbeats
        .send_heartbeat(SendHeartbeatRequest {
            agent_id: String::new(),
            sequence: 1,
            labels: None,
            health: None,
        })
        .await
        .unwrap_err();
    assert_invalid_agent_id(&status, "unary empty id");

    // A burst of bad streams in parallel, then normal service.
    let mut bad = Vec::new();
    for i in 0..20 {
        let channel = server.channel().await;
        bad.push(tokio::spawn(async move {
            let mut stream = RawHeartbeatStream::open(channel).await;
            stream.send(if i % 2 == 0 { "" } else { "BAD!" }, 1).await;
            stream.end_status(SOON).await.code()
        }));
    }
    for call in bad {
        assert_eq!(call.await.unwrap(), Code::InvalidArgument);
    }

    let mut client = server.registry_client().await;
    let request: RegisterAgentRequest = common::provider("alive", "cap", "1.0.0", &[]);
    let id = client.register_agent(request).await.unwrap().into_inner().agent_id;
    let mut session =
        HeartbeatSession::open(server.channel().await, &id, Duration::from_millis(50)).await;
    loop {
        if let Message::Ack(ack) = session.next(SOON).await.expect("healthy stream") {
            assert_eq!(ack.status(), AgentStatus::Healthy);
            break;
        }
    }
    let ack = heartbeats
        .send_heartbeat(SendHeartbeatRequest {
            agent_id: id.clone(),
            sequence: 7,
            labels: None,
            health: None,
        })
        .await
        .unwrap()
        .into_inner()
        .ack
        .unwrap();
    assert_eq!(ack.sequence, 7);
    let list = client.list_agents(ListAgentsRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.agents.len(), 1);
}
