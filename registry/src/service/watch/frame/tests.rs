use std::sync::OnceLock;

use switchboard_proto::v1::{Tool, WatchResponse};

use super::*;

fn agent() -> Arc<Agent> {
    Arc::new(Agent {
        id: "hello-1".into(),
        name: "hello".into(),
        tools: vec![Tool { name: "greet".into(), ..Tool::default() }],
        ..Agent::default()
    })
}

#[test]
fn frames_encode_exactly_like_prost() {
    let agent = agent();
    let time = Timestamp { seconds: 7, nanos: 1 };
    let frames = AgentFrames::default();
    let header =
        Header { reason: "filter", time: Some(&time), ..Header::new(EventType::Removed, 9, "e") };
    let expected = WatchResponse {
        r#type: EventType::Removed as i32,
        revision: 9,
        store_epoch: "e".into(),
        agent: Some((*agent).clone()),
        reason: "filter".into(),
        time: Some(time),
        ..WatchResponse::default()
    };
    assert_eq!(frame_bytes(&header.with_agent(frames.get(&agent))), expected.encode_to_vec());

    let marker = Header {
        compact_revision: 3,
        reason: "compacted",
        ..Header::new(EventType::ResyncRequired, 1, "e")
    };
    let expected = WatchResponse {
        r#type: EventType::ResyncRequired as i32,
        revision: 1,
        store_epoch: "e".into(),
        compact_revision: 3,
        reason: "compacted".into(),
        ..WatchResponse::default()
    };
    assert_eq!(frame_bytes(&marker.marker()), expected.encode_to_vec());

    let change = Change {
        kind: EventType::Changed,
        revision: 4,
        agent: agent.clone(),
        reason: "",
        time: Some(time),
        frame: OnceLock::new(),
    };
    let expected = WatchResponse {
        r#type: EventType::Changed as i32,
        revision: 4,
        store_epoch: "e".into(),
        agent: Some((*agent).clone()),
        time: Some(time),
        ..WatchResponse::default()
    };
    let bytes = change.frame(|c| change_frame(c, "e", &frames.get(&c.agent)));
    assert_eq!(bytes.as_ref(), expected.encode_to_vec().as_slice());
    let again = change.frame(|_| panic!("encoded once"));
    assert_eq!(again.as_ptr(), bytes.as_ptr(), "every watcher sends the same bytes");
    assert_eq!(WatchResponse::decode(bytes).unwrap(), expected);
}

#[test]
fn an_agent_is_encoded_once_per_arc_and_forgotten_once_dropped() {
    let frames = AgentFrames::default();
    let first = agent();
    let a = frames.get(&first);
    let b = frames.get(&first);
    assert_eq!(a.as_ptr(), b.as_ptr(), "the same shared bytes");
    drop(first);
    for _ in 0..2000 {
        let _ = frames.get(&agent());
    }
    assert!(frames.len() < 2000, "entries of dropped agents are swept");
}
