//! Copying a whole store into an empty one: the migration from sled to etcd
//! (and back) for a user who outgrew one machine, or wants to return.
//!
//! The target gets every agent as stored (status and all), the same
//! revision, the same retained history and the same compact revision, so
//! revision order is preserved across the move. Its epoch is its own (an
//! etcd epoch is derived from the cluster id): watchers of the old registry
//! resync once against the new one, which is what a changed epoch is for.

use std::sync::Arc;

use super::{CommitBatch, Store, StoreError, StoreResult};
use crate::change::Change;

/// What [`copy`] moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Agents copied.
    pub agents: usize,
    /// History events copied.
    pub events: usize,
    /// The revision both stores are at.
    pub revision: u64,
    /// The target's epoch.
    pub epoch: String,
}

/// Copies everything in `from` into `to`, which must be empty (no agent,
/// revision 0): a copy never merges two histories.
pub async fn copy(from: &dyn Store, to: &dyn Store) -> StoreResult<CopyReport> {
    let target = to.load().await?;
    if target.revision != 0 || !target.agents.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the target store is not empty ({} agents, revision {}): copy only into a new store",
            target.agents.len(),
            target.revision
        )));
    }
    let source = from.load().await?;
    let report = CopyReport {
        agents: source.agents.len(),
        events: source.events.len(),
        revision: source.revision,
        epoch: target.epoch,
    };
    if source.revision == 0 {
        return Ok(report);
    }
    let batch = CommitBatch {
        base_revision: target.revision,
        revision: source.revision,
        upserts: source.agents.into_iter().map(|agent| Arc::new(agent).into()).collect(),
        deletes: Vec::new(),
        events: source
            .events
            .into_iter()
            .map(|event| Arc::new(Change::from_event(event)).into())
            .collect(),
        compact_before: (source.compact_revision > 0).then_some(source.compact_revision),
    };
    to.commit_alone(batch).await?;
    to.flush().await?;
    Ok(report)
}
