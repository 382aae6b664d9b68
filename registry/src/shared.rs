//! The state the registry handle, the writer and the liveness driver share.
//!
//! It lives apart from all three so that none of them depends on another:
//! the handle sends mutations to the writer and reads snapshots, the writer
//! publishes snapshots and wiring, the driver hands liveness transitions to
//! the writer — each only through this struct.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use switchboard_health::LivenessTracker;
use switchboard_telemetry::audit::AuditLog;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::RegistryConfig;
use crate::metrics::Metrics;
use crate::state::{Snapshot, Wiring};
use crate::streams::Streams;

/// State shared by the handle, the writer and the liveness driver.
pub(crate) struct Shared {
    pub config: RegistryConfig,
    pub snapshot: ArcSwap<Snapshot>,
    /// The revision of the latest published snapshot; watchers wait on it
    /// and read the events themselves from the snapshot's history.
    pub published: watch::Sender<u64>,
    /// Liveness of every agent: status, cause, deadlines. Heartbeats touch
    /// only this.
    pub liveness: Mutex<LivenessTracker<String>>,
    /// Wakes the liveness driver when a deadline may have moved earlier.
    pub liveness_changed: Notify,
    /// Agent ids whose stored status may differ from the tracker's.
    pub dirty_status: Mutex<BTreeSet<String>>,
    /// Wakes the writer when `dirty_status` gained an id.
    pub status_changed: Notify,
    /// Agent id → wiring channel of its heartbeat streams.
    pub mailboxes: Mutex<HashMap<String, watch::Sender<Arc<Wiring>>>>,
    /// Open heartbeat streams, by agent.
    pub streams: Mutex<Streams>,
    pub metrics: Metrics,
    /// Where control-plane changes are recorded.
    pub audit: AuditLog,
    /// Cancelled when the registry starts shutting down.
    pub closing: CancellationToken,
    /// Whether the store can take writes, for stores that can lose their
    /// backing service (see `Store::reachable`).
    pub store_reachable: Option<watch::Receiver<bool>>,
    /// This registry's id among the replicas of a shared store.
    pub replica: Option<String>,
    /// Claims of agents this replica owns, for a shared store (see
    /// `Store::claims`).
    pub claims: Option<Arc<crate::store::Claims>>,
    /// Agent id → the replica that owns it, as the store last said (shared
    /// stores only): an agent missing here is tracked by the sweeper alone.
    pub owners: Mutex<HashMap<String, String>>,
    /// Tokens, for those other replicas store (see `Store::feed`); set
    /// once at start.
    pub access: Option<Arc<crate::access::Access>>,
    /// Whether this replica tracks the agents no replica owns: always for a
    /// store it writes alone, only while elected sweeper for a shared one.
    pub sweeper: AtomicBool,
}

// === impl Shared ===

impl Shared {
    /// A registry's shared state around its first snapshot and tracker.
    pub fn new(
        config: RegistryConfig,
        snapshot: Snapshot,
        tracker: LivenessTracker<String>,
        store_reachable: Option<watch::Receiver<bool>>,
        audit: AuditLog,
    ) -> Self {
        let published = watch::Sender::new(snapshot.revision);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            published,
            liveness: Mutex::new(tracker),
            liveness_changed: Notify::new(),
            dirty_status: Mutex::new(BTreeSet::new()),
            status_changed: Notify::new(),
            mailboxes: Mutex::new(HashMap::new()),
            streams: Mutex::new(Streams::default()),
            metrics: Metrics::new(),
            audit,
            closing: CancellationToken::new(),
            store_reachable,
            replica: None,
            claims: None,
            owners: Mutex::new(HashMap::new()),
            access: None,
            sweeper: AtomicBool::new(true),
            config,
        }
    }

    /// Records that this replica owns `agent_id` (shared stores only).
    pub fn claim(&self, agent_id: &str) {
        if let Some(claims) = &self.claims {
            claims.add(agent_id);
        }
    }

    /// Whether this replica tracks agents no replica owns (see `sweeper`).
    pub fn is_sweeper(&self) -> bool {
        self.sweeper.load(Ordering::Acquire)
    }

    /// Asks the writer to bring the stored status of these agents in line
    /// with the tracker.
    pub fn mark_dirty(&self, agent_ids: impl IntoIterator<Item = String>) {
        self.dirty_status.lock().extend(agent_ids);
        self.status_changed.notify_one();
    }
}
