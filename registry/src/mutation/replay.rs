//! Replaying a change another replica committed: the same effect on the
//! snapshot, its indexes, the history and the wiring as the mutation that
//! made it had on that replica, at the revision the store gave it.
//!
//! A replayed change is already durable, so it adds nothing to commit, and
//! it leaves liveness alone except for removals: this replica does not
//! track the deadlines of agents whose streams another replica holds.

use std::sync::Arc;

use switchboard_health::LivenessTracker;
use switchboard_proto::v1::EventType;

use super::BatchBuilder;
use crate::change::Change;
use crate::store::NewEvent;

// === impl BatchBuilder ===

impl BatchBuilder {
    /// Applies `change` unless the snapshot already has it (its revision is
    /// not above the snapshot's: this replica's own commit, or a batch the
    /// feed delivered before). Returns whether it was applied.
    pub fn replay(&mut self, change: Change, tracker: &mut LivenessTracker<String>) -> bool {
        if change.revision <= self.next.revision {
            return false;
        }
        if change.revision != self.next.revision + 1 {
            // Revisions are dense: a hole means the feed lost a batch.
            tracing::error!(
                expected = self.next.revision + 1,
                found = change.revision,
                "the store's feed skipped revisions"
            );
        }
        self.next.revision = change.revision;
        let id = change.agent.id.clone();
        if change.kind == EventType::Removed {
            if let Some(removed) = self.next.remove_agent(&id) {
                self.touch(&removed);
            }
            tracker.forget(&id);
        } else {
            if let Some(old) = self.next.put_agent(change.agent.clone()) {
                self.touch(&old);
            }
            self.touch(&change.agent);
            self.rewire.insert(id);
        }
        let change = Arc::new(change);
        // This replica's history is trimmed by its own limits; the store's
        // compaction is the committing replica's business.
        self.next.record(change.clone(), self.max_events, self.oldest_seconds);
        self.events.push(NewEvent { change, agent: None });
        true
    }
}
