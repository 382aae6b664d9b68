//! Persistence of the registry: the `Store` trait and its implementations.
//!
//! The registry logic owns the authoritative in-memory state and never touches
//! sled or etcd directly: it hands the store one [`CommitBatch`] per
//! group of mutations and acknowledges them once [`Store::commit`] returns,
//! which an implementation must only do when the batch is durable.
//!
//! Tokens live in a keyspace of their own, apart from agents and revisions:
//! they are not part of the revisioned state watchers follow, so a token
//! write takes no revision and emits no event. A store keeps each token
//! under the SHA-256 hash of its secret and never sees the secret.

mod copy;
mod etcd_store;
mod sled_store;

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use prost::Message as _;
use switchboard_proto::v1::{Agent, Event, TokenInfo};

use crate::change::Change;

pub use copy::{CopyReport, copy};
pub use etcd_store::{COMMIT_RETRY, EtcdStore, MAX_AGENT_BYTES};
pub use sled_store::SledStore;

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded database failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("corrupt record {key:?}: {source}")]
    Corrupt {
        /// Key of the bad record.
        key: String,
        /// Decoding error.
        source: prost::DecodeError,
    },
    /// A stored value does not have the expected shape.
    #[error("corrupt store: {0}")]
    Invalid(String),
    /// etcd failed or stayed unreachable.
    #[error(transparent)]
    Etcd(#[from] switchboard_etcd::EtcdError),
    /// Another writer changed the store under this one.
    #[error("write conflict: {0}")]
    Conflict(String),
    /// The store cannot take this write now; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The batch does not fit in one atomic write of this store (one etcd
    /// transaction); nothing was written. The writer commits it as several
    /// smaller batches, each atomic: a batch written in parts could
    /// interleave with another replica's and lose its events.
    #[error(
        "a batch of {mutations} changes does not fit in one transaction ({transactions} needed)"
    )]
    TooLarge {
        /// Changes in the batch.
        mutations: usize,
        /// Transactions it would take.
        transactions: usize,
    },
    /// Another replica committed first: the store is at `stored`, past the
    /// revision the batch was built on. The batch wrote nothing; the writer
    /// applies the store's feed up to `stored` and builds it again.
    #[error("write conflict: the store is at revision {stored}, ahead of this replica")]
    Behind {
        /// The store's revision when the batch was refused.
        stored: u64,
    },
}

/// Agents this replica claimed and the store has not recorded yet: a set,
/// so a claim is never dropped and the set never holds more than one entry
/// per agent; the store's owner task drains it in batches.
#[derive(Debug, Default)]
pub struct Claims {
    pending: parking_lot::Mutex<std::collections::BTreeSet<String>>,
    added: tokio::sync::Notify,
}

// === impl Claims ===

impl Claims {
    /// Claims `agent_id`.
    pub fn add(&self, agent_id: &str) {
        if self.pending.lock().insert(agent_id.to_owned()) {
            self.added.notify_one();
        }
    }

    /// Waits until a claim is pending, then takes every pending one.
    pub async fn take(&self) -> std::collections::BTreeSet<String> {
        loop {
            let taken = std::mem::take(&mut *self.pending.lock());
            if !taken.is_empty() {
                return taken;
            }
            self.added.notified().await;
        }
    }
}

/// Changes other writers committed to a shared store, in revision order:
/// the events of one or more of their batches, complete up to `revision`.
#[derive(Debug, Default)]
pub struct FeedBatch {
    /// The store's revision once these events are applied.
    pub revision: u64,
    /// The events, ordered by revision, none above `revision`.
    pub events: Vec<Event>,
    /// Changes of agents' owners, after the events: the replica now
    /// holding the agent, or `None` when its owner released it or stopped
    /// renewing its lease.
    pub owners: Vec<(String, Option<String>)>,
    /// Tokens another replica created or revoked: every replica
    /// authenticates with them at once, and ends a revoked token's streams.
    pub tokens: Vec<StoredToken>,
    /// Every stored agent, when the batch comes from a read of the whole
    /// store (a feed that fell behind the store's compaction): if the
    /// stored events no longer reach back to this replica's revision, the
    /// replica replaces its state with these instead.
    pub agents: Option<Vec<switchboard_proto::v1::Agent>>,
}

/// Everything a registry needs at startup.
#[derive(Debug, Default)]
pub struct LoadedState {
    /// Store epoch: a UUID made when the store was created.
    pub epoch: String,
    /// Revision of the latest committed mutation (0 for a new store).
    pub revision: u64,
    /// Oldest revision the retained history can replay from: a watcher whose
    /// `since_revision` is below this must resync.
    pub compact_revision: u64,
    /// Every stored agent.
    pub agents: Vec<Agent>,
    /// The retained event history, ordered by revision.
    pub events: Vec<Event>,
    /// Agent id → the replica that owns it, for a store several replicas
    /// share (agents with no owner are not listed).
    pub owners: std::collections::HashMap<String, String>,
}

/// One durable, atomic step of the registry: every mutation of a group commit.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// The store's revision the batch was built on: a store several
    /// replicas write commits it only while it is still at this revision.
    pub base_revision: u64,
    /// Revision of the last mutation in the batch; the store's new revision.
    pub revision: u64,
    /// Agents to insert or replace, keyed by their id (shared with the
    /// snapshot: a batch copies nothing).
    pub upserts: Vec<Upsert>,
    /// Ids of agents to delete.
    pub deletes: Vec<String>,
    /// New events, ordered by revision, one per mutation.
    pub events: Vec<NewEvent>,
    /// When set, events with a revision below this are dropped from the
    /// history, and this becomes the new compact revision.
    pub compact_before: Option<u64>,
}

/// An agent to store, with its encoding when the writer has it already (a
/// registration is encoded by its RPC handler; see `mutation::prepared`).
#[derive(Debug, Clone)]
pub struct Upsert {
    /// The agent, shared with the snapshot.
    pub agent: Arc<Agent>,
    /// Its protobuf encoding, when prepared; shared with its event.
    pub encoded: Option<Bytes>,
}

/// An event to store, with the encoding of its agent when the writer has it
/// already (the same bytes as the agent's [`Upsert`]).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The event, shared with the history.
    pub change: Arc<Change>,
    /// The protobuf encoding of `change.agent`, when prepared.
    pub agent: Option<Bytes>,
}

// === impl Upsert ===

impl Upsert {
    /// The record's bytes: the prepared ones, or the agent encoded now.
    pub fn encode(&self) -> Bytes {
        match &self.encoded {
            Some(encoded) => encoded.clone(),
            None => Bytes::from(self.agent.encode_to_vec()),
        }
    }
}

impl From<Arc<Agent>> for Upsert {
    fn from(agent: Arc<Agent>) -> Self {
        Self { agent, encoded: None }
    }
}

// === impl NewEvent ===

impl NewEvent {
    /// The stored event's bytes, around the prepared agent when there is one.
    pub fn encode(&self) -> Vec<u8> {
        self.change.encode_event(self.agent.as_deref())
    }
}

impl From<Arc<Change>> for NewEvent {
    fn from(change: Arc<Change>) -> Self {
        Self { change, agent: None }
    }
}

/// A token as a store keeps it: the SHA-256 hash of its secret, and
/// everything else about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    /// SHA-256 of the secret: the key of the record.
    pub hash: [u8; 32],
    /// The token's id, name, role, scope, times.
    pub info: TokenInfo,
}

/// Durable storage of agents, the revision counter, the epoch and the event
/// history, and of tokens.
///
/// The token methods have defaults for a store that keeps no tokens: it
/// loads none, and refuses to store one, so a registry started with auth on
/// such a store fails at bootstrap with a message naming the store.
pub trait Store: Send + Sync + 'static {
    /// Reads the whole state, creating the epoch on a new store.
    fn load(&self) -> BoxFuture<'_, StoreResult<LoadedState>>;

    /// Applies a batch atomically; returns only once it is durable. Concurrent
    /// callers may share one flush (group commit).
    fn commit(&self, batch: CommitBatch) -> BoxFuture<'_, StoreResult<()>>;

    /// [`commit`](Store::commit) by a caller that is sure to be the store's
    /// only writer (a copy into a new store, with no registry running), so
    /// a batch too large for one atomic write may be written in parts.
    fn commit_alone(&self, batch: CommitBatch) -> BoxFuture<'_, StoreResult<()>> {
        self.commit(batch)
    }

    /// Flushes anything pending; called on graceful shutdown.
    fn flush(&self) -> BoxFuture<'_, StoreResult<()>>;

    /// Every stored token, revoked and expired ones included.
    fn load_tokens(&self) -> BoxFuture<'_, StoreResult<Vec<StoredToken>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Inserts or replaces the token stored under `token.hash`; returns
    /// only once it is durable (a revocation must survive a crash).
    fn put_token(&self, token: StoredToken) -> BoxFuture<'_, StoreResult<()>> {
        drop(token);
        Box::pin(async { Err(StoreError::Invalid("this store does not keep tokens".into())) })
    }

    /// The token stored under `hash`, read from the store itself, for a
    /// store other replicas write too (they may have stored it a moment
    /// ago); `None` for a store this registry writes alone, whose tokens
    /// are all loaded.
    fn token(&self, hash: &[u8; 32]) -> BoxFuture<'_, StoreResult<Option<StoredToken>>> {
        let _ = hash;
        Box::pin(async { Ok(None) })
    }

    /// Largest registration (encoded `RegisterAgentRequest`) the store can
    /// hold as one record; larger ones are refused with `INVALID_ARGUMENT`
    /// before they reach the writer. `None`: no limit of its own.
    fn max_agent_bytes(&self) -> Option<usize> {
        None
    }

    /// Whether the store can take writes now, for stores that can lose their
    /// backing service (etcd without quorum); the registry reports itself
    /// not ready while it is false. `None`: always reachable (embedded).
    fn reachable(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    /// The batches other writers commit from now on (call it right after
    /// [`load`](Store::load): the feed starts where the load ended), for a
    /// store several registry replicas share. `None`: this registry is the
    /// store's only writer (sled), its own commits are the whole feed.
    fn feed(&self) -> Option<tokio::sync::mpsc::Receiver<FeedBatch>> {
        None
    }

    /// This registry's id among the replicas of a shared store (the owner
    /// named in [`FeedBatch::owners`]); `None` for a store it writes alone.
    fn replica(&self) -> Option<String> {
        None
    }

    /// Where to send the id of an agent this replica now owns (it holds
    /// the agent's stream, or registered it): the store records the claim
    /// in the background, once per claim, never per heartbeat. Call it after
    /// [`feed`](Store::feed); `None` for a store this registry writes alone.
    fn claims(&self) -> Option<Arc<Claims>> {
        None
    }

    /// Whether this replica is the one that tracks (and so expires) agents
    /// no replica owns, for a store several replicas share; `None` for a
    /// store this registry writes alone (it tracks every agent).
    fn sweeper(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    /// The revision of the latest batch any writer committed, read so that
    /// it reflects every commit acknowledged before the call (a quorum read),
    /// for a store other replicas write too. `None`: this registry is the
    /// store's only writer, and its memory is always up to date.
    fn committed_revision(&self) -> BoxFuture<'_, StoreResult<Option<u64>>> {
        Box::pin(async { Ok(None) })
    }
}
