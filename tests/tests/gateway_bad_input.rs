//! Bad input at the gateway's `/mcp`, as raw HTTP: every request gets a
//! prompt, specific answer (no hang, no 5xx), and the gateway keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_agent::Agent;
use switchboard_examples::{date_service, hello};
use switchboard_tests::gateway::{free_addr, http_client, register_fake};
use switchboard_tests::{InProcessGateway, McpClient, TestRegistry, eventually};

const DEADLINE: Duration = Duration::from_secs(30);
const MODERN: &str = "2026-07-28";

/// The `_meta` a 2026-07-28 request must carry.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn tools_call(name: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta()},
    })
}

/// The headers of a well-formed 2026-07-28 `tools/call` of `name`.
fn modern_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MCP-Protocol-Version", MODERN.to_owned()),
        ("Mcp-Method", "tools/call".to_owned()),
        ("Mcp-Name", name.to_owned()),
    ]
}

struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.text))
    }

    fn error_code(&self) -> Option<i64> {
        self.json()["error"]["code"].as_i64()
    }

    fn client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }
}

/// POSTs `body` to `url` with the standard `Accept` and `Content-Type` and
/// `headers`; the answer must come within the client's timeout.
async fn post(url: &str, headers: &[(&str, String)], body: impl Into<reqwest::Body>) -> Answer {
    let mut request = http_client()
        .post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: no answer: {e}"));
    let status = response.status().as_u16();
    Answer { status, text: response.text().await.unwrap() }
}

async fn post_json(url: &str, headers: &[(&str, String)], body: &Value) -> Answer {
    post(url, headers, serde_json::to_vec(body).unwrap()).await
}

struct Mesh {
    registry: TestRegistry,
    gateway: InProcessGateway,
    _agents: Vec<switchboard_agent::RunningAgent>,
}

async fn mesh() -> Mesh {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let agent = |name: &str| Agent::new(name).registry(&addr).listen("127.0.0.1:0");
    let agents = vec![
        date_service::start(agent("date-service")).await.unwrap(),
        hello::start(agent("hello")).await.unwrap(),
    ];
    let gateway = InProcessGateway::start(&addr).await;
    gateway.caught_up(registry.registry().snapshot().revision).await;
    Mesh { registry, gateway, _agents: agents }
}

/// A well-formed greet still works (the gateway kept serving).
async fn still_serves(url: &str) {
    let answer =
        post_json(url, &modern_headers("greet"), &tools_call("greet", json!({"name": "Ada"})))
            .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let text = answer.json()["result"]["content"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("Hello, Ada!"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_rpc_is_refused_with_a_client_error() {
    let mesh = mesh().await;
    let url = mesh.gateway.url();
    still_serves(&url).await;
    let bodies: [&[u8]; 7] = [
        b"this is not json{",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        br#"{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}"#,
        br#"{"id": 1, "method": "tools/list"}"#,
        br#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "greet"}"#,
    ];
    for body in bodies {
        for headers in [vec![], vec![("MCP-Protocol-Version", MODERN.to_owned())]] {
            let answer = post(&url, &headers, body.to_vec()).await;
            assert!(
                answer.client_error(),
                "{:?} with {headers:?}: HTTP {} {}",
                String::from_utf8_lossy(body),
                answer.status,
                answer.text
            );
        }
    }
    still_serves(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_tool_is_invalid_params_and_bad_arguments_come_back_from_the_agent() {
    let mesh = mesh().await;
    let url = mesh.gateway.url();

    let unknown = post_json(&url, &modern_headers("nope"), &tools_call("nope", json!({}))).await;
    assert_eq!(unknown.status, 200, "{}", unknown.text);
    assert_eq!(unknown.error_code(), Some(-32602), "{}", unknown.text);
    assert!(unknown.text.contains("nope"), "names the tool: {}", unknown.text);

    // `name` must be a string: the agent's own validation answers, through
    // the gateway (a tool-level error in current MCP, or a protocol error).
    let wrong =
        post_json(&url, &modern_headers("greet"), &tools_call("greet", json!({"name": 5}))).await;
    assert_eq!(wrong.status, 200, "{}", wrong.text);
    let body = wrong.json();
    let message = if body["result"]["isError"] == json!(true) {
        body["result"]["content"][0]["text"].as_str().unwrap().to_owned()
    } else {
        body["error"]["message"].as_str().expect("an error").to_owned()
    };
    assert!(message.contains("invalid type"), "the agent's validation message: {}", wrong.text);

    let missing = post_json(&url, &modern_headers("greet"), &tools_call("greet", json!({}))).await;
    assert_eq!(missing.status, 200, "{}", missing.text);
    assert!(
        missing.json()["result"]["isError"] == json!(true) || missing.error_code().is_some(),
        "a missing argument is reported: {}",
        missing.text
    );

    let metrics = mesh.gateway.metrics().await;
    let unknown_count = switchboard_tests::metric_value(
        &metrics,
        r#"switchboard_gateway_requests_total{tool="-",outcome="unknown_tool"}"#,
    );
    assert_eq!(unknown_count, Some(1.0), "{metrics}");
    still_serves(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_requests_whose_headers_disagree_with_the_body_are_rejected_with_32020() {
    let mesh = mesh().await;
    let url = mesh.gateway.url();
    let greet = tools_call("greet", json!({"name": "Ada"}));
    let without = |name: &str| -> Vec<(&'static str, String)> {
        modern_headers("greet").into_iter().filter(|(n, _)| *n != name).collect()
    };
    let with = |name: &'static str, value: &str| -> Vec<(&'static str, String)> {
        let mut headers = without(name);
        headers.push((name, value.to_owned()));
        headers
    };
    let cases = [
        ("no Mcp-Method", without("Mcp-Method")),
        ("no Mcp-Name", without("Mcp-Name")),
        ("Mcp-Method of another method", with("Mcp-Method", "tools/list")),
        ("Mcp-Name of another tool", with("Mcp-Name", "get_date")),
        ("header version differs from _meta", with("MCP-Protocol-Version", "2025-11-25")),
    ];
    for (what, headers) in cases {
        let answer = post_json(&url, &headers, &greet).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.text);
        assert_eq!(answer.error_code(), Some(-32020), "{what}: {}", answer.text);
    }

    // The required `_meta` keys are missing: refused, not routed.
    let mut bare = greet.clone();
    bare["params"].as_object_mut().unwrap().remove("_meta");
    let answer = post_json(&url, &modern_headers("greet"), &bare).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(answer.text.contains("io.modelcontextprotocol/protocolVersion"), "{}", answer.text);

    let unsupported = with("MCP-Protocol-Version", "1999-01-01");
    let answer = post_json(&url, &unsupported, &bare).await;
    assert_eq!(answer.status, 400, "an unsupported version: {}", answer.text);

    let metrics = mesh.gateway.metrics().await;
    assert!(
        !metrics.contains(r#"tool="greet",outcome="ok""#),
        "no rejected request reached the agent:\n{metrics}"
    );
    still_serves(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_and_sessions_are_checked_before_anything_is_routed() {
    let mesh = mesh().await;
    let url = mesh.gateway.url();
    let list =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta()}});
    let list_headers = |origin: Option<&str>| {
        let mut headers = vec![
            ("MCP-Protocol-Version", MODERN.to_owned()),
            ("Mcp-Method", "tools/list".to_owned()),
        ];
        if let Some(origin) = origin {
            headers.push(("Origin", origin.to_owned()));
        }
        headers
    };

    for origin in ["http://evil.example", "https://127.0.0.1.evil.example", "null"] {
        let answer = post_json(&url, &list_headers(Some(origin)), &list).await;
        assert_eq!(answer.status, 403, "Origin {origin}: {}", answer.text);
    }
    for origin in [None, Some("http://localhost:6274"), Some("http://127.0.0.1:3000")] {
        let answer = post_json(&url, &list_headers(origin), &list).await;
        assert_eq!(answer.status, 200, "Origin {origin:?}: {}", answer.text);
        assert!(answer.json()["result"]["tools"].as_array().unwrap().len() >= 2, "{}", answer.text);
    }

    // Legacy era: an unknown session is 404 (the client must re-initialize);
    // a non-initialize request without a session is refused.
    let legacy = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let stale = [("Mcp-Session-Id", "no-such-session".to_owned())];
    let answer = post_json(&url, &stale, &legacy).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let answer = post_json(&url, &[], &legacy).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    still_serves(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_whose_replicas_are_all_gone_answers_no_replica() {
    let mesh = mesh().await;
    let url = mesh.gateway.url();
    let endpoint = format!("http://{}/mcp", free_addr());
    let fake = register_fake(mesh.registry.channel().await, "vanishing", "vanish", &endpoint).await;
    mesh.gateway.caught_up(mesh.registry.registry().snapshot().revision).await;
    let client = McpClient::new(&url);
    assert!(client.tool_names().await.unwrap().contains(&"vanish".to_owned()));

    // Its only replica crashes (its heartbeat stream breaks).
    fake.abort();
    let answer = eventually("no replica for vanish", DEADLINE, || async {
        let answer =
            post_json(&url, &modern_headers("vanish"), &tools_call("vanish", json!({}))).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        (answer.error_code() == Some(-32001)).then_some(answer)
    })
    .await;
    assert!(
        answer.json()["error"]["message"].as_str().unwrap().contains("replica"),
        "{}",
        answer.text
    );
    assert!(!client.tool_names().await.unwrap().contains(&"vanish".to_owned()), "no longer listed");
    still_serves(&url).await;
}
