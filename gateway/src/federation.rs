//! Resources, resource templates and prompts of every routable agent,
//! federated like tools: the union of their definitions (served verbatim
//! from what the agents registered), with the routing key prefixed only
//! when two agents serve the same one — prompts as `<agent>__<name>`,
//! resources and templates as `switchboard://<agent>/<uri>`, which stays a
//! valid URI.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde_json::value::RawValue;
use switchboard_proto::v1::Agent;

use crate::routing_table::{Replica, Route, prefixed};

/// Scheme of prefixed resource URIs.
const URI_PREFIX: &str = "switchboard://";

/// One listed item: its exposed key and its definition (JSON).
pub type Listed = (String, Box<RawValue>);

/// A template route: requests whose URI starts with `literal` go to `route`
/// after `strip` (the gateway's prefix, if any) is removed.
#[derive(Debug, Clone)]
pub struct TemplateRoute {
    /// The exposed template.
    pub template: String,
    /// Its text before the first `{`.
    pub literal: String,
    /// The prefix the gateway added, removed before forwarding.
    pub strip: Option<String>,
    /// Where it goes.
    pub route: Route,
}

/// Everything federated besides tools.
#[derive(Debug, Default)]
pub struct Catalog {
    /// `resources/list`, sorted by URI.
    pub resources: Vec<Listed>,
    /// Resource URI → route (the upstream URI in `upstream_tool`).
    pub resource_routes: BTreeMap<String, Route>,
    /// `resources/templates/list`, sorted.
    pub templates: Vec<Listed>,
    /// Template routes.
    pub template_routes: Vec<TemplateRoute>,
    /// `prompts/list`, sorted by name.
    pub prompts: Vec<Listed>,
    /// Prompt name → route (the upstream name in `upstream_tool`).
    pub prompt_routes: BTreeMap<String, Route>,
    /// Fingerprint of the resource and template lists.
    pub resources_fingerprint: u64,
    /// Fingerprint of the prompt list.
    pub prompts_fingerprint: u64,
}

/// One kind of item of an agent: its key and definition.
type Items = fn(&Agent) -> Vec<(String, Vec<u8>)>;

// === impl Catalog ===

impl Catalog {
    /// The catalog of `agents` (routable ones, with their replica).
    pub fn build(agents: &[(&Agent, Replica)]) -> Self {
        let resources: Items =
            |a| a.resources.iter().map(|r| (r.uri.clone(), r.mcp_definition.to_vec())).collect();
        let templates: Items = |a| {
            a.resource_templates
                .iter()
                .map(|t| (t.uri_template.clone(), t.mcp_definition.to_vec()))
                .collect()
        };
        let prompts: Items =
            |a| a.prompts.iter().map(|p| (p.name.clone(), p.mcp_definition.to_vec())).collect();
        let (resources, resource_routes) = federate(agents, resources, "uri", prefix_uri);
        let (templates, by_template) = federate(agents, templates, "uriTemplate", prefix_uri);
        let (prompts, prompt_routes) = federate(agents, prompts, "name", prefixed);
        let template_routes = by_template
            .into_iter()
            .map(|(template, route)| {
                let literal = template.split('{').next().unwrap_or_default().to_owned();
                let strip = template
                    .strip_suffix(route.upstream_tool.as_str())
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned);
                TemplateRoute { template, literal, strip, route }
            })
            .collect();
        let resources_fingerprint = fingerprint(resources.iter().chain(&templates));
        let prompts_fingerprint = fingerprint(prompts.iter());
        Self {
            resources,
            resource_routes,
            templates,
            template_routes,
            prompts,
            prompt_routes,
            resources_fingerprint,
            prompts_fingerprint,
        }
    }

    /// The route of a resource URI (listed, or matching a template) and the
    /// URI to send upstream.
    pub fn resource(&self, uri: &str) -> Option<(Route, String)> {
        if let Some(route) = self.resource_routes.get(uri) {
            return Some((route.clone(), route.upstream_tool.clone()));
        }
        let best = self
            .template_routes
            .iter()
            .filter(|t| uri.starts_with(&t.literal))
            .max_by_key(|t| t.literal.len())?;
        let upstream = match &best.strip {
            Some(prefix) => uri.strip_prefix(prefix.as_str()).unwrap_or(uri).to_owned(),
            None => uri.to_owned(),
        };
        Some((best.route.clone(), upstream))
    }

    /// The URI a client knows for `uri` of the agent at `endpoint` (the
    /// prefixed form when the gateway prefixed it).
    pub fn exposed_uri(&self, endpoint: &str, uri: &str) -> String {
        let serves = |route: &Route| route.replicas.iter().any(|r| r.endpoint.url == endpoint);
        let listed = self
            .resource_routes
            .iter()
            .find(|(_, route)| route.upstream_tool == uri && serves(route));
        if let Some((exposed, _)) = listed {
            return exposed.clone();
        }
        let templated = self.template_routes.iter().find(|t| {
            let literal = t.literal.strip_prefix(t.strip.as_deref().unwrap_or("")).unwrap_or("");
            serves(&t.route) && uri.starts_with(literal)
        });
        match templated.and_then(|t| t.strip.as_deref()) {
            Some(prefix) => format!("{prefix}{uri}"),
            None => uri.to_owned(),
        }
    }

    /// The route of an exposed template (completion of its arguments).
    pub fn template(&self, template: &str) -> Option<(Route, String)> {
        self.template_routes
            .iter()
            .find(|t| t.template == template)
            .map(|t| (t.route.clone(), t.route.upstream_tool.clone()))
    }
}

/// `switchboard://<agent>/<uri>`.
fn prefix_uri(agent: &str, uri: &str) -> String {
    let agent: String = agent
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect();
    format!("{URI_PREFIX}{agent}/{uri}")
}

/// key → agent name → (definition, replicas).
type Groups = BTreeMap<String, BTreeMap<String, (Vec<u8>, Vec<Replica>)>>;

fn federate(
    agents: &[(&Agent, Replica)],
    items: Items,
    key_field: &str,
    prefix: fn(&str, &str) -> String,
) -> (Vec<Listed>, BTreeMap<String, Route>) {
    let mut groups: Groups = BTreeMap::new();
    for (agent, replica) in agents {
        for (key, definition) in items(agent) {
            let entry = groups
                .entry(key)
                .or_default()
                .entry(agent.name.clone())
                .or_insert((definition, Vec::new()));
            entry.1.push(replica.clone());
        }
    }
    let mut listed = Vec::new();
    let mut routes = BTreeMap::new();
    for (key, by_agent) in groups {
        let collide = by_agent.len() > 1;
        for (agent_name, (definition, replicas)) in by_agent {
            let exposed = if collide { prefix(&agent_name, &key) } else { key.clone() };
            listed.push((exposed.clone(), definition_of(&definition, key_field, &exposed)));
            let facts = std::sync::Arc::new(crate::routing_table::ToolFacts {
                agent: agent_name.clone(),
                ..Default::default()
            });
            routes.insert(exposed, Route { upstream_tool: key.clone(), replicas, facts });
        }
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    (listed, routes)
}

/// The agent's definition with only the exposed key replaced.
fn definition_of(definition: &[u8], key_field: &str, exposed: &str) -> Box<RawValue> {
    let mut object: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(definition).unwrap_or_default();
    object.insert(key_field.to_owned(), crate::envelope::raw(&exposed));
    if key_field == "uri" && !object.contains_key("name") {
        object.insert("name".to_owned(), crate::envelope::raw(&exposed));
    }
    crate::envelope::raw(&object)
}

fn fingerprint<'a>(items: impl Iterator<Item = &'a Listed>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (key, definition) in items {
        key.hash(&mut hasher);
        definition.get().hash(&mut hasher);
    }
    hasher.finish()
}
