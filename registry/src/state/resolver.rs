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
//!
//! Dependents whose tools have the same names and resolve to the same entries
//! also share one [`Wiring`]: one allocation, one comparison with each
//! distinct previous wiring, and one encoded push that every one of their
//! heartbeat streams sends as it is. So a change that rewires a thousand
//! dependents of one spec builds, compares and encodes one wiring, not a
//! thousand.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_proto::v1::{Agent, DependencyResolution, DependencySpec, ToolResolution};

use super::{Snapshot, Wiring};

/// What a resolution depends on besides the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    capability: String,
    version: String,
    tags: Vec<String>,
    /// The requester, only when it provides the capability itself.
    requester: Option<String>,
}

/// An agent's wiring as tool names and the resolutions (indexes into
/// `Resolver::resolved`) of each tool's dependencies.
type Shape = Vec<(String, Vec<usize>)>;

/// One wiring built in this batch, shared by every agent of its shape.
#[derive(Debug)]
struct SharedWiring {
    wiring: Arc<Wiring>,
    /// Previous wirings already compared with it, and whether they were
    /// equal. Holding the `Arc` keeps its address from being reused.
    compared: Vec<(Arc<Wiring>, bool)>,
}

/// Resolutions computed so far against one snapshot (the agents and their
/// statuses must not change while it is in use; wiring may).
#[derive(Debug, Default)]
pub struct Resolver {
    keys: HashMap<Key, usize>,
    resolved: Vec<DependencyResolution>,
    wirings: HashMap<Shape, SharedWiring>,
}

// === impl Resolver ===

impl Resolver {
    /// The wiring `agent` gets at `revision`, or `None` when it equals
    /// `previous`. Agents of the same shape get the same `Arc`.
    pub fn wiring(
        &mut self,
        snapshot: &Snapshot,
        agent: &Agent,
        revision: u64,
        previous: Option<&Arc<Wiring>>,
    ) -> Option<Arc<Wiring>> {
        let shape: Shape = agent
            .tools
            .iter()
            .map(|tool| {
                let dependencies = tool
                    .dependencies
                    .iter()
                    .map(|spec| self.resolve_index(snapshot, spec, agent))
                    .collect();
                (tool.name.clone(), dependencies)
            })
            .collect();
        let resolved = &self.resolved;
        let shared = self.wirings.entry(shape).or_insert_with_key(|shape| {
            let tools = shape
                .iter()
                .map(|(name, dependencies)| ToolResolution {
                    tool_name: name.clone(),
                    dependencies: dependencies.iter().map(|&at| resolved[at].clone()).collect(),
                })
                .collect();
            SharedWiring { wiring: Arc::new(Wiring::new(revision, tools)), compared: Vec::new() }
        });
        if let Some(previous) = previous {
            let known = shared.compared.iter().find(|(old, _)| Arc::ptr_eq(old, previous));
            let equal = match known {
                Some((_, equal)) => *equal,
                None => {
                    let equal = previous.tools == shared.wiring.tools;
                    shared.compared.push((previous.clone(), equal));
                    equal
                }
            };
            if equal {
                return None;
            }
        }
        Some(shared.wiring.clone())
    }

    /// Distinct resolutions computed so far.
    pub fn computed(&self) -> usize {
        self.resolved.len()
    }

    /// Resolves `spec` on behalf of `requester` unless an equivalent
    /// request already was; returns where the answer is.
    fn resolve_index(
        &mut self,
        snapshot: &Snapshot,
        spec: &DependencySpec,
        requester: &Agent,
    ) -> usize {
        let provides_it = requester.tools.iter().any(|t| t.capability == spec.capability);
        let requester_id = provides_it.then_some(requester.id.as_str());
        let key = Key {
            capability: spec.capability.clone(),
            version: spec.version.clone(),
            tags: spec.tags.clone(),
            requester: requester_id.map(str::to_owned),
        };
        let resolved = &mut self.resolved;
        *self.keys.entry(key).or_insert_with(|| {
            resolved.push(snapshot.resolve(spec, requester_id, false));
            resolved.len() - 1
        })
    }
}
