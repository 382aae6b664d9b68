//! The registry core: the shared state every service reads, and the handle
//! through which they change it.
//!
//! Writes go through one writer task (see `writer`): it batches whatever
//! mutations are waiting, applies them to a new snapshot, makes the batch
//! durable with one flush (group commit), and only then publishes the
//! snapshot, the events to watchers and the wiring to heartbeat streams.
//! So nothing anyone observes can be lost by a crash.
//!
//! Liveness lives in memory (`switchboard_health::LivenessTracker`): a
//! heartbeat only touches the tracker. When the tracker's view of an agent
//! changes, the agent id is marked dirty and the writer records the new
//! status as a mutation.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use switchboard_health::{LivenessTracker, Status as Liveness};
use switchboard_proto::v1::RegisterAgentRequest;
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::change::Change;
use crate::config::RegistryConfig;
use crate::error::{RegistryError, RegistryResult};
use crate::metrics::Metrics;
use crate::mutation::{Mutation, Outcome, to_liveness};
use crate::state::{Snapshot, Wiring};
use crate::store::Store;
use crate::validate;
use crate::writer::{self, Command};

/// A cheap, cloneable handle to a running registry.
#[derive(Clone)]
pub struct Registry {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

/// State shared by the handle, the writer and the liveness driver.
pub(crate) struct Shared {
    pub config: RegistryConfig,
    pub snapshot: ArcSwap<Snapshot>,
    pub events: broadcast::Sender<Arc<Change>>,
    pub liveness: Mutex<LivenessTracker<String>>,
    /// Wakes the liveness driver when a deadline may have moved earlier.
    pub liveness_changed: Notify,
    /// Agent ids whose stored status may differ from the tracker's.
    pub dirty_status: Mutex<BTreeSet<String>>,
    /// Wakes the writer when `dirty_status` gained an id.
    pub status_changed: Notify,
    /// Agent id → wiring channel of its heartbeat streams.
    pub mailboxes: Mutex<HashMap<String, watch::Sender<Arc<Wiring>>>>,
    /// Agent id → id of its current heartbeat stream.
    pub streams: Mutex<HashMap<String, u64>>,
    /// Agents whose heartbeat stream broke and who have not heartbeated since.
    pub connection_lost: Mutex<std::collections::HashSet<String>>,
    pub next_stream_id: AtomicU64,
    pub metrics: Metrics,
    /// Cancelled when the registry starts shutting down.
    pub closing: CancellationToken,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// The registry does not know the agent: it must register again.
    Unknown,
    /// The agent is alive with this status.
    Alive(Liveness),
}

/// A finished registration.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The agent's id.
    pub agent_id: String,
    /// Revision of the registration.
    pub revision: u64,
    /// True when the agent was new.
    pub created: bool,
    /// Its wiring right after the registration.
    pub wiring: Arc<Wiring>,
    /// The snapshot the answer comes from.
    pub snapshot: Arc<Snapshot>,
}

/// Background tasks of a registry; stop them with [`RegistryTasks::shutdown`].
pub struct RegistryTasks {
    closing: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
    driver: tokio::task::JoinHandle<()>,
}

// === impl Registry ===

impl Registry {
    /// Loads the store and starts the writer and the liveness driver.
    pub async fn start(
        config: RegistryConfig,
        store: Arc<dyn Store>,
    ) -> RegistryResult<(Registry, RegistryTasks)> {
        config.validate().map_err(|e| RegistryError::invalid("config", e))?;
        let loaded = store.load().await?;
        let now = Instant::now();
        let mut tracker = LivenessTracker::new(config.liveness.clone(), now);
        for agent in &loaded.agents {
            // Restart grace: every stored agent starts a fresh expiry window.
            tracker.restore(agent.id.clone(), to_liveness(agent.status()), now);
        }
        let snapshot = Snapshot::restore(
            loaded.epoch,
            loaded.revision,
            loaded.compact_revision,
            loaded.agents,
            loaded.events,
        );
        tracing::info!(
            epoch = %snapshot.epoch,
            revision = snapshot.revision,
            agents = snapshot.agents.len(),
            "registry state loaded"
        );
        let (events, _) = broadcast::channel(config.watch_buffer);
        let (commands, inbox) = mpsc::channel(config.max_batch * 4);
        let closing = CancellationToken::new();
        let metrics = Metrics::new();
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            events,
            liveness: Mutex::new(tracker),
            liveness_changed: Notify::new(),
            dirty_status: Mutex::new(BTreeSet::new()),
            status_changed: Notify::new(),
            mailboxes: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            connection_lost: Mutex::new(std::collections::HashSet::new()),
            next_stream_id: AtomicU64::new(1),
            metrics,
            closing: closing.clone(),
            config,
        });
        let writer = tokio::spawn(writer::run(shared.clone(), store, inbox));
        let driver = tokio::spawn(crate::liveness_driver::run(shared.clone()));
        Ok((Registry { shared, commands }, RegistryTasks { closing, writer, driver }))
    }

    /// The configuration in force.
    pub fn config(&self) -> &RegistryConfig {
        &self.shared.config
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Metrics of this registry.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Prometheus text of every metric. Gauges derived from the state (agents
    /// by status, revision) are computed here, per scrape, rather than on
    /// every commit: counting statuses walks every agent.
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.observe_snapshot(&self.snapshot());
        self.shared.metrics.render()
    }

    /// Cancelled when the registry starts shutting down.
    pub fn closing(&self) -> CancellationToken {
        self.shared.closing.clone()
    }

    /// Validates and durably registers an agent.
    pub async fn register(&self, request: RegisterAgentRequest) -> RegistryResult<Registered> {
        validate::registration(&request, &self.shared.config.limits)?;
        let Outcome::Registered { agent_id, revision, created } =
            self.mutate(Mutation::Register(Box::new(request))).await?
        else {
            return Err(RegistryError::ShuttingDown);
        };
        self.shared.liveness_changed.notify_one();
        self.shared.connection_lost.lock().remove(&agent_id);
        self.shared.metrics.registrations.inc();
        let snapshot = self.snapshot();
        let wiring = snapshot.wiring.get(&agent_id).cloned().unwrap_or_default();
        Ok(Registered { agent_id, revision, created, wiring, snapshot })
    }

    /// Durably removes an agent.
    pub async fn deregister(&self, agent_id: &str) -> RegistryResult<u64> {
        validate::agent_id("agent_id", agent_id)?;
        match self.mutate(Mutation::Deregister(agent_id.to_owned())).await? {
            Outcome::Deregistered { revision } => {
                self.shared.mailboxes.lock().remove(agent_id);
                self.shared.connection_lost.lock().remove(agent_id);
                Ok(revision)
            }
            _ => Err(RegistryError::ShuttingDown),
        }
    }

    /// Durably replaces an agent's labels.
    pub async fn set_labels(
        &self,
        agent_id: &str,
        labels: HashMap<String, String>,
    ) -> RegistryResult<u64> {
        let limits = &self.shared.config.limits;
        if labels.len() > limits.max_labels {
            return Err(RegistryError::invalid("labels", "too many labels"));
        }
        match self.mutate(Mutation::SetLabels { agent_id: agent_id.to_owned(), labels }).await? {
            Outcome::LabelsSet { revision } => Ok(revision),
            _ => Err(RegistryError::ShuttingDown),
        }
    }

    /// Records a heartbeat. Touches memory only; a status change it causes is
    /// written by the writer.
    pub fn heartbeat(&self, agent_id: &str) -> HeartbeatOutcome {
        let key = agent_id.to_owned();
        let outcome = {
            let mut tracker = self.shared.liveness.lock();
            if !tracker.is_tracked(&key) {
                return HeartbeatOutcome::Unknown;
            }
            let transition = tracker.heartbeat(&key, Instant::now());
            (transition.is_some(), tracker.status(&key))
        };
        self.shared.metrics.heartbeats.inc();
        match outcome {
            (changed, Some(status)) => {
                // A broken stream always leaves the agent DEGRADED, so only a
                // heartbeat that revives it can end a lost connection: the
                // common heartbeat takes no lock but the tracker's.
                if changed {
                    self.shared.connection_lost.lock().remove(agent_id);
                    self.mark_dirty(key);
                }
                HeartbeatOutcome::Alive(status)
            }
            (_, None) => HeartbeatOutcome::Unknown,
        }
    }

    /// When the registry last heard from the agent (wall clock).
    pub fn last_heartbeat(&self, agent_id: &str) -> Option<std::time::SystemTime> {
        let at = self.shared.liveness.lock().last_heartbeat(&agent_id.to_owned())?;
        std::time::SystemTime::now().checked_sub(Instant::now().saturating_duration_since(at))
    }

    /// Binds a new heartbeat stream to an agent; returns its stream id.
    pub fn stream_opened(&self, agent_id: &str) -> u64 {
        let id = self.shared.next_stream_id.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.shared.streams.lock();
        streams.insert(agent_id.to_owned(), id);
        self.shared.metrics.streams.set(streams.len() as i64);
        id
    }

    /// A heartbeat stream ended without a deregister: unless a newer stream
    /// took over, the agent is DEGRADED at once.
    pub fn stream_closed(&self, agent_id: &str, stream_id: u64) {
        {
            let mut streams = self.shared.streams.lock();
            if streams.get(agent_id) != Some(&stream_id) {
                return;
            }
            streams.remove(agent_id);
            self.shared.metrics.streams.set(streams.len() as i64);
        }
        if self.shared.closing.is_cancelled() {
            return;
        }
        let key = agent_id.to_owned();
        if !self.shared.liveness.lock().is_tracked(&key) {
            return; // deregistered before its stream ended
        }
        self.shared.liveness.lock().connection_lost(&key, Instant::now());
        self.shared.connection_lost.lock().insert(key.clone());
        tracing::info!(agent_id, "heartbeat stream broke: agent degraded");
        self.mark_dirty(key);
        self.shared.liveness_changed.notify_one();
    }

    /// The wiring channel of an agent's heartbeat streams (None if unknown).
    pub fn subscribe_wiring(&self, agent_id: &str) -> Option<watch::Receiver<Arc<Wiring>>> {
        // Read the wiring under the mailbox lock: the writer publishes a
        // snapshot before it takes this lock to push, so either we read its
        // wiring or its push finds our mailbox. Reading before locking could
        // miss both and leave the stream on a stale wiring.
        let mut mailboxes = self.shared.mailboxes.lock();
        let current = self.snapshot().wiring.get(agent_id).cloned()?;
        let sender = mailboxes
            .entry(agent_id.to_owned())
            .or_insert_with(|| watch::channel(current.clone()).0);
        Some(sender.subscribe())
    }

    /// Live events, published once durable.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<Change>> {
        self.shared.events.subscribe()
    }

    fn mark_dirty(&self, agent_id: String) {
        self.shared.dirty_status.lock().insert(agent_id);
        self.shared.status_changed.notify_one();
    }

    async fn mutate(&self, mutation: Mutation) -> RegistryResult<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command { mutation, reply })
            .await
            .map_err(|_| RegistryError::ShuttingDown)?;
        answer.await.map_err(|_| RegistryError::ShuttingDown)?
    }
}

// === impl RegistryTasks ===

impl RegistryTasks {
    /// Stops the liveness driver, lets the writer commit what is queued, and
    /// waits for both.
    pub async fn shutdown(self) {
        self.closing.cancel();
        if let Err(error) = self.driver.await {
            tracing::error!(%error, "liveness driver failed");
        }
        if let Err(error) = self.writer.await {
            tracing::error!(%error, "writer failed");
        }
    }
}
