use std::sync::Arc;

use switchboard_client::CacheView;
use switchboard_proto::v1::{Agent, AgentStatus, StatusReason, Tool};

use super::*;

fn agent(id: &str, name: &str, status: AgentStatus, tools: &[&str]) -> Arc<Agent> {
    Arc::new(Agent {
        id: id.into(),
        name: name.into(),
        endpoint: format!("http://{id}/mcp"),
        status: status as i32,
        tools: tools.iter().map(|t| Tool { name: (*t).into(), ..Tool::default() }).collect(),
        ..Agent::default()
    })
}

fn view(agents: Vec<Arc<Agent>>) -> CacheView {
    CacheView {
        agents: agents.into_iter().map(|a| (a.id.clone(), a)).collect(),
        complete: true,
        ..CacheView::default()
    }
}

fn build(agents: Vec<Arc<Agent>>) -> RoutingTable {
    RoutingTable::build(&view(agents), &RoutingTable::default(), BreakerConfig::default())
}

#[test]
fn replicas_of_one_agent_are_one_tool() {
    let table = build(vec![
        agent("date-1", "date-service", AgentStatus::Healthy, &["get_date"]),
        agent("date-2", "date-service", AgentStatus::Healthy, &["get_date"]),
    ]);
    assert_eq!(table.tools.len(), 1);
    assert_eq!(table.routes["get_date"].replicas.len(), 2);
}

#[test]
fn the_same_tool_name_from_different_agents_is_prefixed() {
    let table = build(vec![
        agent("w-1", "weather", AgentStatus::Healthy, &["lookup"]),
        agent("s-1", "stocks.v2", AgentStatus::Healthy, &["lookup", "quote"]),
    ]);
    let names: Vec<&str> = table.tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["quote", "stocks_v2__lookup", "weather__lookup"]);
    assert_eq!(table.routes["weather__lookup"].upstream_tool, "lookup");
    assert_eq!(table.routes["weather__lookup"].replicas[0].agent_id, "w-1");
    for name in names {
        assert!(
            name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }
}

#[test]
fn expired_and_disconnected_agents_are_not_routable_but_late_ones_are() {
    let mut lost = (*agent("b", "b", AgentStatus::Degraded, &["b"])).clone();
    lost.set_condition(AgentStatus::Degraded, StatusReason::StreamBroke);
    let table = build(vec![
        agent("a", "a", AgentStatus::Expired, &["a"]),
        Arc::new(lost),
        agent("c", "c", AgentStatus::Degraded, &["c"]),
    ]);
    let names: Vec<&str> = table.tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["c"]);
    assert!(!table.routes["c"].replicas[0].healthy);
    for gone in ["a", "b", "a__a", "b__b"] {
        assert!(table.routes[gone].replicas.is_empty(), "{gone}: a route without replicas");
    }
    assert!(table.endpoint_urls().iter().all(|url| url == "http://c/mcp"));
}

#[test]
fn a_dead_agent_never_shadows_a_routable_one() {
    let mut lost = (*agent("old", "weather", AgentStatus::Degraded, &["lookup"])).clone();
    lost.set_condition(AgentStatus::Degraded, StatusReason::StreamBroke);
    let table =
        build(vec![Arc::new(lost), agent("new", "stocks", AgentStatus::Healthy, &["lookup"])]);
    let names: Vec<&str> = table.tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["lookup"], "no prefix: only one agent serves it");
    assert_eq!(table.routes["lookup"].replicas[0].agent_id, "new");
    assert!(table.routes["weather__lookup"].replicas.is_empty());
}

#[test]
fn endpoint_state_survives_a_rebuild_and_the_fingerprint_tracks_the_listing() {
    let first = build(vec![agent("a", "a", AgentStatus::Healthy, &["t"])]);
    first.routes["t"].replicas[0].endpoint.breaker.record_failure();
    let agents = vec![
        agent("a", "a", AgentStatus::Healthy, &["t"]),
        agent("b", "b", AgentStatus::Healthy, &["u"]),
    ];
    let second = RoutingTable::build(&view(agents), &first, BreakerConfig::default());
    assert!(Arc::ptr_eq(
        &first.routes["t"].replicas[0].endpoint,
        &second.routes["t"].replicas[0].endpoint
    ));
    assert_ne!(first.fingerprint, second.fingerprint);
    let same = RoutingTable::build(
        &view(vec![agent("a", "a", AgentStatus::Healthy, &["t"])]),
        &first,
        BreakerConfig::default(),
    );
    assert_eq!(first.fingerprint, same.fingerprint);
}

#[test]
fn long_names_are_cut_to_fit_sixty_four_characters() {
    let name = prefixed(&"x".repeat(80), "tool");
    assert_eq!(name.len(), 64);
    assert!(name.ends_with("__tool"));
}
