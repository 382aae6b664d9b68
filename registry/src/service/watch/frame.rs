//! Watch messages as encoded bytes, built once and shared by every watcher.
//!
//! Encoding a `WatchResponse` per watcher costs a deep copy of the agent (its
//! tools and their JSON schemas) plus an encoding, times the number of
//! watchers. Instead an event's unfiltered message is encoded once and kept
//! with the event, and an agent's encoding is kept per `Arc<Agent>`, so a
//! snapshot entry (or a filter-rewritten event) is a few header bytes around
//! shared agent bytes. The fields are written in field-number order, exactly
//! as prost writes a `WatchResponse`, so clients decode the generated type.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use bytes::{BufMut, Bytes};
use parking_lot::Mutex;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, message};
use prost_types::Timestamp;
use switchboard_proto::v1::{Agent, EventType};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};

use crate::change::Change;

/// Initial encode buffer of a watch stream; it grows as messages need.
const BUFFER_SIZE: usize = 1024;
/// Encoded bytes after which a stream hands a chunk to HTTP/2 (tonic's
/// default): the most a watcher holds in the registry besides HTTP/2's own
/// buffer.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// One encoded `WatchResponse`.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A whole message (a marker, or an event's shared encoding).
    Whole(Bytes),
    /// A message around shared agent bytes.
    Parts {
        /// Fields before the agent, and the agent's key and length.
        head: Vec<u8>,
        /// The agent's shared encoding.
        agent: Bytes,
        /// Fields after the agent.
        tail: Vec<u8>,
    },
}

/// The fields of a `WatchResponse` other than its agent.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub kind: EventType,
    pub revision: u64,
    pub epoch: &'a str,
    pub compact_revision: u64,
    pub reason: &'a str,
    pub time: Option<&'a Timestamp>,
}

// === impl Header ===

impl<'a> Header<'a> {
    /// A header with only the type, revision and epoch set.
    pub fn new(kind: EventType, revision: u64, epoch: &'a str) -> Self {
        Self { kind, revision, epoch, compact_revision: 0, reason: "", time: None }
    }

    /// Fields 1–3, and the key and length of the agent (field 4) if any.
    fn head(&self, agent_len: Option<usize>) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(32 + self.epoch.len());
        let kind = self.kind as i32;
        if kind != 0 {
            encode_key(1, WireType::Varint, &mut buffer);
            // Enum values are encoded as int32: sign-extended to 64 bits.
            encode_varint(i64::from(kind) as u64, &mut buffer);
        }
        if self.revision != 0 {
            encode_key(2, WireType::Varint, &mut buffer);
            encode_varint(self.revision, &mut buffer);
        }
        put_str(3, self.epoch, &mut buffer);
        if let Some(len) = agent_len {
            encode_key(4, WireType::LengthDelimited, &mut buffer);
            encode_varint(len as u64, &mut buffer);
        }
        buffer
    }

    /// Fields 5–7.
    fn tail(&self) -> Vec<u8> {
        let mut buffer = Vec::new();
        if self.compact_revision != 0 {
            encode_key(5, WireType::Varint, &mut buffer);
            encode_varint(self.compact_revision, &mut buffer);
        }
        put_str(6, self.reason, &mut buffer);
        if let Some(time) = self.time {
            message::encode(7, time, &mut buffer);
        }
        buffer
    }

    /// A message without an agent.
    pub fn marker(&self) -> Frame {
        let mut bytes = self.head(None);
        bytes.extend_from_slice(&self.tail());
        Frame::Whole(bytes.into())
    }

    /// A message around shared agent bytes.
    pub fn with_agent(&self, agent: Bytes) -> Frame {
        Frame::Parts { head: self.head(Some(agent.len())), agent, tail: self.tail() }
    }
}

fn put_str(tag: u32, value: &str, buffer: &mut Vec<u8>) {
    if !value.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buffer);
        encode_varint(value.len() as u64, buffer);
        buffer.extend_from_slice(value.as_bytes());
    }
}

/// An event's unfiltered message, as one contiguous buffer.
pub fn change_frame(change: &Change, epoch: &str, agent: &Bytes) -> Bytes {
    let header = Header {
        reason: change.reason,
        time: change.time.as_ref(),
        ..Header::new(change.kind, change.revision, epoch)
    };
    let head = header.head(Some(agent.len()));
    let tail = header.tail();
    let mut bytes = Vec::with_capacity(head.len() + agent.len() + tail.len());
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(agent);
    bytes.extend_from_slice(&tail);
    bytes.into()
}

/// Each agent's encoding, kept while its `Arc<Agent>` is alive.
///
/// Keyed by the `Arc`'s address and holding a `Weak` to it: the `Weak` keeps
/// the allocation, so no other agent can reuse that address while the entry
/// exists, and a caller holding the `Arc` proves the entry is its agent's.
#[derive(Debug, Default)]
pub struct AgentFrames {
    entries: Mutex<AgentEntries>,
}

#[derive(Debug, Default)]
struct AgentEntries {
    by_address: HashMap<usize, (Weak<Agent>, Bytes)>,
    /// Size at which entries of dropped agents are swept out.
    sweep_at: usize,
}

// === impl AgentFrames ===

impl AgentFrames {
    /// The encoding of `agent`, computed at most once per `Arc` in use.
    pub fn get(&self, agent: &Arc<Agent>) -> Bytes {
        let address = Arc::as_ptr(agent) as usize;
        if let Some((_, bytes)) = self.entries.lock().by_address.get(&address) {
            return bytes.clone();
        }
        // Encode outside the lock: other watchers keep reading meanwhile.
        let bytes = Bytes::from(agent.encode_to_vec());
        let mut entries = self.entries.lock();
        entries.by_address.insert(address, (Arc::downgrade(agent), bytes.clone()));
        if entries.by_address.len() > entries.sweep_at {
            entries.by_address.retain(|_, (weak, _)| weak.strong_count() > 0);
            entries.sweep_at = (entries.by_address.len() * 2).max(1024);
        }
        bytes
    }

    /// How many agents have a cached encoding.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().by_address.len()
    }
}

/// The Watch RPC's codec: frames go out as they are, requests are decoded
/// by prost with the project's small buffers.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec;

type RequestCodec = switchboard_proto::codec::CompactCodec<
    switchboard_proto::v1::WatchResponse,
    switchboard_proto::v1::WatchRequest,
>;

impl Codec for FrameCodec {
    type Encode = Frame;
    type Decode = switchboard_proto::v1::WatchRequest;
    type Encoder = FrameEncoder;
    type Decoder = <RequestCodec as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestCodec::default().decoder()
    }
}

/// Writes a frame's bytes into tonic's buffer.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = Frame;
    type Error = Status;

    fn encode(&mut self, item: Frame, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Frame::Whole(bytes) => dst.put_slice(&bytes),
            Frame::Parts { head, agent, tail } => {
                dst.reserve(head.len() + agent.len() + tail.len());
                dst.put_slice(&head);
                dst.put_slice(&agent);
                dst.put_slice(&tail);
            }
        }
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
    }
}

/// A frame's bytes in one buffer.
#[cfg(test)]
pub fn frame_bytes(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::Whole(bytes) => bytes.to_vec(),
        Frame::Parts { head, agent, tail } => [head.as_slice(), agent, tail].concat(),
    }
}

#[cfg(test)]
#[path = "frame/tests.rs"]
mod tests;
