//! Errors the gateway makes itself, in the -32000..-32019 range MCP leaves
//! to implementations, each with a message a person can act on. An unknown
//! tool is a protocol error the MCP specification defines (-32602), and an
//! agent's own errors pass through unchanged.

use rmcp::ErrorData;
use rmcp::model::ErrorCode;

/// No replica of the tool is routable (all gone, expired or disconnected).
pub const NO_REPLICA: i32 = -32001;
/// Every routable replica's circuit breaker is open.
pub const BREAKER_OPEN: i32 = -32002;
/// Every replica tried was unreachable (the request never reached one).
pub const UPSTREAM_UNREACHABLE: i32 = -32003;
/// The agent did not answer within the call timeout.
pub const UPSTREAM_TIMEOUT: i32 = -32004;
/// The connection to the agent broke mid-call (it may have run).
pub const UPSTREAM_FAILED: i32 = -32005;
/// The gateway has not received its first routing snapshot yet.
pub const NOT_READY: i32 = -32006;

/// A gateway-made error.
pub fn gateway_error(code: i32, message: impl Into<String>) -> ErrorData {
    ErrorData::new(ErrorCode(code), message.into(), None)
}

/// The MCP error for a tool name nobody serves.
pub fn unknown_tool(name: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown tool {name:?}: no agent in the mesh serves it"),
        None,
    )
}
