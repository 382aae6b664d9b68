//! Resolution shared among the dependents of one change.
//!
//! When a provider of a popular capability joins, every agent depending on it
//! must be rewired, and most of them declare the very same spec. Resolving
//! per dependent made one registration cost O(dependents × providers); a
//! [`Resolver`] resolves each distinct `(capability, version, tags)` once per
//! batch and hands every dependent the same answer.
//!
//! The requester matters to a resolution only when it provides the
//! capability itself (an agent never resolves to its own tool), so only those
//! agents get an entry of their own; every other dependent shares the entry
//! resolved with no requester, which is the same answer.

use std::collections::HashMap;

use switchboard_proto::v1::{Agent, DependencyResolution, DependencySpec};

use super::Snapshot;

/// What a resolution depends on besides the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    capability: String,
    version: String,
    tags: Vec<String>,
    /// The requester, only when it provides the capability itself.
    requester: Option<String>,
}

/// Resolutions computed so far against one snapshot (the agents and their
/// statuses must not change while it is in use; wiring may).
#[derive(Debug, Default)]
pub struct Resolver {
    resolved: HashMap<Key, DependencyResolution>,
}

// === impl Resolver ===

impl Resolver {
    /// Resolves `spec` on behalf of `requester`, or returns the answer an
    /// equivalent request already got.
    pub fn resolve(
        &mut self,
        snapshot: &Snapshot,
        spec: &DependencySpec,
        requester: &Agent,
    ) -> DependencyResolution {
        let provides_it = requester.tools.iter().any(|t| t.capability == spec.capability);
        let requester_id = provides_it.then_some(requester.id.as_str());
        let key = Key {
            capability: spec.capability.clone(),
            version: spec.version.clone(),
            tags: spec.tags.clone(),
            requester: requester_id.map(str::to_owned),
        };
        self.resolved
            .entry(key)
            .or_insert_with(|| snapshot.resolve(spec, requester_id, false))
            .clone()
    }

    /// Distinct resolutions computed so far.
    pub fn computed(&self) -> usize {
        self.resolved.len()
    }
}
