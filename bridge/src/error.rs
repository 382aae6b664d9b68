//! Errors of the bridge.

/// Why a bridge could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The configuration is wrong; nothing was started (names the line or
    /// the setting).
    #[error("{0}")]
    Config(String),
    /// A server could not be started or reached.
    #[error("server {server:?}: {reason}")]
    Upstream {
        /// The server's name.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// A server kept crashing: the restart limit was reached.
    #[error("server {server:?}: gave up after {restarts} restarts within {window:?}: {last}")]
    GaveUp {
        /// The server's name.
        server: String,
        /// Restarts counted in the window.
        restarts: usize,
        /// The window.
        window: std::time::Duration,
        /// How the last run ended.
        last: String,
    },
    /// Registering with the mesh failed.
    #[error("server {server:?}: {source}")]
    Agent {
        /// The server's name.
        server: String,
        /// The SDK's error.
        source: switchboard_agent::AgentError,
    },
}

impl BridgeError {
    /// Whether nothing was started because the configuration is wrong.
    pub fn is_config(&self) -> bool {
        matches!(self, BridgeError::Config(_))
    }
}

/// The bridge's result type.
pub type Result<T, E = BridgeError> = std::result::Result<T, E>;
