use std::sync::Arc;

use switchboard_client::CacheView;
use switchboard_proto::v1::{Agent, AgentStatus, Tool};

use super::*;

fn agent(id: &str, endpoint: &str, status: AgentStatus, tools: usize) -> Arc<Agent> {
    Arc::new(Agent {
        id: id.into(),
        name: "a".into(),
        endpoint: endpoint.into(),
        status: status as i32,
        tools: (0..tools).map(|i| Tool { name: format!("t{i:03}"), ..Tool::default() }).collect(),
        ..Agent::default()
    })
}

fn view_of(agents: Vec<Arc<Agent>>) -> CacheView {
    CacheView {
        agents: agents.into_iter().map(|a| (a.id.clone(), a)).collect(),
        complete: true,
        ..CacheView::default()
    }
}

fn view(tools: usize) -> CacheView {
    view_of(vec![agent("a-1", "http://127.0.0.1:9/mcp", AgentStatus::Healthy, tools)])
}

/// A loopback endpoint nothing listens on (the port was free a moment ago).
fn refusing_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/mcp", listener.local_addr().unwrap())
}

fn requests(gateway: &Gateway, tool: &str, outcome: &str) -> bool {
    let sample =
        format!(r#"switchboard_gateway_requests_total{{tool="{tool}",outcome="{outcome}"}} 1"#);
    gateway.metrics().render().contains(&sample)
}

#[test]
fn tools_list_pages_with_opaque_cursors_and_rejects_bad_ones() {
    let gateway = Gateway::new(GatewayConfig { page_size: 2, ..GatewayConfig::default() });
    assert_eq!(gateway.list(None).unwrap_err().code.0, -32006, "no table yet");
    gateway.apply(&view(5));

    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = gateway.list(cursor.as_deref()).unwrap();
        assert!(page.tools.len() <= 2);
        names.extend(page.tools.iter().map(|t| t.name.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(names, ["t000", "t001", "t002", "t003", "t004"], "every tool once, in order");

    let bad = gateway.list(Some("%%% not a cursor")).unwrap_err();
    assert_eq!(bad.code, rmcp::model::ErrorCode::INVALID_PARAMS);
}

#[tokio::test]
async fn before_the_first_snapshot_every_call_is_not_ready() {
    let gateway = Gateway::new(GatewayConfig::default());
    let error = gateway.call(CallToolRequestParams::new("t000")).await.unwrap_err();
    assert!(matches!(error, CallError::NotReady), "{error:?}");
    assert!(error.retry_elsewhere());
    assert!(requests(&gateway, "t000", "not_ready"));
}

#[tokio::test]
async fn an_unknown_tool_is_named_and_counted_under_one_label() {
    let gateway = Gateway::new(GatewayConfig::default());
    gateway.apply(&view(1));
    let error = gateway.call(CallToolRequestParams::new("nope")).await.unwrap_err();
    assert!(matches!(&error, CallError::UnknownTool { name } if name == "nope"), "{error:?}");
    assert_eq!(error.into_error_data().code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert!(requests(&gateway, "-", "unknown_tool"), "bounded cardinality");
}

#[tokio::test]
async fn a_tool_whose_only_agent_expired_has_no_replica() {
    let gateway = Gateway::new(GatewayConfig::default());
    gateway.apply(&view_of(vec![agent("a-1", "http://127.0.0.1:9/mcp", AgentStatus::Expired, 1)]));
    let error = gateway.call(CallToolRequestParams::new("t000")).await.unwrap_err();
    assert!(matches!(&error, CallError::NoReplica { tool } if tool == "t000"), "{error:?}");
    assert_eq!(error.code(), -32001);
    assert!(requests(&gateway, "t000", "no_replica"));
}

#[tokio::test]
async fn a_route_whose_breakers_are_all_open_is_refused_without_calling() {
    let gateway = Gateway::new(GatewayConfig::default());
    gateway.apply(&view(1));
    let table = gateway.table();
    let breaker = &table.routes["t000"].replicas[0].endpoint.breaker;
    for _ in 0..3 {
        breaker.record_failure();
    }
    let error = gateway.call(CallToolRequestParams::new("t000")).await.unwrap_err();
    assert!(matches!(error, CallError::BreakersOpen { .. }), "{error:?}");
    assert_eq!(error.code(), -32002);
    assert!(error.message().contains("circuit breaker"), "{}", error.message());
    assert!(requests(&gateway, "t000", "breaker_open"));
}

#[tokio::test]
async fn refused_replicas_are_each_tried_once_then_the_call_is_unreachable() {
    let gateway = Gateway::new(GatewayConfig::default());
    let agents = (0..2)
        .map(|i| agent(&format!("a-{i}"), &refusing_endpoint(), AgentStatus::Healthy, 1))
        .collect();
    gateway.apply(&view_of(agents));
    let error = gateway.call(CallToolRequestParams::new("t000")).await.unwrap_err();
    match &error {
        CallError::Unreachable { tool, tried, last } => {
            assert_eq!((tool.as_str(), *tried), ("t000", 2), "both replicas tried: {error}");
            assert!(last.contains("connect"), "the last failure: {last}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert_eq!(error.code(), -32003);
    assert!(error.retry_elsewhere(), "it never reached an agent");
    let failovers = gateway.metrics().failovers.get();
    assert_eq!(failovers, 2, "one failover per refused replica");
    assert!(requests(&gateway, "t000", "unreachable"));
}
