//! Persistence of the registry: the `Store` trait and its implementations.
//!
//! The registry logic owns the authoritative in-memory state and never touches
//! sled or etcd directly: it hands the store one [`CommitBatch`] per
//! group of mutations and acknowledges them once [`Store::commit`] returns,
//! which an implementation must only do when the batch is durable.

mod copy;
mod etcd_store;
mod sled_store;

use std::sync::Arc;

use futures::future::BoxFuture;
use switchboard_proto::v1::{Agent, Event};

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
}

/// One durable, atomic step of the registry: every mutation of a group commit.
#[derive(Debug, Default)]
pub struct CommitBatch {
    /// Revision of the last mutation in the batch; the store's new revision.
    pub revision: u64,
    /// Agents to insert or replace, keyed by their id (shared with the
    /// snapshot: a batch copies nothing).
    pub upserts: Vec<Arc<Agent>>,
    /// Ids of agents to delete.
    pub deletes: Vec<String>,
    /// New events, ordered by revision, one per mutation.
    pub events: Vec<Arc<Change>>,
    /// When set, events with a revision below this are dropped from the
    /// history, and this becomes the new compact revision.
    pub compact_before: Option<u64>,
}

/// Durable storage of agents, the revision counter, the epoch and the event
/// history.
pub trait Store: Send + Sync + 'static {
    /// Reads the whole state, creating the epoch on a new store.
    fn load(&self) -> BoxFuture<'_, StoreResult<LoadedState>>;

    /// Applies a batch atomically; returns only once it is durable. Concurrent
    /// callers may share one flush (group commit).
    fn commit(&self, batch: CommitBatch) -> BoxFuture<'_, StoreResult<()>>;

    /// Flushes anything pending; called on graceful shutdown.
    fn flush(&self) -> BoxFuture<'_, StoreResult<()>>;

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
}
