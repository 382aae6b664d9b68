//! JSON the page fetches on demand: one agent with its wiring explained,
//! every agent's last heartbeat, and the gateway's counters.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{GetAgentRequest, ListAgentsRequest, ResolveDependenciesRequest};

use crate::{DashboardConfig, DashboardError, agent_json, metrics_json};

/// Agents per ListAgents page (the registry's maximum).
const PAGE_SIZE: i32 = 1000;
/// Pages read per heartbeat poll: a bound on one request's work.
const MAX_PAGES: usize = 100;

pub(crate) fn router(state: Arc<DashboardConfig>) -> Router {
    Router::new()
        .route("/ui/api/agents/{id}", get(agent))
        .route("/ui/api/heartbeats", get(heartbeats))
        .route("/ui/api/gateway", get(gateway))
        .with_state(state)
}

/// GetAgent (the wiring the agent has now) plus ResolveDependencies with the
/// agent as requester (why each candidate was chosen or excluded).
async fn agent(
    State(config): State<Arc<DashboardConfig>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashboardError> {
    let mut client = RegistryServiceClient::new(config.registry.clone());
    let found = client.get_agent(GetAgentRequest { agent_id: id.clone() }).await?.into_inner();
    let tools = found.agent.as_ref().map(|a| a.tools.clone()).unwrap_or_default();
    // One request for every dependency of every tool; answers come back in order.
    let owners: Vec<&str> =
        tools.iter().flat_map(|t| t.dependencies.iter().map(|_| t.name.as_str())).collect();
    let dependencies = tools.iter().flat_map(|t| t.dependencies.iter().cloned()).collect();
    let explained = if owners.is_empty() {
        Vec::new()
    } else {
        let request = ResolveDependenciesRequest { dependencies, requester_agent_id: id };
        client.resolve_dependencies(request).await?.into_inner().resolutions
    };
    let explanations: Vec<Value> = owners
        .iter()
        .zip(&explained)
        .map(|(tool, resolution)| {
            let mut value = agent_json::dependency(resolution);
            value["tool"] = json!(tool);
            value
        })
        .collect();
    Ok(Json(json!({
        "agent": found.agent.as_ref().map(agent_json::agent),
        "resolutions": found.resolutions.iter().map(agent_json::tool_resolution).collect::<Vec<_>>(),
        "explanations": explanations,
        "revision": found.revision,
    })))
}

/// Agent id → the registry's last heartbeat time (ms since the epoch, null
/// before the first). Heartbeats are not Watch events (they would flood
/// every watcher with no change to report), so the page polls this to keep
/// its "last heartbeat" column true.
async fn heartbeats(
    State(config): State<Arc<DashboardConfig>>,
) -> Result<Json<Value>, DashboardError> {
    let mut client = RegistryServiceClient::new(config.registry.clone());
    let mut times = serde_json::Map::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let request =
            ListAgentsRequest { page_size: PAGE_SIZE, page_token, ..ListAgentsRequest::default() };
        let page = client.list_agents(request).await?.into_inner();
        for agent in &page.agents {
            let at = agent.last_heartbeat_at.as_ref().map(agent_json::millis);
            times.insert(agent.id.clone(), json!(at));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(Json(Value::Object(times)))
}

async fn gateway(
    State(config): State<Arc<DashboardConfig>>,
) -> Result<Json<Value>, DashboardError> {
    let render = config.gateway_metrics.as_ref().ok_or(DashboardError::NoGateway)?;
    Ok(Json(metrics_json::gateway(&render())))
}
