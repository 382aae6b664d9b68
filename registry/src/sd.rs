//! Prometheus HTTP service discovery (`GET /sd/prometheus`, the `http_sd_config`
//! format): one scrape job pointed at the registry finds every agent that may
//! serve calls, so operators never list agents in Prometheus by hand.
//!
//! Agents serve `/metrics` on the same port as their MCP endpoint, so the
//! target is the endpoint URL's `host:port`. Agents that are excluded from
//! routing (expired, or degraded because their stream broke) are left out:
//! scraping them would only fill Prometheus with failed scrapes.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use switchboard_proto::v1::Agent;

use crate::registry::Registry;

/// Path agents serve their metrics on, next to their MCP endpoint.
const AGENT_METRICS_PATH: &str = "/metrics";

/// One target group of the `http_sd_config` response.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct TargetGroup {
    targets: Vec<String>,
    labels: BTreeMap<&'static str, String>,
}

/// `GET /sd/prometheus`, answered from the registry's current snapshot.
pub(crate) fn sd_router(registry: Registry) -> Router {
    Router::new().route(
        "/sd/prometheus",
        get(move || {
            let snapshot = registry.snapshot();
            async move { Json(target_groups(snapshot.agents.values().map(|a| a.as_ref()))) }
        }),
    )
}

/// One group per routable agent whose endpoint names a host and port.
pub(crate) fn target_groups<'a>(agents: impl Iterator<Item = &'a Agent>) -> Vec<TargetGroup> {
    agents
        .filter(|agent| agent.routability().may_serve())
        .filter_map(|agent| {
            let target = metrics_target(&agent.endpoint)?;
            let labels = BTreeMap::from([
                ("__metrics_path__", AGENT_METRICS_PATH.to_owned()),
                ("agent", agent.id.clone()),
                ("name", agent.name.clone()),
                ("version", agent.version.clone()),
                ("status", status_label(agent)),
            ]);
            Some(TargetGroup { targets: vec![target], labels })
        })
        .collect()
}

/// `healthy` or `degraded`, as operators read it in the CLI.
fn status_label(agent: &Agent) -> String {
    let name = agent.status().as_str_name();
    name.strip_prefix("AGENT_STATUS_").unwrap_or(name).to_ascii_lowercase()
}

/// `host:port` of an endpoint URL, with the scheme's default port when the URL
/// has none; `None` for a URL Prometheus could not scrape.
fn metrics_target(endpoint: &str) -> Option<String> {
    let uri: http::Uri = endpoint.parse().ok()?;
    let authority = uri.authority()?;
    let port = match (authority.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, _) => 80,
    };
    Some(format!("{}:{port}", authority.host()))
}

#[cfg(test)]
mod tests {
    use switchboard_proto::v1::{AgentStatus, StatusReason};

    use super::*;

    fn agent(id: &str, endpoint: &str, status: AgentStatus, cause: StatusReason) -> Agent {
        Agent {
            id: id.into(),
            name: "weather".into(),
            version: "1.2.0".into(),
            endpoint: endpoint.into(),
            status: status as i32,
            status_cause: cause as i32,
            ..Agent::default()
        }
    }

    #[test]
    fn lists_routable_agents_with_their_labels() {
        let agents = [
            agent("a", "http://10.0.0.7:9000/mcp", AgentStatus::Healthy, StatusReason::Unspecified),
            agent("b", "http://late:9001/mcp", AgentStatus::Degraded, StatusReason::HeartbeatLate),
            agent("c", "http://gone:9002/mcp", AgentStatus::Expired, StatusReason::Unspecified),
            agent("d", "http://broke:9003/mcp", AgentStatus::Degraded, StatusReason::StreamBroke),
            agent("e", "https://tls.example/mcp", AgentStatus::Healthy, StatusReason::Unspecified),
        ];
        let groups = target_groups(agents.iter());
        let targets: Vec<_> = groups.iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(targets, ["10.0.0.7:9000", "late:9001", "tls.example:443"]);
        let json = serde_json::to_value(&groups[0]).unwrap();
        assert_eq!(json["labels"]["agent"], "a");
        assert_eq!(json["labels"]["name"], "weather");
        assert_eq!(json["labels"]["version"], "1.2.0");
        assert_eq!(json["labels"]["status"], "healthy");
        assert_eq!(json["labels"]["__metrics_path__"], "/metrics");
    }

    #[test]
    fn an_unparsable_endpoint_is_left_out() {
        let bad = agent("x", "not a url", AgentStatus::Healthy, StatusReason::Unspecified);
        assert!(target_groups([bad].iter()).is_empty());
    }
}
