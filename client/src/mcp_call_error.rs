//! Why a call to an agent failed, and the one rule every caller (the
//! gateway, the SDK's dependency proxies) uses to decide whether another
//! replica may be tried.
//!
//! A tool may have side effects, so a call may go to a second agent only
//! when it certainly never reached the first: no session could be made, or
//! no TCP connection could be opened for the request. A connection that
//! broke after the request was written, or an agent that did not answer in
//! time, may have run the tool (or may still be running it): trying again
//! elsewhere could run it twice, so those failures go back to the caller.

use std::time::Duration;

/// Why a call to an agent failed.
///
/// ```
/// use std::time::Duration;
/// use switchboard_client::{FailureClass, McpCallError};
///
/// let refused = McpCallError::Unreachable {
///     endpoint: "http://127.0.0.1:9/mcp".into(),
///     message: "connection refused".into(),
/// };
/// assert_eq!(refused.class(), FailureClass::NeverSent);
/// assert!(refused.is_retryable_elsewhere());
///
/// let slow = McpCallError::Timeout {
///     endpoint: "http://127.0.0.1:9/mcp".into(),
///     timeout: Duration::from_secs(30),
/// };
/// assert!(!slow.is_retryable_elsewhere(), "it may still be running");
/// assert_eq!(slow.to_string(), "agent http://127.0.0.1:9/mcp did not answer within 30s");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum McpCallError {
    /// No session could be made, or no connection for the request: it never left.
    #[error("agent {endpoint} unreachable: {message}")]
    Unreachable {
        /// The agent's endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The session broke while the call was in flight: it may have run.
    #[error("agent {endpoint} connection failed: {message}")]
    Transport {
        /// The agent's endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// No answer in time.
    #[error("agent {endpoint} did not answer within {timeout:?}")]
    Timeout {
        /// The agent's endpoint.
        endpoint: String,
        /// The limit.
        timeout: Duration,
    },
    /// The agent answered with an MCP error (unknown tool, bad arguments…).
    #[error("agent {endpoint} answered with error {}: {}", .error.code.0, .error.message)]
    Mcp {
        /// The agent's endpoint.
        endpoint: String,
        /// The error as sent by the agent.
        error: rmcp::ErrorData,
    },
}

/// What a failure says about the request: did it reach the agent?
///
/// ```
/// use switchboard_client::FailureClass;
///
/// assert!(FailureClass::NeverSent.is_retryable_elsewhere());
/// for class in [FailureClass::MayHaveRun, FailureClass::Timeout, FailureClass::Mcp] {
///     assert!(!class.is_retryable_elsewhere(), "{class:?}");
/// }
/// assert_eq!(FailureClass::MayHaveRun.label(), "transport");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The request certainly never reached the agent (connection refused, no
    /// session): another replica may serve it.
    NeverSent,
    /// The connection broke after the request was sent: the tool may have run.
    MayHaveRun,
    /// The agent did not answer in time: the tool may have run, or still be running.
    Timeout,
    /// The agent answered with an MCP error: it is alive, and another replica
    /// would most likely answer the same.
    Mcp,
}

// === impl McpCallError ===

impl McpCallError {
    /// What this failure says about the request.
    pub fn class(&self) -> FailureClass {
        match self {
            McpCallError::Unreachable { .. } => FailureClass::NeverSent,
            McpCallError::Transport { .. } => FailureClass::MayHaveRun,
            McpCallError::Timeout { .. } => FailureClass::Timeout,
            McpCallError::Mcp { .. } => FailureClass::Mcp,
        }
    }

    /// True when the request certainly never reached the agent, so trying
    /// another replica cannot run the tool twice.
    pub fn is_retryable_elsewhere(&self) -> bool {
        self.class().is_retryable_elsewhere()
    }

    /// The endpoint of the agent that was called.
    pub fn endpoint(&self) -> &str {
        match self {
            McpCallError::Unreachable { endpoint, .. }
            | McpCallError::Transport { endpoint, .. }
            | McpCallError::Timeout { endpoint, .. }
            | McpCallError::Mcp { endpoint, .. } => endpoint,
        }
    }
}

// === impl FailureClass ===

impl FailureClass {
    /// True only for [`FailureClass::NeverSent`]: the one failure after which
    /// another replica may be tried.
    pub fn is_retryable_elsewhere(self) -> bool {
        self == FailureClass::NeverSent
    }

    /// A short name for spans and logs: `unreachable`, `transport`,
    /// `timeout` or `mcp_error`.
    pub fn label(self) -> &'static str {
        match self {
            FailureClass::NeverSent => "unreachable",
            FailureClass::MayHaveRun => "transport",
            FailureClass::Timeout => "timeout",
            FailureClass::Mcp => "mcp_error",
        }
    }
}
