//! Traces end to end, with the demo mesh as real processes exporting to a
//! real OTLP/gRPC collector: one `tools/call greet` through the gateway is
//! ONE trace — gateway request (SERVER) → upstream call (CLIENT) → hello's
//! tool (SERVER) → its dependency call (CLIENT) → date-service's tool
//! (SERVER) — and a client's own `traceparent` is continued, not replaced,
//! whether it comes in `params._meta` or in the HTTP header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ProtocolVersion, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt as _};
use serde_json::json;
use switchboard_client::{McpPool, McpPoolConfig};
use switchboard_tests::{OtlpReceiver, ReceivedSpan, TracedMesh, mcp, span_kind};

const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh, valid W3C trace id and span id (hex), unique per call.
fn client_ids(seed: u8) -> (String, String) {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    (format!("{nanos:030x}{seed:02x}"), format!("{:014x}{seed:02x}", std::process::id()))
}

fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

fn find<'a>(
    spans: &'a [ReceivedSpan],
    service: &str,
    kind: i32,
    name: &str,
) -> Option<&'a ReceivedSpan> {
    spans.iter().find(|s| s.service == service && s.kind == kind && s.name == name)
}

/// The five spans of one greet, once all have arrived.
struct Chain {
    gateway: ReceivedSpan,
    upstream: ReceivedSpan,
    hello: ReceivedSpan,
    dependency: ReceivedSpan,
    date: ReceivedSpan,
}

async fn chain_of(receiver: &OtlpReceiver, trace_id: &str) -> Chain {
    receiver
        .wait_for(&format!("the five spans of trace {trace_id}"), DEADLINE, |all| {
            let spans: Vec<ReceivedSpan> =
                all.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
            let (server, client) = (span_kind::SERVER, span_kind::CLIENT);
            Some(Chain {
                gateway: find(&spans, "switchboard-gateway", server, "tools/call greet")?.clone(),
                upstream: find(&spans, "switchboard-gateway", client, "tools/call greet")?.clone(),
                hello: find(&spans, "hello", server, "tools/call greet")?.clone(),
                dependency: find(&spans, "hello", client, "tools/call get_date")?.clone(),
                date: find(&spans, "date-service", server, "tools/call get_date")?.clone(),
            })
        })
        .await
}

/// Parent links form gateway → upstream → hello → dependency → date.
fn assert_linked(chain: &Chain) {
    assert_eq!(chain.upstream.parent_span_id, chain.gateway.span_id, "upstream under gateway");
    assert_eq!(chain.hello.parent_span_id, chain.upstream.span_id, "hello under upstream");
    assert_eq!(chain.dependency.parent_span_id, chain.hello.span_id, "dependency under hello");
    assert_eq!(chain.date.parent_span_id, chain.dependency.span_id, "date under dependency");
}

fn assert_attributes(chain: &Chain) {
    for span in [&chain.gateway, &chain.upstream, &chain.hello, &chain.dependency, &chain.date] {
        assert_eq!(span.attr("mcp.method.name"), Some("tools/call"), "{span:?}");
        assert_eq!(span.attr("gen_ai.operation.name"), Some("execute_tool"), "{span:?}");
        assert!(span.resource.contains_key("service.version"), "{span:?}");
        assert!(span.resource.contains_key("service.instance.id"), "{span:?}");
        assert_ne!(span.status_code, 2, "no error: {span:?}");
    }
    assert_eq!(chain.gateway.attr("gen_ai.tool.name"), Some("greet"));
    assert_eq!(chain.date.attr("gen_ai.tool.name"), Some("get_date"));
    for client in [&chain.upstream, &chain.dependency] {
        assert_eq!(client.attr("server.address"), Some("127.0.0.1"), "{client:?}");
        assert!(client.attr("server.port").is_some(), "{client:?}");
        assert!(client.attr("switchboard.agent.id").is_some(), "{client:?}");
    }
}

/// `tools/call greet` through the gateway with `traceparent` in `_meta`.
async fn greet_with_meta(gateway: &str, traceparent: &str) {
    let pool = McpPool::new(McpPoolConfig::default());
    let mut params = CallToolRequestParams::new("greet");
    params.arguments = json!({"name": "Ada"}).as_object().cloned();
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(traceparent);
    params.meta = Some(meta);
    let result = pool.call_tool(gateway, params).await.expect("greet answers");
    assert!(mcp::text(&result).contains("Today is "), "{}", mcp::text(&result));
}

/// `tools/call greet` through the gateway with a `traceparent` HTTP header.
async fn greet_with_header(gateway: &str, traceparent: &str) {
    let mut config = StreamableHttpClientTransportConfig::with_uri(gateway.to_owned());
    config.custom_headers.insert(
        reqwest::header::HeaderName::from_static("traceparent"),
        reqwest::header::HeaderValue::from_str(traceparent).unwrap(),
    );
    let transport = StreamableHttpClientTransport::from_config(config);
    let lifecycle = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::LATEST],
        legacy_version: None,
    };
    let client = ().serve_with_lifecycle(transport, lifecycle).await.expect("client");
    let mut params = CallToolRequestParams::new("greet");
    params.arguments = json!({"name": "Grace"}).as_object().cloned();
    let result = client.call_tool(params).await.expect("greet answers");
    assert!(mcp::text(&result).contains("Today is "), "{}", mcp::text(&result));
    let _ = client.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_greet_through_the_gateway_is_one_trace_that_continues_the_clients() {
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.endpoint();
    let mesh = TracedMesh::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("SWITCHBOARD_LOG", "warn"),
    ])
    .await;
    mesh.wait_until_wired().await;

    // The client's context in `params._meta`: continued, not replaced.
    let (trace_id, client_span) = client_ids(1);
    greet_with_meta(&mesh.gateway_url(), &traceparent(&trace_id, &client_span)).await;
    let chain = chain_of(&receiver, &trace_id).await;
    assert_eq!(chain.gateway.parent_span_id, client_span, "the gateway continues the client");
    assert_linked(&chain);
    assert_attributes(&chain);

    // The same through the HTTP `traceparent` header.
    let (trace_id, client_span) = client_ids(2);
    greet_with_header(&mesh.gateway_url(), &traceparent(&trace_id, &client_span)).await;
    let chain = chain_of(&receiver, &trace_id).await;
    assert_eq!(chain.gateway.parent_span_id, client_span, "the header is continued");
    assert_linked(&chain);

    // Without a client context the trace starts at the gateway.
    let root = receiver
        .wait_for("a greet trace rooted at the gateway", DEADLINE, |all| {
            all.iter()
                .find(|s| {
                    s.service == "switchboard-gateway"
                        && s.kind == span_kind::SERVER
                        && s.parent_span_id.is_empty()
                })
                .cloned()
        })
        .await;
    let chain = chain_of(&receiver, &root.trace_id).await;
    assert_linked(&chain);

    // Registry RPCs get server spans with the RPC conventions.
    let register = receiver
        .wait_for("a RegisterAgent server span", DEADLINE, |all| {
            find(
                all,
                "switchboard-registry",
                span_kind::SERVER,
                "switchboard.v1.RegistryService/RegisterAgent",
            )
            .cloned()
        })
        .await;
    assert_eq!(register.attr("rpc.system"), Some("grpc"));
    assert_eq!(register.attr("rpc.service"), Some("switchboard.v1.RegistryService"));
    assert_eq!(register.attr("rpc.method"), Some("RegisterAgent"));
}
