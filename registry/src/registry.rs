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

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_health::{LivenessTracker, Status as Liveness};
use switchboard_proto::v1::RegisterAgentRequest;
use switchboard_telemetry::audit::AuditLog;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::access::{Access, Claim};
use crate::condition::{to_cause, to_liveness};
use crate::config::RegistryConfig;
use crate::error::{RegistryError, RegistryResult};
use crate::metrics::Metrics;
use crate::mutation::{Mutation, Outcome, Registration};
use crate::shared::Shared;
use crate::state::{Snapshot, Wiring};
use crate::store::Store;
use crate::streams::Closed;
use crate::validate;
use crate::writer::{self, Command};

mod consistent;

/// A cheap, cloneable handle to a running registry.
#[derive(Clone)]
pub struct Registry {
    pub(crate) shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    access: Arc<Access>,
    /// The store, for the reads that must ask it (see `consistent`). Weak:
    /// the writer owns it, and a handle kept somewhere after the registry
    /// stopped must not keep it open (sled's lock on its directory).
    store: std::sync::Weak<dyn Store>,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// The registry does not know the agent: it must register again.
    Unknown,
    /// The agent is alive with this status.
    Alive(Liveness),
}

/// What an agent's heartbeat says about the agent itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReadiness {
    /// Ready (also what a heartbeat without a verdict means).
    Ready,
    /// Not ready: these of its health checks fail.
    NotReady {
        /// Names of the failing checks.
        failing: Vec<String>,
    },
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
    /// True when the record changed: always for a new agent, false for a
    /// re-registration that repeats the current one.
    pub changed: bool,
    /// Its wiring right after the registration.
    pub wiring: Arc<Wiring>,
    /// The store epoch the revision belongs to.
    pub epoch: Arc<str>,
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
        let mut config = config;
        if let Some(max) = store.max_agent_bytes() {
            config.limits.max_agent_bytes = config.limits.max_agent_bytes.min(max);
        }
        let audit = AuditLog::open(&config.audit_log)
            .map_err(|e| RegistryError::invalid("audit_log", e.to_string()))?;
        let loaded = store.load().await?;
        // Right after the load: the feed starts where the load ended.
        let feed = crate::feed::Feed::new(store.feed());
        let access = Arc::new(Access::load(&config.auth, store.clone()).await?);
        let now = Instant::now();
        let mut tracker = LivenessTracker::new(config.liveness.clone(), now);
        let replica = store.replica();
        let sweeper = store.sweeper();
        for agent in &loaded.agents {
            if loaded.owners.contains_key(&agent.id) {
                // Another replica holds its stream and tracks it; if that
                // replica stops, the feed says so and this one takes over.
                continue;
            }
            if sweeper.is_some() {
                // Nobody owns it: the elected sweeper tracks it, once it
                // knows it is the sweeper.
                continue;
            }
            // Restart grace: every stored agent starts a fresh expiry window.
            let status = to_liveness(agent.status());
            tracker.restore(agent.id.clone(), status, to_cause(agent.cause()), now);
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
        let (commands, inbox) = mpsc::channel(config.max_batch * 4);
        let mut shared = Shared::new(config, snapshot, tracker, store.reachable(), audit);
        shared.replica = replica;
        shared.claims = store.claims();
        shared.access = Some(access.clone());
        *shared.owners.get_mut() = loaded.owners;
        // A shared store's replica tracks unowned agents once elected.
        *shared.sweeper.get_mut() = sweeper.is_none();
        shared.metrics.sweeper.set(i64::from(sweeper.is_none()));
        let shared = Arc::new(shared);
        let closing = shared.closing.clone();
        if let Some(elected) = sweeper {
            tokio::spawn(crate::liveness_driver::follow_sweeper(shared.clone(), elected));
        }
        let weak_store = Arc::downgrade(&store);
        let writer = tokio::spawn(writer::run(shared.clone(), store, inbox, feed));
        let driver = tokio::spawn(crate::liveness_driver::run(shared.clone()));
        let registry = Registry { shared, commands, access, store: weak_store };
        Ok((registry, RegistryTasks { closing, writer, driver }))
    }

    /// Authentication and tokens.
    pub fn access(&self) -> &Access {
        &self.access
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

    /// Whether the store can take writes now (`None`: a store that cannot
    /// lose its backing service, such as sled). While it is false the
    /// registry reports not ready.
    pub fn store_reachable(&self) -> Option<watch::Receiver<bool>> {
        self.shared.store_reachable.clone()
    }

    /// Validates and durably registers an agent (with no owner: as a
    /// caller does while auth is off).
    pub async fn register(&self, request: RegisterAgentRequest) -> RegistryResult<Registered> {
        self.register_as(request, Claim::anonymous()).await
    }

    /// Validates and durably registers an agent for `claim`, which must
    /// own the record it replaces (checked by the writer, atomically).
    pub async fn register_as(
        &self,
        request: RegisterAgentRequest,
        claim: Claim,
    ) -> RegistryResult<Registered> {
        validate::registration(&request, &self.shared.config.limits)?;
        // Encoded here, in the caller's task: the single writer only adds
        // the fields it decides.
        let registration = Registration::new(request);
        match self.mutate(Mutation::Register(Box::new(registration), claim)).await? {
            Outcome::Registered { agent_id, revision, created, changed, wiring, epoch } => {
                Ok(Registered { agent_id, revision, created, changed, wiring, epoch })
            }
            _ => Err(RegistryError::ShuttingDown),
        }
    }

    /// Durably removes an agent.
    pub async fn deregister(&self, agent_id: &str) -> RegistryResult<u64> {
        self.deregister_as(agent_id, Claim::anonymous()).await
    }

    /// Durably removes an agent that `claim` may remove.
    pub async fn deregister_as(&self, agent_id: &str, claim: Claim) -> RegistryResult<u64> {
        validate::agent_id("agent_id", agent_id)?;
        match self.mutate(Mutation::Deregister(agent_id.to_owned(), claim)).await? {
            Outcome::Deregistered { revision, .. } => Ok(revision),
            _ => Err(RegistryError::ShuttingDown),
        }
    }

    /// Durably replaces an agent's labels.
    pub async fn set_labels(
        &self,
        agent_id: &str,
        labels: HashMap<String, String>,
    ) -> RegistryResult<u64> {
        self.set_labels_as(agent_id, labels, Claim::anonymous()).await.map(|(revision, _)| revision)
    }

    /// Durably replaces the labels of an agent that `claim` may change,
    /// also saying whether they changed.
    pub async fn set_labels_as(
        &self,
        agent_id: &str,
        labels: HashMap<String, String>,
        claim: Claim,
    ) -> RegistryResult<(u64, bool)> {
        let limits = &self.shared.config.limits;
        if labels.len() > limits.max_labels {
            return Err(RegistryError::invalid("labels", "too many labels"));
        }
        match self
            .mutate(Mutation::SetLabels { agent_id: agent_id.to_owned(), labels, claim })
            .await?
        {
            Outcome::LabelsSet { revision, changed } => Ok((revision, changed)),
            _ => Err(RegistryError::ShuttingDown),
        }
    }

    /// The audit log every control-plane change is recorded in.
    pub(crate) fn audit(&self) -> &AuditLog {
        &self.shared.audit
    }

    /// Records a heartbeat of a ready agent. Touches memory only; a status
    /// change it causes is written by the writer.
    pub fn heartbeat(&self, agent_id: &str) -> HeartbeatOutcome {
        self.heartbeat_with(agent_id, &AgentReadiness::Ready)
    }

    /// Records a heartbeat with the agent's own verdict on itself: one that
    /// says it is not ready makes it DEGRADED ("agent reports unhealthy")
    /// until one says it is. Only the change is written, never a heartbeat.
    pub fn heartbeat_with(&self, agent_id: &str, health: &AgentReadiness) -> HeartbeatOutcome {
        let key = agent_id.to_owned();
        let ready = matches!(health, AgentReadiness::Ready);
        let outcome = {
            let mut tracker = self.shared.liveness.lock();
            if !tracker.is_tracked(&key) && !self.adopt(&key, &mut tracker) {
                return HeartbeatOutcome::Unknown;
            }
            let transition = tracker.heartbeat_with(&key, Instant::now(), ready);
            (transition, tracker.status(&key))
        };
        self.shared.metrics.heartbeats.inc();
        match outcome {
            (transition, Some(status)) => {
                if let Some(transition) = transition {
                    if let AgentReadiness::NotReady { failing: checks } = health {
                        tracing::info!(agent_id, ?checks, change = ?transition.change, "agent reports unhealthy");
                    } else {
                        tracing::info!(agent_id, change = ?transition.change, "agent status changed on heartbeat");
                    }
                    self.shared.metrics.transitions.inc();
                    self.shared.mark_dirty([key]);
                    // Its deadline may have moved earlier than the one the
                    // driver sleeps towards.
                    self.shared.liveness_changed.notify_one();
                }
                HeartbeatOutcome::Alive(status)
            }
            (_, None) => HeartbeatOutcome::Unknown,
        }
    }

    /// Starts tracking an agent of a shared store that another replica
    /// owned, or nobody yet (its owner stopped, and no sweeper adopted it
    /// so far), when it heartbeats here: the replica an agent talks to owns
    /// it, at once, rather than telling it to register again while the
    /// ownership record catches up. An EXPIRED or unknown agent is not
    /// adopted (it must register again, as on one registry).
    fn adopt(&self, agent_id: &String, tracker: &mut LivenessTracker<String>) -> bool {
        if self.shared.claims.is_none() {
            return false;
        }
        let snapshot = self.shared.snapshot.load();
        let Some(agent) = snapshot.agents.get(agent_id) else { return false };
        let status = to_liveness(agent.status());
        if status == Liveness::Expired {
            return false;
        }
        tracker.restore(agent_id.clone(), status, to_cause(agent.cause()), Instant::now());
        self.shared.claim(agent_id);
        self.shared.liveness_changed.notify_one();
        true
    }

    /// Whether this registry tracks the agent's liveness (and so may
    /// expire it): the owner of its stream, or the sweeper when no replica
    /// owns it.
    pub fn tracks(&self, agent_id: &str) -> bool {
        self.shared.liveness.lock().is_tracked(&agent_id.to_owned())
    }

    /// When the registry last heard from the agent (wall clock).
    pub fn last_heartbeat(&self, agent_id: &str) -> Option<std::time::SystemTime> {
        let at = self.shared.liveness.lock().last_heartbeat(&agent_id.to_owned())?;
        std::time::SystemTime::now().checked_sub(Instant::now().saturating_duration_since(at))
    }

    /// Binds a heartbeat stream to an agent: a new one (`None`), or one that
    /// is re-bound after the agent registered again on it. Returns its id.
    pub fn stream_opened(&self, agent_id: &str, existing: Option<u64>) -> u64 {
        let mut streams = self.shared.streams.lock();
        let id = streams.open(agent_id, existing);
        self.shared.metrics.streams.set(streams.len() as i64);
        drop(streams);
        // The replica holding the stream owns the agent's liveness.
        self.shared.claim(agent_id);
        id
    }

    /// A heartbeat stream ended without a deregister: once the agent's last
    /// open stream has ended, it is DEGRADED at once (stream broke).
    pub fn stream_closed(&self, agent_id: &str, stream_id: u64) {
        let closed = {
            let mut streams = self.shared.streams.lock();
            let closed = streams.close(agent_id, stream_id);
            self.shared.metrics.streams.set(streams.len() as i64);
            closed
        };
        if closed != Closed::Last || self.shared.closing.is_cancelled() {
            return;
        }
        let key = agent_id.to_owned();
        // Unknown to the tracker: deregistered before its stream ended.
        let Some(transition) = self.shared.liveness.lock().connection_lost(&key, Instant::now())
        else {
            return;
        };
        tracing::info!(agent_id, change = ?transition.change, "heartbeat stream broke: agent degraded");
        self.shared.metrics.transitions.inc();
        self.shared.mark_dirty([key]);
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

    /// The revision of the latest published snapshot, changing each time
    /// the writer publishes one (its events are then in its history).
    pub fn subscribe_revisions(&self) -> watch::Receiver<u64> {
        self.shared.published.subscribe()
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
