//! JSON the page fetches on demand: one agent with its wiring explained,
//! and the gateway's counters.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{GetAgentRequest, ResolveDependenciesRequest};

use crate::{DashboardConfig, DashboardError, agent_json, metrics_json};

pub(crate) fn router(state: Arc<DashboardConfig>) -> Router {
    Router::new()
        .route("/ui/api/agents/{id}", get(agent))
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

async fn gateway(
    State(config): State<Arc<DashboardConfig>>,
) -> Result<Json<Value>, DashboardError> {
    let render = config.gateway_metrics.as_ref().ok_or(DashboardError::NoGateway)?;
    Ok(Json(metrics_json::gateway(&render())))
}
