//! One recorded mutation, as the registry keeps it in memory.
//!
//! The wire type [`Event`] owns its agent; the history, the live event ring
//! and the commit batch would each hold a deep copy of the agent (its tools,
//! their JSON schemas) per mutation. A [`Change`] shares the snapshot's
//! `Arc<Agent>` instead, and encodes itself as the exact bytes of an
//! [`Event`] for the store without building one. It also keeps the encoded
//! watch message built for it the first time a watcher sends it, so every
//! watcher sends the same bytes instead of encoding the agent again.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use prost::Message as _;
use prost::encoding::{WireType, encode_key, encode_varint, int32, message, string, uint64};
use prost_types::Timestamp;
use switchboard_proto::v1::{Agent, Event, EventType};

/// Reason of the removal of an EXPIRED agent after its retention.
pub(crate) const PURGED: &str = "purged";

/// A mutation: what happened to which agent at which revision.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub kind: EventType,
    /// Revision assigned to it.
    pub revision: u64,
    /// The agent after the change (its last state for a removal).
    pub agent: Arc<Agent>,
    /// Why, for removals (`deregistered`, `purged`).
    pub reason: &'static str,
    /// When it was recorded.
    pub time: Option<Timestamp>,
    /// The encoded unfiltered watch message, built once on first use.
    pub frame: OnceLock<Bytes>,
}

/// Equal when the recorded mutation is; the cached frame is derived.
impl PartialEq for Change {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.revision == other.revision
            && self.agent == other.agent
            && self.reason == other.reason
            && self.time == other.time
    }
}

// === impl Change ===

impl Change {
    /// The wire form (a deep copy of the agent).
    pub fn to_event(&self) -> Event {
        Event {
            r#type: self.kind as i32,
            revision: self.revision,
            agent: Some((*self.agent).clone()),
            reason: self.reason.to_owned(),
            time: self.time,
        }
    }

    /// A stored event, back in memory.
    pub fn from_event(event: Event) -> Self {
        Self {
            kind: EventType::try_from(event.r#type).unwrap_or(EventType::Unspecified),
            revision: event.revision,
            agent: Arc::new(event.agent.unwrap_or_default()),
            reason: known_reason(&event.reason),
            time: event.time,
            frame: OnceLock::new(),
        }
    }

    /// The shared encoded watch message, built by `build` on first use.
    pub fn frame(&self, build: impl FnOnce(&Change) -> Bytes) -> Bytes {
        self.frame.get_or_init(|| build(self)).clone()
    }

    /// The protobuf encoding of [`Change::to_event`], without the copy.
    /// `agent` is the agent's encoding when the caller has it (it is then
    /// not encoded again); any valid encoding of the same agent will do.
    pub fn encode_event(&self, agent: Option<&[u8]>) -> Vec<u8> {
        let agent_len = agent.map_or_else(|| self.agent.encoded_len(), <[u8]>::len);
        let mut buffer = Vec::with_capacity(agent_len + 64);
        let kind = self.kind as i32;
        if kind != 0 {
            int32::encode(1, &kind, &mut buffer);
        }
        if self.revision != 0 {
            uint64::encode(2, &self.revision, &mut buffer);
        }
        match agent {
            Some(agent) => {
                // Field 3, length-delimited: what `message::encode` writes
                // around an encoded message.
                encode_key(3, WireType::LengthDelimited, &mut buffer);
                encode_varint(agent.len() as u64, &mut buffer);
                buffer.extend_from_slice(agent);
            }
            None => message::encode(3, &*self.agent, &mut buffer),
        }
        if !self.reason.is_empty() {
            string::encode(4, &self.reason.to_owned(), &mut buffer);
        }
        if let Some(time) = &self.time {
            message::encode(5, time, &mut buffer);
        }
        buffer
    }
}

/// Reasons are a small closed set; unknown ones (from a newer version)
/// read as empty.
fn known_reason(reason: &str) -> &'static str {
    ["deregistered", "purged", "filter"].into_iter().find(|known| *known == reason).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use switchboard_proto::v1::Tool;

    use super::*;

    #[test]
    fn encodes_exactly_like_the_wire_event_and_decodes_back() {
        let agent = Agent {
            id: "hello-1".into(),
            name: "hello".into(),
            tools: vec![Tool { name: "greet".into(), ..Tool::default() }],
            ..Agent::default()
        };
        let change = Change {
            kind: EventType::Removed,
            revision: 42,
            agent: Arc::new(agent),
            reason: "deregistered",
            time: Some(Timestamp { seconds: 7, nanos: 1 }),
            frame: OnceLock::new(),
        };
        assert_eq!(change.encode_event(None), change.to_event().encode_to_vec());
        let decoded = Event::decode(change.encode_event(None).as_slice()).unwrap();
        assert_eq!(Change::from_event(decoded), change);
        // With the agent's bytes handed in, the same event comes out.
        let agent = change.agent.encode_to_vec();
        assert_eq!(change.encode_event(Some(&agent)), change.to_event().encode_to_vec());
    }
}
