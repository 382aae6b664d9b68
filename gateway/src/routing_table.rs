//! The routing table: an immutable snapshot built from the Watch cache and
//! swapped atomically; calls read it without locks.
//!
//! Rules:
//! - routable agents: those [`Agent::routability`] lets serve — the rule
//!   dependency resolution applies too: HEALTHY first, DEGRADED only when
//!   merely late (one whose heartbeat stream broke is treated as gone), never
//!   EXPIRED;
//! - replicas (agents with the same name) serving a tool are one tool;
//! - the same tool name from different agents: each is exposed as
//!   `<agent>__<tool>` (a separator valid for `^[a-zA-Z0-9_-]{1,64}$`);
//! - tools only unroutable agents serve keep a route without replicas (not
//!   listed), so calling one says "no replica" rather than "unknown tool";
//! - per-endpoint state (in-flight count, breaker) survives rebuilds.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use rmcp::model::Tool as McpTool;
use switchboard_client::CacheView;
use switchboard_client::proto_json::from_struct;
use switchboard_proto::Routability;
use switchboard_proto::v1::{Agent, Tool};

use crate::breaker::{Breaker, BreakerConfig};
use crate::federation::Catalog;

/// Separator between agent and tool names for colliding tools.
pub const SEPARATOR: &str = "__";
/// Longest tool name every client accepts.
const MAX_NAME: usize = 64;

/// Live state of one agent endpoint, shared across table versions: a
/// rebuild keeps its breaker and in-flight count.
///
/// ```
/// use std::sync::atomic::Ordering;
/// use switchboard_client::CacheView;
/// use switchboard_gateway::{BreakerConfig, RoutingTable};
///
/// let table = RoutingTable::build(&CacheView::default(), &RoutingTable::default(), BreakerConfig::default());
/// for route in table.routes.values() {
///     for replica in &route.replicas {
///         let endpoint = &replica.endpoint;
///         println!("{}: {} in flight, {:?}", endpoint.url, endpoint.in_flight.load(Ordering::Relaxed), endpoint.breaker.state());
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Endpoint {
    /// The agent's MCP URL.
    pub url: String,
    /// Calls in flight (power of two choices compares these).
    pub in_flight: AtomicUsize,
    /// Transport-failure breaker.
    pub breaker: Breaker,
    /// Set once the endpoint has left the table; calls that picked it
    /// before may still be finishing.
    pub retired: AtomicBool,
}

/// One agent able to serve a route.
///
/// ```
/// use switchboard_gateway::Route;
///
/// // The replicas a call would pick first: HEALTHY ones whose breaker lets calls through.
/// fn preferred(route: &Route) -> Vec<&str> {
///     route
///         .replicas
///         .iter()
///         .filter(|r| r.healthy && r.endpoint.breaker.is_available())
///         .map(|r| r.agent_id.as_str())
///         .collect()
/// }
/// # let _ = preferred;
/// ```
#[derive(Debug, Clone)]
pub struct Replica {
    /// The agent's id.
    pub agent_id: String,
    /// False for DEGRADED (late) agents: used only when no healthy one is left.
    pub healthy: bool,
    /// Its endpoint state.
    pub endpoint: Arc<Endpoint>,
}

/// How to serve one exposed tool. A route without replicas is a tool whose
/// agents are all known but unroutable: calling it answers "no replica".
///
/// ```
/// use switchboard_gateway::Gateway;
///
/// fn describe(gateway: &Gateway, tool: &str) -> String {
///     match gateway.table().routes.get(tool) {
///         None => format!("{tool}: unknown"),
///         Some(route) if route.replicas.is_empty() => format!("{tool}: no replica now"),
///         Some(route) => format!("{tool} → {} on {} replicas", route.upstream_tool, route.replicas.len()),
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug, Clone)]
pub struct Route {
    /// The tool's name at the agents.
    pub upstream_tool: String,
    /// Agents serving it.
    pub replicas: Vec<Replica>,
    /// What access rules match it on.
    pub facts: Arc<ToolFacts>,
}

/// What access policy rules match a route on: the serving agent's name and
/// the tool's capability and tags (empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFacts {
    /// The serving agent's name.
    pub agent: String,
    /// The tool's capability.
    pub capability: String,
    /// The tool's tags.
    pub tags: Vec<String>,
}

// === impl ToolFacts ===

impl ToolFacts {
    fn of(agent: &str, tool: &Tool) -> Arc<Self> {
        Arc::new(Self {
            agent: agent.to_owned(),
            capability: tool.capability.clone(),
            tags: tool.tags.clone(),
        })
    }
}

/// One version of the table, built from a Watch cache view.
///
/// ```
/// use std::sync::Arc;
/// use switchboard_client::CacheView;
/// use switchboard_gateway::{BreakerConfig, RoutingTable};
/// use switchboard_proto::v1::{Agent, AgentStatus, Tool};
///
/// let replica = |id: &str| Agent {
///     id: id.into(),
///     name: "date-service".into(),
///     endpoint: format!("http://{id}:8080/mcp"),
///     status: AgentStatus::Healthy as i32,
///     tools: vec![Tool { name: "get_date".into(), ..Tool::default() }],
///     ..Agent::default()
/// };
/// let view = CacheView {
///     agents: ["a", "b"].map(|id| (id.to_owned(), Arc::new(replica(id)))).into_iter().collect(),
///     complete: true,
///     ..CacheView::default()
/// };
/// let table = RoutingTable::build(&view, &RoutingTable::default(), BreakerConfig::default());
/// assert_eq!(table.tools.len(), 1, "two replicas, one tool");
/// assert_eq!(table.routes["get_date"].replicas.len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct RoutingTable {
    /// Registry revision it reflects.
    pub revision: u64,
    /// Exposed name → route.
    pub routes: BTreeMap<String, Route>,
    /// `tools/list` entries, ordered by name.
    pub tools: Vec<McpTool>,
    /// Changes whenever the listed tools change (for `list_changed`).
    pub fingerprint: u64,
    /// Resources, resource templates and prompts.
    pub catalog: Catalog,
}

// === impl RoutingTable ===

impl RoutingTable {
    /// Builds the table for `view`, reusing endpoint state from `previous`.
    pub fn build(view: &CacheView, previous: &RoutingTable, breaker: BreakerConfig) -> Self {
        let endpoints = previous.endpoints();
        let endpoint = |url: &str| {
            endpoints.get(url).cloned().unwrap_or_else(|| {
                Arc::new(Endpoint {
                    url: url.to_owned(),
                    in_flight: AtomicUsize::new(0),
                    breaker: Breaker::new(breaker),
                    retired: AtomicBool::new(false),
                })
            })
        };
        // tool name → agent name → (definition, replicas)
        let mut groups: BTreeMap<&str, BTreeMap<&str, (&Tool, Vec<Replica>)>> = BTreeMap::new();
        let mut serving = Vec::new();
        for agent in view.agents.values().filter(|a| routable(a)) {
            let replica = Replica {
                agent_id: agent.id.clone(),
                healthy: agent.routability() == Routability::Preferred,
                endpoint: endpoint(&agent.endpoint),
            };
            serving.push((agent.as_ref(), replica.clone()));
            for tool in &agent.tools {
                let entry = groups
                    .entry(&tool.name)
                    .or_default()
                    .entry(&agent.name)
                    .or_insert((tool, Vec::new()));
                entry.1.push(replica.clone());
            }
        }
        let mut routes = BTreeMap::new();
        let mut tools = Vec::new();
        for (tool_name, by_agent) in groups {
            let collide = by_agent.len() > 1;
            for (agent_name, (definition, replicas)) in by_agent {
                let exposed =
                    if collide { prefixed(agent_name, tool_name) } else { tool_name.to_owned() };
                tools.push(mcp_tool(&exposed, definition));
                let facts = ToolFacts::of(agent_name, definition);
                routes.insert(
                    exposed,
                    Route { upstream_tool: tool_name.to_owned(), replicas, facts },
                );
            }
        }
        // Tools whose agents are all known but unroutable (crashed, late past
        // their stream, expired) stay as routes without replicas: a client
        // calling one gets "no replica" (-32001), not "unknown tool". They are
        // not listed.
        for agent in view.agents.values().filter(|a| !routable(a)) {
            for tool in &agent.tools {
                for exposed in [tool.name.clone(), prefixed(&agent.name, &tool.name)] {
                    routes.entry(exposed).or_insert_with(|| Route {
                        upstream_tool: tool.name.clone(),
                        replicas: Vec::new(),
                        facts: ToolFacts::of(&agent.name, tool),
                    });
                }
            }
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        let fingerprint = fingerprint(&tools);
        let catalog = Catalog::build(&serving);
        Self { revision: view.revision, routes, tools, fingerprint, catalog }
    }

    /// Every endpoint in use, by URL.
    pub(crate) fn endpoints(&self) -> HashMap<String, Arc<Endpoint>> {
        let catalog = &self.catalog;
        self.routes
            .values()
            .chain(catalog.resource_routes.values())
            .chain(catalog.prompt_routes.values())
            .chain(catalog.template_routes.iter().map(|t| &t.route))
            .flat_map(|route| &route.replicas)
            .map(|replica| (replica.endpoint.url.clone(), replica.endpoint.clone()))
            .collect()
    }

    /// URLs of every endpoint in use.
    pub fn endpoint_urls(&self) -> Vec<String> {
        self.endpoints().into_keys().collect()
    }
}

fn routable(agent: &Agent) -> bool {
    agent.routability().may_serve()
}

/// `<agent>__<tool>`, with the agent part made valid and short enough.
///
/// ```
/// use switchboard_gateway::prefixed;
///
/// assert_eq!(prefixed("stocks.v2", "lookup"), "stocks_v2__lookup");
/// assert_eq!(prefixed(&"x".repeat(80), "lookup").len(), 64);
/// ```
pub fn prefixed(agent_name: &str, tool_name: &str) -> String {
    let agent: String = agent_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let room = MAX_NAME.saturating_sub(tool_name.len() + SEPARATOR.len()).max(1);
    let agent = &agent[..agent.len().min(room)];
    format!("{agent}{SEPARATOR}{tool_name}")
}

fn mcp_tool(name: &str, tool: &Tool) -> McpTool {
    // The agent's own definition, kept whole (title, annotations,
    // outputSchema, icons, _meta); only the exposed name is ours.
    if let Ok(mut definition) = serde_json::from_slice::<McpTool>(&tool.mcp_definition) {
        definition.name = name.to_owned().into();
        return definition;
    }
    let schema = tool.input_schema.as_ref().and_then(|s| s.decode_struct().ok());
    let schema = schema.as_ref().map(from_struct).unwrap_or_else(|| {
        serde_json::Map::from_iter([("type".to_owned(), serde_json::Value::from("object"))])
    });
    let mut definition = McpTool::new(name.to_owned(), tool.description.clone(), Arc::new(schema));
    if tool.description.is_empty() {
        definition.description = None;
    }
    definition
}

fn fingerprint(tools: &[McpTool]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for tool in tools {
        tool.name.hash(&mut hasher);
        serde_json::to_string(tool).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests;
