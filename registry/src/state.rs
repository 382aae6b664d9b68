//! The registry's in-memory state as immutable snapshots.
//!
//! The single writer builds the next [`Snapshot`] from the current one (the
//! persistent `imbl` collections make that clone O(1) and share every
//! unchanged agent), commits the batch, then publishes it. Readers — RPCs,
//! watchers, heartbeat streams — load the current snapshot without a lock and
//! never copy it: one shared immutable snapshot and cursors into it, never a
//! copy per client (per-client copies are how control planes run out of memory).
//!
//! Two indexes keep resolution incremental: `providers`
//! (capability → agents offering it) finds candidates without scanning every
//! agent, and `dependents` (capability → agents needing it) finds exactly the
//! agents whose wiring a change can touch.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost::Message as _;

use imbl::{HashMap, OrdMap, OrdSet, Vector};
use switchboard_proto::v1::{
    Agent, AgentStatus, DependencyResolution, DependencySpec, Event, ResolutionUpdate,
    StreamHeartbeatsResponse, Tool, ToolResolution, stream_heartbeats_response,
};

use crate::change::Change;
use crate::resolution;

mod resolver;

pub use resolver::Resolver;

/// The dependency wiring of one agent: every tool's resolution.
///
/// Agents rewired by the same change to the same resolutions share one
/// `Wiring`, and so its encoded push.
#[derive(Debug, Clone, Default)]
pub struct Wiring {
    /// Registry revision at which this wiring last changed.
    pub revision: u64,
    /// Resolution of every tool, in tool order.
    pub tools: Vec<ToolResolution>,
    /// The heartbeat stream's message pushing this wiring, encoded by the
    /// first stream that sends it and sent as is by every other.
    push: OnceLock<Bytes>,
}

/// The whole registry state at one revision.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Store epoch.
    pub epoch: Arc<str>,
    /// Revision of the latest mutation.
    pub revision: u64,
    /// Every event with a revision ≥ this is in `history`; a watcher can
    /// resume from any revision ≥ `history_start - 1`.
    pub history_start: u64,
    /// Agents by id.
    pub agents: OrdMap<String, Arc<Agent>>,
    /// Capability → ids of agents with a tool providing it.
    pub providers: HashMap<String, OrdSet<String>>,
    /// Capability → ids of agents with a dependency on it.
    pub dependents: HashMap<String, OrdSet<String>>,
    /// Agent id → its current wiring.
    pub wiring: HashMap<String, Arc<Wiring>>,
    /// Retained event history, ordered by revision.
    pub history: Vector<Arc<Change>>,
}

// === impl Wiring ===

impl Wiring {
    /// The wiring of `tools` as of `revision`.
    pub fn new(revision: u64, tools: Vec<ToolResolution>) -> Self {
        Self { revision, tools, push: OnceLock::new() }
    }

    /// The encoded `StreamHeartbeatsResponse` carrying this wiring, built
    /// once however many streams send it.
    pub fn encoded_push(&self) -> Bytes {
        self.push
            .get_or_init(|| {
                let update = ResolutionUpdate {
                    resolution_revision: self.revision,
                    resolutions: self.tools.clone(),
                };
                let message = StreamHeartbeatsResponse {
                    message: Some(stream_heartbeats_response::Message::Resolution(update)),
                };
                Bytes::from(message.encode_to_vec())
            })
            .clone()
    }
}

impl PartialEq for Wiring {
    fn eq(&self, other: &Self) -> bool {
        self.revision == other.revision && self.tools == other.tools
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// Builds the startup snapshot from stored agents and history, indexing
    /// and resolving everything once.
    pub fn restore(
        epoch: String,
        revision: u64,
        history_start: u64,
        agents: Vec<Agent>,
        events: Vec<Event>,
    ) -> Self {
        let mut snapshot = Snapshot {
            epoch: epoch.into(),
            revision,
            history_start: history_start.max(1),
            history: events.into_iter().map(|e| Arc::new(Change::from_event(e))).collect(),
            ..Snapshot::default()
        };
        let ids: Vec<String> = agents.iter().map(|a| a.id.clone()).collect();
        for agent in agents {
            snapshot.index(&agent);
            snapshot.agents.insert(agent.id.clone(), Arc::new(agent));
        }
        let mut resolver = Resolver::default();
        for id in ids {
            snapshot.rewire_agent(&id, revision, &mut resolver);
        }
        snapshot
    }

    /// The (agent, tool) pairs offering `capability`, any status.
    pub fn candidates<'a>(
        &'a self,
        capability: &'a str,
    ) -> impl Iterator<Item = (&'a Agent, &'a Tool)> + 'a {
        self.providers
            .get(capability)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.agents.get(id))
            .flat_map(move |agent| {
                agent
                    .tools
                    .iter()
                    .filter(move |t| t.capability == capability)
                    .map(|t| (&**agent, t))
            })
    }

    /// Resolves one spec on behalf of `requester`.
    pub fn resolve(
        &self,
        spec: &DependencySpec,
        requester: Option<&str>,
        explain: bool,
    ) -> DependencyResolution {
        resolution::resolve(spec, self.candidates(&spec.capability), requester, explain)
    }

    /// Inserts or replaces an agent, keeping the indexes right. Returns the
    /// previous record.
    pub fn put_agent(&mut self, agent: Arc<Agent>) -> Option<Arc<Agent>> {
        let previous = self.agents.insert(agent.id.clone(), agent.clone());
        if let Some(old) = &previous {
            self.unindex(old);
        }
        self.index(&agent);
        previous
    }

    /// Removes an agent, its index entries and its wiring.
    pub fn remove_agent(&mut self, id: &str) -> Option<Arc<Agent>> {
        let removed = self.agents.remove(id)?;
        self.unindex(&removed);
        self.wiring.remove(id);
        Some(removed)
    }

    /// Recomputes the wiring of `id`; returns it when it changed. `resolver`
    /// must only have seen this snapshot's agents as they are now.
    pub fn rewire_agent(
        &mut self,
        id: &str,
        revision: u64,
        resolver: &mut Resolver,
    ) -> Option<Arc<Wiring>> {
        let agent = self.agents.get(id)?.clone();
        let wiring = resolver.wiring(self, &agent, revision, self.wiring.get(id))?;
        self.wiring.insert(id.to_owned(), wiring.clone());
        Some(wiring)
    }

    /// Ids of agents whose wiring may depend on any of `capabilities`.
    pub fn dependents_of(&self, capabilities: &BTreeSet<String>) -> BTreeSet<String> {
        capabilities
            .iter()
            .filter_map(|c| self.dependents.get(c))
            .flat_map(|ids| ids.iter().cloned())
            .collect()
    }

    /// Appends an event and compacts the history by count and age. Returns
    /// the new `history_start` when compaction dropped something.
    pub fn record(
        &mut self,
        event: Arc<Change>,
        max_events: usize,
        oldest_seconds: i64,
    ) -> Option<u64> {
        self.history.push_back(event);
        let mut compacted = false;
        while let Some(front) = self.history.front() {
            let too_old = front.time.as_ref().is_some_and(|t| t.seconds < oldest_seconds);
            if self.history.len() <= max_events && !too_old {
                break;
            }
            self.history_start = front.revision + 1;
            self.history.pop_front();
            compacted = true;
        }
        compacted.then_some(self.history_start)
    }

    /// Number of agents with each status: (healthy, degraded, expired).
    pub fn status_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for agent in self.agents.values() {
            match agent.status() {
                AgentStatus::Healthy => counts.0 += 1,
                AgentStatus::Degraded => counts.1 += 1,
                AgentStatus::Expired | AgentStatus::Unspecified => counts.2 += 1,
            }
        }
        counts
    }

    fn index(&mut self, agent: &Agent) {
        for tool in &agent.tools {
            if !tool.capability.is_empty() {
                self.providers.entry(tool.capability.clone()).or_default().insert(agent.id.clone());
            }
            for spec in &tool.dependencies {
                self.dependents
                    .entry(spec.capability.clone())
                    .or_default()
                    .insert(agent.id.clone());
            }
        }
    }

    fn unindex(&mut self, agent: &Agent) {
        for tool in &agent.tools {
            remove_from_index(&mut self.providers, &tool.capability, &agent.id);
            for spec in &tool.dependencies {
                remove_from_index(&mut self.dependents, &spec.capability, &agent.id);
            }
        }
    }
}

fn remove_from_index(index: &mut HashMap<String, OrdSet<String>>, key: &str, id: &str) {
    let now_empty = match index.get_mut(key) {
        Some(ids) => {
            ids.remove(id);
            ids.is_empty()
        }
        None => false,
    };
    if now_empty {
        index.remove(key);
    }
}

/// Capabilities an agent provides.
pub fn provided_capabilities(agent: &Agent) -> impl Iterator<Item = &str> {
    agent.tools.iter().map(|t| t.capability.as_str()).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests;
