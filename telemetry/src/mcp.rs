//! Spans and context propagation for MCP `tools/call`, per the
//! OpenTelemetry MCP semantic conventions.
//!
//! A server span is named `tools/call <tool>` (kind SERVER) and continues
//! the caller's trace from `params._meta.traceparent` — where the MCP
//! conventions (and SEP-414) put it — or else from the HTTP `traceparent`
//! header, which rmcp keeps in the request's extensions as
//! [`http::request::Parts`]. A client span (kind CLIENT) wraps each call to
//! another MCP server; [`inject`] writes its context into the outgoing
//! request's `_meta` (rmcp's client keeps caller-provided `_meta` keys on the wire).

use opentelemetry::Context;
use rmcp::model::{CallToolRequestParams, Extensions, RequestMetaObject};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::propagation::{self, W3cContext};

/// `mcp.method.name` of a tool call.
pub const TOOLS_CALL: &str = "tools/call";

/// The caller's trace context of an incoming request: `_meta` first, then
/// the HTTP headers.
pub fn incoming_context(meta: &RequestMetaObject, extensions: &Extensions) -> Option<Context> {
    propagation::remote_context(meta.get_traceparent(), meta.get_tracestate()).or_else(|| {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| propagation::from_headers(&parts.headers))
    })
}

/// A SERVER span for serving `tools/call` of `tool`, child of `parent` when given.
///
/// Fields left to record: `error.type`, `otel.status_code`,
/// `rpc.response.status_code`.
pub fn server_span(tool: &str, request_id: &str, parent: Option<Context>) -> tracing::Span {
    let span = tracing::info_span!(
        "tools/call",
        otel.name = %format_args!("{TOOLS_CALL} {tool}"),
        otel.kind = "server",
        otel.status_code = Empty,
        mcp.method.name = TOOLS_CALL,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %tool,
        jsonrpc.request.id = %request_id,
        rpc.response.status_code = Empty,
        error.type = Empty,
    );
    if let Some(parent) = parent {
        let _ = span.set_parent(parent);
    }
    span
}

/// A CLIENT span for calling `tool` at the MCP endpoint `endpoint` (a URL).
///
/// Fields left to record: `error.type`, `otel.status_code`,
/// `rpc.response.status_code`, `switchboard.agent.id`.
pub fn client_span(tool: &str, endpoint: &str) -> tracing::Span {
    let uri: Option<http::Uri> = endpoint.parse().ok();
    let host = uri.as_ref().and_then(http::Uri::host).unwrap_or_default().to_owned();
    let port = uri
        .as_ref()
        .and_then(|u| u.port_u16().or_else(|| (u.scheme_str() == Some("https")).then_some(443)));
    tracing::info_span!(
        "tools/call",
        otel.name = %format_args!("{TOOLS_CALL} {tool}"),
        otel.kind = "client",
        otel.status_code = Empty,
        mcp.method.name = TOOLS_CALL,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %tool,
        server.address = %host,
        server.port = port.unwrap_or(80),
        network.transport = "tcp",
        rpc.response.status_code = Empty,
        error.type = Empty,
        switchboard.agent.id = Empty,
    )
}

/// Writes the current trace context into the request's `_meta`, replacing
/// any `traceparent` already there. Leaves `_meta` alone when there is none.
pub fn inject(params: &mut CallToolRequestParams) {
    inject_context(params, propagation::current());
}

/// Writes `context` into the request's `_meta`.
pub fn inject_context(params: &mut CallToolRequestParams, context: Option<W3cContext>) {
    let Some(context) = context else { return };
    let meta = params.meta.get_or_insert_with(RequestMetaObject::new);
    meta.set_traceparent(context.traceparent);
    match context.tracestate {
        Some(state) => meta.set_tracestate(state),
        None => {
            meta.0.0.remove(propagation::TRACESTATE);
        }
    }
}

/// How a tool call ended, for its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// A result without `isError`.
    Ok,
    /// A result with `isError: true`.
    ToolError,
    /// A JSON-RPC error answer with this code.
    RpcError(i32),
    /// No answer: the named failure (`timeout`, `unreachable`, …).
    Failed(&'a str),
}

/// Records `outcome` on `span` (`error.type`, status, JSON-RPC code).
pub fn record_outcome(span: &tracing::Span, outcome: Outcome<'_>) {
    match outcome {
        Outcome::Ok => {}
        Outcome::ToolError => {
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "error");
        }
        Outcome::RpcError(code) => {
            let code = code.to_string();
            span.record("rpc.response.status_code", code.as_str());
            span.record("error.type", code.as_str());
            span.record("otel.status_code", "error");
        }
        Outcome::Failed(kind) => {
            span.record("error.type", kind);
            span.record("otel.status_code", "error");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn meta_wins_over_headers() {
        let mut meta = RequestMetaObject::new();
        meta.set_traceparent(PARENT);
        let mut extensions = Extensions::new();
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers.insert("traceparent", http::HeaderValue::from_static(other));
        extensions.insert(parts);
        let cx = incoming_context(&meta, &extensions).unwrap();
        assert_eq!(propagation::to_w3c(&cx).unwrap().traceparent, PARENT);
        let cx = incoming_context(&RequestMetaObject::new(), &extensions).unwrap();
        assert_eq!(propagation::to_w3c(&cx).unwrap().traceparent, other);
        assert!(incoming_context(&RequestMetaObject::new(), &Extensions::new()).is_none());
    }

    #[test]
    fn injection_writes_meta_only_when_there_is_a_context() {
        let mut params = CallToolRequestParams::new("greet");
        inject_context(&mut params, None);
        assert!(params.meta.is_none());
        let context = W3cContext { traceparent: PARENT.into(), tracestate: None };
        inject_context(&mut params, Some(context));
        assert_eq!(params.meta.unwrap().get_traceparent(), Some(PARENT));
    }
}
