//! Watch filters, and the membership a filtered watcher must track so that
//! an agent that stops matching is reported as removed.
//!
//! A fresh watch knows exactly which agents the client holds (those it sent
//! in the snapshot). A resumed watch does not know the client's view at its
//! revision, so for agents it has not seen yet it is conservative: an event
//! that no longer matches is sent as REMOVED (reason `filter`), which a
//! client holding no such agent simply ignores.

use std::collections::HashSet;

use switchboard_proto::v1::{Agent, AgentStatus, EventType, WatchFilter};
use tonic::Status;

use crate::error::RegistryError;
use crate::validate::filter_name;

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not for this watcher.
    Skip,
    /// Send with this type.
    Send(EventType),
    /// Send as a removal: the agent no longer matches.
    Removed,
}

/// A compiled filter and the ids it has admitted.
pub struct Filter {
    spec: WatchFilter,
    status: AgentStatus,
    /// Ids the client holds; `None` when the filter matches everything.
    holding: Option<HashSet<String>>,
    /// Resumed: ids whose membership the client's view may still have.
    uncertain: bool,
    seen: HashSet<String>,
}

impl Filter {
    /// Checks and compiles a filter.
    pub fn new(spec: WatchFilter) -> Result<Self, Status> {
        for (field, value) in [
            ("filter.capability", &spec.capability),
            ("filter.name", &spec.name),
            ("filter.tag", &spec.tag),
        ] {
            filter_name(field, value)?;
        }
        let status = AgentStatus::try_from(spec.status).map_err(|_| {
            Status::from(RegistryError::invalid(
                "filter.status",
                format!("unknown status {}", spec.status),
            ))
        })?;
        let everything = spec.capability.is_empty()
            && spec.name.is_empty()
            && spec.tag.is_empty()
            && status == AgentStatus::Unspecified;
        let holding = (!everything).then(HashSet::new);
        Ok(Self { spec, status, holding, uncertain: false, seen: HashSet::new() })
    }

    /// True when the agent matches.
    pub fn matches(&self, agent: &Agent) -> bool {
        (self.spec.name.is_empty() || agent.name == self.spec.name)
            && (self.status == AgentStatus::Unspecified || agent.status() == self.status)
            && (self.spec.capability.is_empty()
                || agent.tools.iter().any(|t| t.capability == self.spec.capability))
            && (self.spec.tag.is_empty()
                || agent.tools.iter().any(|t| t.tags.contains(&self.spec.tag)))
    }

    /// The client drops its view (resync): start from an empty holding.
    pub fn forget_all(&mut self) {
        if let Some(holding) = &mut self.holding {
            holding.clear();
        }
        self.uncertain = false;
        self.seen.clear();
    }

    /// The watch resumes from a revision: the client's view is unknown.
    pub fn resume(&mut self) {
        self.uncertain = self.holding.is_some();
    }

    /// Whether a snapshot entry is sent; remembers it.
    pub fn admit_snapshot(&mut self, agent: &Agent) -> bool {
        if self.holding.is_none() {
            return true;
        }
        let admitted = self.matches(agent);
        if let (true, Some(holding)) = (admitted, &mut self.holding) {
            holding.insert(agent.id.clone());
        }
        admitted
    }

    /// Decides how an event reaches this watcher.
    pub fn judge(&mut self, agent: &Agent, kind: EventType) -> Verdict {
        let matches_now = kind != EventType::Removed && self.matches(agent);
        let first_sight = self.uncertain && self.seen.insert(agent.id.clone());
        let Some(holding) = &mut self.holding else { return Verdict::Send(kind) };
        let held = holding.contains(&agent.id);
        match (held, matches_now) {
            (false, true) => {
                holding.insert(agent.id.clone());
                if first_sight { Verdict::Send(kind) } else { Verdict::Send(EventType::Added) }
            }
            (true, true) => Verdict::Send(kind),
            (true, false) => {
                holding.remove(&agent.id);
                if kind == EventType::Removed { Verdict::Send(kind) } else { Verdict::Removed }
            }
            (false, false) if first_sight => {
                if kind == EventType::Removed {
                    Verdict::Send(kind)
                } else {
                    Verdict::Removed
                }
            }
            (false, false) => Verdict::Skip,
        }
    }
}
