//! Errors of the agent runtime.

/// Why an agent could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is wrong (names the setting).
    #[error("invalid agent configuration: {0}")]
    Config(String),
    /// The registry could not be reached at start and the agent requires it
    /// (`require_registry`), or it answered in a way no retry can fix.
    #[error("registry unreachable at start: {0}")]
    RegistryUnreachable(String),
    /// The registry refused the registration (names the field).
    #[error("registration rejected: {0}")]
    Rejected(String),
    /// The agent's own endpoint could not be listed.
    #[error("cannot list what the agent serves: {0}")]
    Introspect(String),
    /// The MCP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
    /// Logging or trace export could not be set up.
    #[error(transparent)]
    Telemetry(#[from] switchboard_telemetry::TelemetryError),
}
