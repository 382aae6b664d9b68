//! The one error type of the load generator.

/// Why a benchmark could not run (a measurement that merely looks bad is
/// not an error: it is reported).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options make no sense (the message names the option).
    #[error("bad option: {0}")]
    Option(String),
    /// The registry address is unusable or unreachable.
    #[error(transparent)]
    Connect(#[from] switchboard_client::ConnectError),
    /// A gRPC call failed where the scenario needs it to succeed.
    #[error("{what}: {status}")]
    Rpc {
        /// What was being done.
        what: String,
        /// The status returned.
        status: tonic::Status,
    },
    /// A child process could not be started or did not come up.
    #[error("process {program}: {message}")]
    Process {
        /// The program.
        program: String,
        /// What failed, with its last stderr lines when there are some.
        message: String,
    },
    /// Waiting for something took longer than its bound.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: std::time::Duration,
    },
    /// Local I/O failed (temp dirs, /proc).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A scenario stopped on an error.
    #[error("{scenario}: {source}")]
    Scenario {
        /// The scenario's name.
        scenario: &'static str,
        /// Why it stopped.
        source: Box<BenchError>,
    },
    /// An MCP call failed where the scenario needs it to succeed.
    #[error("mcp: {0}")]
    Mcp(String),
}

/// Result alias of the load generator.
pub type BenchResult<T> = Result<T, BenchError>;

impl BenchError {
    /// A failed gRPC call, with what it was for.
    pub fn rpc(what: impl Into<String>, status: tonic::Status) -> Self {
        BenchError::Rpc { what: what.into(), status }
    }

    /// A local I/O failure, with what it was for.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io { what: what.into(), source }
    }

    /// A timeout.
    pub fn timeout(what: impl Into<String>, after: std::time::Duration) -> Self {
        BenchError::Timeout { what: what.into(), after }
    }
}
