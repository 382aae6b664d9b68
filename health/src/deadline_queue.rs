//! A timer queue of per-key deadlines, armed lazily.
//!
//! Heartbeats are by far the most frequent liveness event, so they must not
//! touch the queue: a heartbeat only stores the agent's last-seen instant. The
//! queue therefore holds, for every tracked key, exactly one entry that is *no
//! later* than the key's real deadline. When an entry pops, the tracker
//! recomputes the real deadline from the record; if the agent heartbeated since,
//! the real deadline is later and the entry is simply re-armed there instead of
//! firing. Nothing ever scans all agents per tick.
//!
//! Entries are keyed by `(deadline, sequence)` in a `BTreeMap`, and the
//! tracker remembers each key's [`Slot`]. That makes removal exact (O(log n))
//! when a deadline must move *earlier* (a revived EXPIRED agent, a forgotten
//! key), so the queue never holds stale duplicates: its length always equals
//! the number of tracked keys, instead of growing with flapping agents as a
//! heap with tombstones would.

use std::collections::BTreeMap;

use tokio::time::Instant;

/// Where an entry sits in the queue: its deadline plus a tie-breaking sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    at: Instant,
    seq: u64,
}

/// Deadlines ordered by time, then by insertion order.
#[derive(Debug)]
pub(crate) struct DeadlineQueue<K> {
    entries: BTreeMap<Slot, K>,
    next_seq: u64,
}

// === impl Slot ===

impl Slot {
    /// The instant this entry is armed for.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }
}

// === impl DeadlineQueue ===

impl<K> DeadlineQueue<K> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self { entries: BTreeMap::new(), next_seq: 0 }
    }

    /// Number of armed entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Arms `key` at `at`; keep the returned slot to remove the entry later.
    pub(crate) fn insert(&mut self, at: Instant, key: K) -> Slot {
        let slot = Slot { at, seq: self.next_seq };
        self.next_seq = self.next_seq.wrapping_add(1);
        self.entries.insert(slot, key);
        slot
    }

    /// Disarms the entry at `slot`, if it is still armed.
    pub(crate) fn remove(&mut self, slot: Slot) -> Option<K> {
        self.entries.remove(&slot)
    }

    /// The earliest armed instant.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|(slot, _)| slot.at)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Slot, K)> {
        match self.entries.first_key_value() {
            Some((slot, _)) if slot.at <= now => self.entries.pop_first(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pops_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut queue = DeadlineQueue::new();
        queue.insert(t0 + Duration::from_secs(2), "late");
        queue.insert(t0 + Duration::from_secs(1), "first");
        queue.insert(t0 + Duration::from_secs(1), "second");
        assert_eq!(queue.next_deadline(), Some(t0 + Duration::from_secs(1)));

        assert!(queue.pop_due(t0).is_none(), "nothing is due before the first deadline");
        let now = t0 + Duration::from_secs(1);
        assert_eq!(queue.pop_due(now).map(|(_, k)| k), Some("first"));
        assert_eq!(queue.pop_due(now).map(|(_, k)| k), Some("second"));
        assert!(queue.pop_due(now).is_none());
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn remove_by_slot_is_exact() {
        let t0 = Instant::now();
        let mut queue = DeadlineQueue::new();
        let a = queue.insert(t0, "a");
        let b = queue.insert(t0, "b");
        assert_eq!(queue.remove(a), Some("a"));
        assert_eq!(queue.remove(a), None, "a removed slot stays removed");
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.pop_due(t0), Some((b, "b")));
        assert_eq!(queue.next_deadline(), None);
    }
}
