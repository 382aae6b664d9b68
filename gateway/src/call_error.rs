//! Every way a `tools/call` through the gateway can fail, in one place: its
//! JSON-RPC code, its message, whether the request may be sent again
//! elsewhere, and its metric label.
//!
//! Errors the gateway makes itself use -32001..-32006, inside the
//! -32000..-32019 range kept for errors a gateway invents (so a client can
//! tell them from an agent's), each with a message a person can act on. An unknown tool is the MCP specification's own
//! "invalid params" (-32602). An agent's own errors pass through unchanged:
//! the gateway forwards, it does not re-model.

use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use switchboard_client::{FailureClass, McpCallError};

/// Why the gateway could not serve one `tools/call`.
///
/// ```
/// use std::time::Duration;
/// use switchboard_gateway::CallError;
///
/// let error = CallError::Timeout { tool: "get_date".into(), after: Duration::from_secs(30) };
/// assert_eq!(error.code(), -32004);
/// assert_eq!(error.metric_label(), "timeout");
/// assert!(!error.retry_elsewhere(), "the agent may still be running it");
/// assert_eq!(error.message(), r#"tool "get_date": the agent did not answer within 30s"#);
///
/// // What an MCP client receives:
/// let data: rmcp::ErrorData = error.into();
/// assert_eq!(data.code.0, -32004);
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The gateway has not received its first routing snapshot yet.
    #[error("the gateway has no routing table yet: the registry is not reachable")]
    NotReady,
    /// No agent in the mesh has ever served a tool of this name.
    #[error("unknown tool {name:?}: no agent in the mesh serves it")]
    UnknownTool {
        /// The name the client asked for.
        name: String,
    },
    /// The tool is known but no replica is routable now (all gone, expired
    /// or disconnected).
    #[error("tool {tool:?}: no healthy replica serves it right now")]
    NoReplica {
        /// The exposed tool name.
        tool: String,
    },
    /// Replicas exist but every one's circuit breaker is open.
    #[error(
        "tool {tool:?}: every replica's circuit breaker is open: the agents keep failing; retry shortly"
    )]
    BreakersOpen {
        /// The exposed tool name.
        tool: String,
    },
    /// Every replica tried was unreachable: the request never reached one.
    #[error("tool {tool:?}: no replica reachable ({tried} tried): {last}")]
    Unreachable {
        /// The exposed tool name.
        tool: String,
        /// Replicas tried.
        tried: usize,
        /// The last replica's failure.
        last: String,
    },
    /// The agent did not answer within the call timeout.
    #[error("tool {tool:?}: the agent did not answer within {after:?}")]
    Timeout {
        /// The exposed tool name.
        tool: String,
        /// The call timeout.
        after: Duration,
    },
    /// The connection to the agent broke after the request was sent: the
    /// tool may have run, so the gateway did not try another replica.
    #[error("tool {tool:?}: the agent connection failed mid-call (it may have run): {message}")]
    FailedMidCall {
        /// The exposed tool name.
        tool: String,
        /// What failed.
        message: String,
    },
    /// The agent answered with an MCP error (bad arguments…), passed through.
    #[error("{}", .0.message)]
    Agent(ErrorData),
}

// The gateway's own codes, stable on the wire: clients and dashboards match them.
const NO_REPLICA: i32 = -32001;
const BREAKERS_OPEN: i32 = -32002;
const UNREACHABLE: i32 = -32003;
const TIMEOUT: i32 = -32004;
const FAILED_MID_CALL: i32 = -32005;
const NOT_READY: i32 = -32006;

// === impl CallError ===

impl CallError {
    /// The failure of one upstream attempt for the exposed `tool`, by the
    /// client crate's classification: only [`FailureClass::NeverSent`]
    /// becomes an error that [`CallError::retry_elsewhere`].
    ///
    /// ```
    /// use switchboard_client::McpCallError;
    /// use switchboard_gateway::CallError;
    ///
    /// let broke = McpCallError::Transport {
    ///     endpoint: "http://10.0.0.7:8080/mcp".into(),
    ///     message: "connection closed before message completed".into(),
    /// };
    /// let error = CallError::upstream("get_date", broke);
    /// assert!(matches!(error, CallError::FailedMidCall { .. }));
    /// assert_eq!(error.code(), -32005);
    /// ```
    pub fn upstream(tool: &str, error: McpCallError) -> Self {
        let tool = tool.to_owned();
        match error {
            McpCallError::Mcp { error, .. } => CallError::Agent(error),
            McpCallError::Timeout { timeout, .. } => CallError::Timeout { tool, after: timeout },
            error if error.class() == FailureClass::NeverSent => {
                CallError::Unreachable { tool, tried: 1, last: error.to_string() }
            }
            error => CallError::FailedMidCall { tool, message: error.to_string() },
        }
    }

    /// The JSON-RPC error code the client receives.
    pub fn code(&self) -> i32 {
        match self {
            CallError::NotReady => NOT_READY,
            CallError::UnknownTool { .. } => ErrorCode::INVALID_PARAMS.0,
            CallError::NoReplica { .. } => NO_REPLICA,
            CallError::BreakersOpen { .. } => BREAKERS_OPEN,
            CallError::Unreachable { .. } => UNREACHABLE,
            CallError::Timeout { .. } => TIMEOUT,
            CallError::FailedMidCall { .. } => FAILED_MID_CALL,
            CallError::Agent(error) => error.code.0,
        }
    }

    /// The message the client receives (lowercase, naming the tool).
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// True when the request certainly never reached an agent, so sending it
    /// to another replica (or again later) cannot run the tool twice. False
    /// when it may have run ([`CallError::Timeout`],
    /// [`CallError::FailedMidCall`]) and when an agent answered
    /// ([`CallError::Agent`]: another replica would answer the same).
    pub fn retry_elsewhere(&self) -> bool {
        match self {
            CallError::NotReady
            | CallError::UnknownTool { .. }
            | CallError::NoReplica { .. }
            | CallError::BreakersOpen { .. }
            | CallError::Unreachable { .. } => true,
            CallError::Timeout { .. } | CallError::FailedMidCall { .. } | CallError::Agent(_) => {
                false
            }
        }
    }

    /// The `outcome` label of `switchboard_gateway_requests_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CallError::NotReady => "not_ready",
            CallError::UnknownTool { .. } => "unknown_tool",
            CallError::NoReplica { .. } => "no_replica",
            CallError::BreakersOpen { .. } => "breaker_open",
            CallError::Unreachable { .. } => "unreachable",
            CallError::Timeout { .. } => "timeout",
            CallError::FailedMidCall { .. } => "failed",
            CallError::Agent(_) => "agent_error",
        }
    }

    /// The JSON-RPC error as sent to the client; an agent's error unchanged.
    pub fn into_error_data(self) -> ErrorData {
        match self {
            CallError::Agent(error) => error,
            other => ErrorData::new(ErrorCode(other.code()), other.message(), None),
        }
    }
}

impl From<CallError> for ErrorData {
    fn from(error: CallError) -> Self {
        error.into_error_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<CallError> {
        let tool = || "t".to_owned();
        vec![
            CallError::NotReady,
            CallError::UnknownTool { name: tool() },
            CallError::NoReplica { tool: tool() },
            CallError::BreakersOpen { tool: tool() },
            CallError::Unreachable { tool: tool(), tried: 2, last: "refused".into() },
            CallError::Timeout { tool: tool(), after: Duration::from_secs(1) },
            CallError::FailedMidCall { tool: tool(), message: "reset".into() },
            CallError::Agent(ErrorData::invalid_params("bad argument \"n\"", None)),
        ]
    }

    #[test]
    fn codes_and_labels_are_the_ones_clients_and_dashboards_match() {
        let table: Vec<(i32, &str, bool)> = every_kind()
            .iter()
            .map(|e| (e.code(), e.metric_label(), e.retry_elsewhere()))
            .collect();
        assert_eq!(
            table,
            [
                (-32006, "not_ready", true),
                (-32602, "unknown_tool", true),
                (-32001, "no_replica", true),
                (-32002, "breaker_open", true),
                (-32003, "unreachable", true),
                (-32004, "timeout", false),
                (-32005, "failed", false),
                (-32602, "agent_error", false),
            ]
        );
    }

    #[test]
    fn messages_name_the_tool_and_agent_errors_pass_through_unchanged() {
        for error in every_kind() {
            let message = error.message();
            let data = error.clone().into_error_data();
            assert_eq!(data.code.0, error.code());
            assert_eq!(data.message, message);
            match error {
                CallError::NotReady => {}
                CallError::Agent(_) => assert_eq!(message, "bad argument \"n\""),
                _ => assert!(message.contains("\"t\""), "names the tool: {message}"),
            }
        }
    }

    #[test]
    fn only_a_request_that_never_left_becomes_retryable_elsewhere() {
        let endpoint = || "http://127.0.0.1:1/mcp".to_owned();
        let refused = McpCallError::Unreachable { endpoint: endpoint(), message: "refused".into() };
        let broke = McpCallError::Transport { endpoint: endpoint(), message: "reset".into() };
        let slow = McpCallError::Timeout { endpoint: endpoint(), timeout: Duration::from_secs(1) };
        let answered = McpCallError::Mcp {
            endpoint: endpoint(),
            error: ErrorData::invalid_params("no", None),
        };
        let mapped: Vec<(&str, bool)> = [refused, broke, slow, answered]
            .into_iter()
            .map(|e| CallError::upstream("t", e))
            .map(|e| (e.metric_label(), e.retry_elsewhere()))
            .collect();
        assert_eq!(
            mapped,
            [("unreachable", true), ("failed", false), ("timeout", false), ("agent_error", false)]
        );
    }
}
