use std::sync::Arc;

use switchboard_client::CacheView;
use switchboard_proto::v1::{Agent, AgentStatus, Tool};

use super::*;

fn view(tools: usize) -> CacheView {
    let agent = Agent {
        id: "a-1".into(),
        name: "a".into(),
        endpoint: "http://127.0.0.1:9/mcp".into(),
        status: AgentStatus::Healthy as i32,
        tools: (0..tools).map(|i| Tool { name: format!("t{i:03}"), ..Tool::default() }).collect(),
        ..Agent::default()
    };
    CacheView {
        agents: [("a-1".to_owned(), Arc::new(agent))].into_iter().collect(),
        complete: true,
        ..CacheView::default()
    }
}

#[test]
fn tools_list_pages_with_opaque_cursors_and_rejects_bad_ones() {
    let gateway = Gateway::new(GatewayConfig { page_size: 2, ..GatewayConfig::default() });
    assert_eq!(gateway.list(None).unwrap_err().code.0, errors::NOT_READY, "no table yet");
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
async fn a_route_whose_breakers_are_all_open_is_refused_without_calling() {
    let gateway = Gateway::new(GatewayConfig::default());
    gateway.apply(&view(1));
    let table = gateway.table();
    let breaker = &table.routes["t000"].replicas[0].endpoint.breaker;
    for _ in 0..3 {
        breaker.record_failure();
    }
    let error = gateway.call(CallToolRequestParams::new("t000")).await.unwrap_err();
    assert_eq!(error.code.0, errors::BREAKER_OPEN);
    assert!(error.message.contains("circuit breaker"), "{}", error.message);
}
