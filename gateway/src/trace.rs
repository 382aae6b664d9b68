//! Tracing of the tool-call path: a SERVER span per `tools/call` continuing
//! the MCP client's trace (`params._meta.traceparent`, else the HTTP
//! `traceparent` header), and a CLIENT span per upstream attempt whose
//! context replaces the request's `_meta` trace context on its way to the
//! agent. One call through the gateway is therefore one trace:
//! client → gateway (server) → upstream attempt (client) → agent tool.

use opentelemetry::context::FutureExt as _;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use switchboard_telemetry::mcp::{self, Outcome};
use tracing::Instrument as _;

/// Runs `call` (routing one `tools/call` of `tool`) inside its server span.
pub(crate) async fn serve(
    tool: &str,
    context: &RequestContext<RoleServer>,
    call: impl Future<Output = Result<CallToolResult, ErrorData>>,
) -> Result<CallToolResult, ErrorData> {
    let parent = mcp::incoming_context(&context.meta, &context.extensions);
    let span = mcp::server_span(tool, &context.id.to_string(), parent.clone());
    // With export off the span has no context of its own: attaching the
    // client's lets the upstream call forward it unchanged.
    let call = call.instrument(span.clone());
    let result = call.with_context(parent.unwrap_or_else(opentelemetry::Context::current)).await;
    let outcome = match &result {
        Ok(result) if result.is_error == Some(true) => Outcome::ToolError,
        Ok(_) => Outcome::Ok,
        Err(error) => Outcome::RpcError(error.code.0),
    };
    mcp::record_outcome(&span, outcome);
    result
}
