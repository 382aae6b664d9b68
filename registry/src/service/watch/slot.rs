//! What the registry knows about each open watch stream, and the one sweep
//! that ends stalled ones.
//!
//! A watch stream runs only when HTTP/2 polls it, and HTTP/2 stops polling a
//! stream whose client stopped reading (its flow-control window is full). Such
//! a stream cannot notice anything itself, so a single task, shared by every
//! watcher, looks at each [`Slot`] every fraction of `slow_watcher_timeout`:
//! a watcher with something left to send that has not been polled for that
//! long is ended — it leaves the `watchers` gauge, drops the snapshot it was
//! sending, and its next poll (if the client ever reads again) ends it with a
//! resumable status after what HTTP/2 already holds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::state::Snapshot;

/// Shortest pause between two sweeps.
const MIN_SWEEP: Duration = Duration::from_millis(10);
/// Once the registry is closing, a stall this long ends a stream.
const CLOSING_STALL: Duration = Duration::from_secs(1);

/// One watch stream's state shared with the sweep.
#[derive(Debug)]
pub struct Slot {
    /// When the stream was last polled, in milliseconds since the clock base.
    last_poll: AtomicU64,
    /// The last poll found nothing to send: the stream waits for the registry,
    /// not for its client.
    idle: AtomicBool,
    /// Starting or sending a snapshot: there is more to send whatever the
    /// latest revision.
    busy: AtomicBool,
    /// Every event up to this revision was handed to the connection.
    delivered: AtomicU64,
    /// When a sweep first saw the stream owing events after an idle poll
    /// (milliseconds since the clock base; at or before `last_poll`: not seen).
    owing_since: AtomicU64,
    /// The snapshot being sent, if any.
    pin: Mutex<Option<Arc<Snapshot>>>,
    /// Ended by the sweep.
    reaped: AtomicBool,
    /// Counted in the `watchers` gauge.
    open: AtomicBool,
}

// === impl Slot ===

impl Slot {
    /// Marks a poll.
    pub fn polled(&self, clock: &Clock, found_nothing: bool) {
        self.last_poll.store(clock.now(), Ordering::Relaxed);
        self.idle.store(found_nothing, Ordering::Relaxed);
    }

    pub fn set_delivered(&self, revision: u64) {
        self.delivered.store(revision, Ordering::Relaxed);
    }

    /// Holds `snapshot` while it is being sent (so the sweep can drop it).
    pub fn pin(&self, snapshot: Option<Arc<Snapshot>>) {
        self.busy.store(snapshot.is_some(), Ordering::Relaxed);
        *self.pin.lock() = snapshot;
    }

    pub fn pinned(&self) -> Option<Arc<Snapshot>> {
        self.pin.lock().clone()
    }

    pub fn reaped(&self) -> bool {
        self.reaped.load(Ordering::Acquire)
    }

    /// Leaves the `watchers` gauge; true for the one caller that did.
    pub fn close(&self, metrics: &Metrics) -> bool {
        let was_open = self.open.swap(false, Ordering::AcqRel);
        if was_open {
            metrics.watchers.dec();
        }
        was_open
    }

    fn stalled(&self, now: u64, timeout: u64, head: u64) -> bool {
        let last_poll = self.last_poll.load(Ordering::Relaxed);
        let owes =
            self.busy.load(Ordering::Relaxed) || self.delivered.load(Ordering::Relaxed) < head;
        if !owes {
            return false;
        }
        if !self.idle.load(Ordering::Relaxed) {
            return now.saturating_sub(last_poll) > timeout;
        }
        // Idle at its last poll, yet it owes events: they came after that
        // poll and woke the stream. HTTP/2 may still never poll it (its
        // window filled meanwhile), and then that idle poll is all the sweep
        // would ever see. So count from the first sweep that saw it owing.
        let since = self.owing_since.load(Ordering::Relaxed);
        if since <= last_poll {
            self.owing_since.store(now.max(last_poll + 1), Ordering::Relaxed);
            return false;
        }
        now.saturating_sub(since) > timeout
    }
}

/// Milliseconds on `tokio::time`'s clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Every open watch stream's slot.
#[derive(Debug)]
pub struct Watchers {
    slots: Mutex<Vec<Weak<Slot>>>,
    clock: Clock,
}

// === impl Watchers ===

impl Watchers {
    pub fn new() -> Self {
        Self { slots: Mutex::new(Vec::new()), clock: Clock { base: Instant::now() } }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// A slot for a new stream, counted in the `watchers` gauge.
    pub fn open(&self, metrics: &Metrics) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            last_poll: AtomicU64::new(self.clock.now()),
            idle: AtomicBool::new(false),
            busy: AtomicBool::new(true),
            delivered: AtomicU64::new(0),
            owing_since: AtomicU64::new(0),
            pin: Mutex::new(None),
            reaped: AtomicBool::new(false),
            open: AtomicBool::new(true),
        });
        metrics.watchers.inc();
        self.slots.lock().push(Arc::downgrade(&slot));
        slot
    }

    /// Ends every stream stalled for longer than `timeout`.
    fn sweep(&self, registry: &Registry, timeout: Duration) {
        let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let head = registry.snapshot().revision;
        let now = self.clock.now();
        let mut stalled = Vec::new();
        self.slots.lock().retain(|weak| match weak.upgrade() {
            Some(slot) => {
                if !slot.reaped() && slot.stalled(now, timeout, head) {
                    stalled.push(slot);
                }
                true
            }
            None => false,
        });
        let metrics = registry.metrics();
        for slot in stalled {
            slot.reaped.store(true, Ordering::Release);
            slot.pin(None);
            if slot.close(metrics) {
                metrics.watch_slow_disconnects.inc();
            }
        }
    }
}

/// Sweeps until no watch service or stream is left.
pub async fn run_sweeps(watchers: Weak<Watchers>, registry: Registry) {
    let timeout = registry.config().slow_watcher_timeout;
    let every = (timeout / 4).max(MIN_SWEEP);
    let closing = registry.closing();
    loop {
        tokio::time::sleep(every).await;
        let Some(watchers) = watchers.upgrade() else { return };
        // Closing: a stream whose client stopped reading would hold up the
        // graceful shutdown, so stalls are ended sooner.
        let timeout = if closing.is_cancelled() { timeout.min(CLOSING_STALL) } else { timeout };
        watchers.sweep(&registry, timeout);
    }
}

#[cfg(test)]
mod tests;
