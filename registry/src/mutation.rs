//! Applying mutations to the next snapshot: the body of one group commit.
//!
//! A [`BatchBuilder`] takes the current snapshot, applies every mutation of the
//! batch in order — each gets the next revision and one event — then rewires
//! exactly the agents whose dependencies the batch touched, and hands back the
//! new snapshot, the [`CommitBatch`] to make durable, and the wiring pushes.

mod prepared;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use prost_types::Timestamp;
use switchboard_health::LivenessTracker;
use switchboard_proto::v1::{Agent, AgentStatus, EventType, StatusReason};

use crate::access::{AgentAction, Claim};
use crate::change::{Change, PURGED};
use crate::condition::{to_cause, to_liveness, to_reason, to_status};
use crate::error::{RegistryError, RegistryResult};
use crate::state::{Resolver, Snapshot, Wiring, provided_capabilities};
use crate::store::{CommitBatch, NewEvent, Upsert};

pub use prepared::Registration;

mod replay;

/// A change to the registry, applied by the single writer.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Register or replace an agent (already validated and encoded), for a
    /// claimant that must own the record it replaces.
    Register(Box<Registration>, Claim),
    /// Remove an agent the claimant may remove.
    Deregister(String, Claim),
    /// Replace an agent's labels.
    SetLabels {
        /// The agent.
        agent_id: String,
        /// Its new labels.
        labels: HashMap<String, String>,
        /// Who asks.
        claim: Claim,
    },
}

/// What a mutation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The agent is registered.
    Registered {
        /// Its id (assigned when the request had none).
        agent_id: String,
        /// Revision of the registration (of the existing record when nothing changed).
        revision: u64,
        /// True when the agent was new.
        created: bool,
        /// True when the record changed (always for a new agent; false for a
        /// re-registration that repeats the current one).
        changed: bool,
        /// Its wiring once the batch is applied (filled in by the writer).
        wiring: Arc<Wiring>,
        /// The store epoch.
        epoch: Arc<str>,
    },
    /// The agent was removed at this revision.
    Deregistered {
        /// The agent removed.
        agent_id: String,
        /// Revision of the removal.
        revision: u64,
    },
    /// The labels were replaced (or already equal) at this revision.
    LabelsSet {
        /// Revision of the change.
        revision: u64,
        /// False when they were already equal.
        changed: bool,
    },
}

/// The result of one batch.
pub struct Built {
    /// The snapshot to publish once the batch is durable.
    pub snapshot: Snapshot,
    /// What to make durable.
    pub batch: CommitBatch,
    /// Agents whose wiring changed, to push to their heartbeat streams.
    pub pushes: Vec<(String, Arc<Wiring>)>,
}

/// Builds the next snapshot from a batch of mutations.
pub struct BatchBuilder {
    /// Revision of the snapshot the batch starts from.
    base: u64,
    next: Snapshot,
    now: Timestamp,
    touched: BTreeSet<String>,
    rewire: BTreeSet<String>,
    dirty: BTreeSet<String>,
    events: Vec<NewEvent>,
    /// Agent id → the agent put last in this batch and its encoding, when
    /// it was put from a prepared registration.
    encoded: HashMap<String, (Arc<Agent>, Bytes)>,
    compact_before: Option<u64>,
    max_events: usize,
    oldest_seconds: i64,
}

// === impl BatchBuilder ===

impl BatchBuilder {
    /// Starts a batch on top of `current`.
    pub fn new(current: &Snapshot, max_events: usize, max_age: std::time::Duration) -> Self {
        let now = now_timestamp();
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        Self {
            base: current.revision,
            next: current.clone(),
            oldest_seconds: now.seconds.saturating_sub(max_age),
            now,
            touched: BTreeSet::new(),
            rewire: BTreeSet::new(),
            dirty: BTreeSet::new(),
            events: Vec::new(),
            encoded: HashMap::new(),
            compact_before: None,
            max_events,
        }
    }

    /// True when nothing has changed so far.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Applies one mutation.
    pub fn apply(
        &mut self,
        mutation: Mutation,
        tracker: &mut LivenessTracker<String>,
    ) -> RegistryResult<Outcome> {
        match mutation {
            Mutation::Register(request, claim) => self.register(*request, &claim, tracker),
            Mutation::Deregister(id, claim) => self.deregister(&id, &claim, tracker),
            Mutation::SetLabels { agent_id, labels, claim } => {
                self.set_labels(&agent_id, labels, &claim)
            }
        }
    }

    /// Brings the stored status and cause of `id` in line with the liveness
    /// tracker; purges it when the tracker has forgotten an expired agent.
    pub fn sync_status(&mut self, id: &str, tracker: &mut LivenessTracker<String>) {
        let Some(agent) = self.next.agents.get(id).cloned() else { return };
        let Some(liveness) = tracker.status(&id.to_owned()) else {
            if agent.status() == AgentStatus::Expired {
                if let Some(removed) = self.next.remove_agent(id) {
                    self.dirty.insert(id.to_owned());
                    self.touch(&removed);
                    self.emit(EventType::Removed, removed, PURGED);
                }
            } else {
                // Every stored agent is tracked; re-track rather than lose it.
                tracing::warn!(agent_id = %id, "untracked agent found; tracking it again");
                tracker.restore(
                    id.to_owned(),
                    to_liveness(agent.status()),
                    to_cause(agent.cause()),
                    tokio::time::Instant::now(),
                );
            }
            return;
        };
        let status = to_status(liveness);
        let cause = to_reason(liveness, tracker.cause(&id.to_owned()));
        if agent.status() == status && agent.cause() == cause {
            return;
        }
        let mut changed = (*agent).clone();
        if agent.status() != status {
            changed.status_changed_at = Some(self.now);
        }
        changed.set_condition(status, cause);
        let changed = self.put(changed, None);
        self.touch(&changed);
        self.emit(EventType::StatusChanged, changed, "");
    }

    /// Rewires the touched agents and returns everything to commit and publish.
    pub fn finish(mut self) -> Built {
        let revision = self.next.revision;
        let mut affected = self.next.dependents_of(&self.touched);
        affected.extend(std::mem::take(&mut self.rewire));
        // Every mutation is applied: from here on the agents stand still, so
        // dependents sharing a spec share its resolution.
        let mut resolver = Resolver::default();
        let pushes = affected
            .into_iter()
            .filter_map(|id| self.next.rewire_agent(&id, revision, &mut resolver).map(|w| (id, w)))
            .collect();
        let mut batch = CommitBatch {
            base_revision: self.base,
            revision,
            compact_before: self.compact_before,
            events: std::mem::take(&mut self.events),
            ..CommitBatch::default()
        };
        for id in std::mem::take(&mut self.dirty) {
            match self.next.agents.get(&id) {
                Some(agent) => {
                    let encoded = self.encoded_of(agent);
                    batch.upserts.push(Upsert { agent: agent.clone(), encoded });
                }
                None => batch.deletes.push(id),
            }
        }
        Built { snapshot: self.next, batch, pushes }
    }

    fn register(
        &mut self,
        registration: Registration,
        claim: &Claim,
        tracker: &mut LivenessTracker<String>,
    ) -> RegistryResult<Outcome> {
        let Registration { agent_id, fields, encoded } = registration;
        let id = if agent_id.is_empty() {
            format!("{}-{:08x}", fields.name, rand::random::<u32>())
        } else {
            agent_id
        };
        let existing = self.next.agents.get(&id).cloned();
        if let Some(old) = &existing {
            claim.check(old, AgentAction::Register)?;
        }
        tracker.register(id.clone(), tokio::time::Instant::now());
        let mut agent = Agent {
            id: id.clone(),
            status: AgentStatus::Healthy as i32,
            status_reason: String::new(),
            status_cause: StatusReason::Unspecified as i32,
            registered_at: Some(self.now),
            status_changed_at: Some(self.now),
            owner: claim.owner_for(existing.as_deref()),
            ..fields
        };
        if let Some(old) = &existing {
            if same_registration(old, &agent) && old.status() == AgentStatus::Healthy {
                // Suppress no-op updates: a re-registration after a reconnect
                // changes nothing and must wake nobody.
                return Ok(self.registered(id, old.mod_revision, false, false));
            }
            agent.create_revision = old.create_revision;
            agent.registered_at = old.registered_at;
            if old.status() == AgentStatus::Healthy {
                agent.status_changed_at = old.status_changed_at;
            }
            self.touch(old);
        }
        let agent = self.put(agent, Some(&encoded));
        self.touch(&agent);
        self.rewire.insert(id.clone());
        let kind = if existing.is_some() { EventType::Changed } else { EventType::Added };
        let revision = self.emit(kind, agent, "");
        Ok(self.registered(id, revision, existing.is_none(), true))
    }

    fn registered(&self, agent_id: String, revision: u64, created: bool, changed: bool) -> Outcome {
        let epoch = self.next.epoch.clone();
        let wiring = Arc::default();
        Outcome::Registered { agent_id, revision, created, changed, wiring, epoch }
    }

    fn deregister(
        &mut self,
        id: &str,
        claim: &Claim,
        tracker: &mut LivenessTracker<String>,
    ) -> RegistryResult<Outcome> {
        if let Some(agent) = self.next.agents.get(id) {
            claim.check(agent, AgentAction::Deregister)?;
        }
        let removed = self
            .next
            .remove_agent(id)
            .ok_or_else(|| RegistryError::AgentNotFound(id.to_owned()))?;
        tracker.forget(&id.to_owned());
        self.touch(&removed);
        self.dirty.insert(id.to_owned());
        let revision = self.emit(EventType::Removed, removed, "deregistered");
        Ok(Outcome::Deregistered { agent_id: id.to_owned(), revision })
    }

    fn set_labels(
        &mut self,
        id: &str,
        labels: HashMap<String, String>,
        claim: &Claim,
    ) -> RegistryResult<Outcome> {
        let agent = self
            .next
            .agents
            .get(id)
            .cloned()
            .ok_or_else(|| RegistryError::AgentNotFound(id.to_owned()))?;
        claim.check(&agent, AgentAction::Heartbeat)?;
        if agent.labels == labels {
            return Ok(Outcome::LabelsSet { revision: agent.mod_revision, changed: false });
        }
        let mut changed = (*agent).clone();
        changed.labels = labels;
        let changed = self.put(changed, None);
        let revision = self.emit(EventType::Changed, changed, "");
        Ok(Outcome::LabelsSet { revision, changed: true })
    }

    /// Stamps the agent with the next revision and stores it in the
    /// snapshot; `registered` is the prepared encoding of its registered
    /// fields, when it comes from a registration.
    fn put(&mut self, mut agent: Agent, registered: Option<&[u8]>) -> Arc<Agent> {
        self.next.revision += 1;
        agent.mod_revision = self.next.revision;
        if agent.create_revision == 0 {
            agent.create_revision = self.next.revision;
        }
        let encoded = registered.map(|registered| prepared::encode_with(&mut agent, registered));
        let agent = Arc::new(agent);
        self.dirty.insert(agent.id.clone());
        match encoded {
            Some(encoded) => {
                self.encoded.insert(agent.id.clone(), (agent.clone(), encoded));
            }
            None => {
                self.encoded.remove(&agent.id);
            }
        }
        self.next.put_agent(agent.clone());
        agent
    }

    /// The encoding made for exactly this agent in this batch, if any.
    fn encoded_of(&self, agent: &Arc<Agent>) -> Option<Bytes> {
        let (put, encoded) = self.encoded.get(&agent.id)?;
        Arc::ptr_eq(put, agent).then(|| encoded.clone())
    }

    /// Records an event at the current revision (bumping it for removals,
    /// which have no `put`).
    fn emit(&mut self, kind: EventType, agent: Arc<Agent>, reason: &'static str) -> u64 {
        if kind == EventType::Removed {
            self.next.revision += 1;
        }
        let event = Arc::new(Change {
            kind,
            revision: self.next.revision,
            agent,
            reason,
            time: Some(self.now),
            frame: std::sync::OnceLock::new(),
        });
        if let Some(start) = self.next.record(event.clone(), self.max_events, self.oldest_seconds) {
            self.compact_before = Some(start);
        }
        let agent = self.encoded_of(&event.agent);
        self.events.push(NewEvent { change: event, agent });
        self.next.revision
    }

    fn touch(&mut self, agent: &Agent) {
        self.touched.extend(provided_capabilities(agent).map(str::to_owned));
    }
}

/// True when two records describe the same registration (ignoring status,
/// revisions and times).
fn same_registration(a: &Agent, b: &Agent) -> bool {
    a.name == b.name
        && a.version == b.version
        && a.endpoint == b.endpoint
        && a.labels == b.labels
        && a.tools == b.tools
        && a.resources == b.resources
        && a.resource_templates == b.resource_templates
        && a.prompts == b.prompts
        && a.mcp_capabilities == b.mcp_capabilities
        && a.mcp_server_info == b.mcp_server_info
        && a.owner == b.owner
}

/// The wall clock as a protobuf timestamp.
pub fn now_timestamp() -> Timestamp {
    Timestamp::from(SystemTime::now())
}
