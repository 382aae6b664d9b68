//! The crate's one error type.

/// Result of etcd client operations.
pub type EtcdResult<T> = Result<T, EtcdError>;

/// A failure talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The configuration cannot be used.
    #[error("etcd config: {0}")]
    Config(String),
    /// An endpoint is not a valid address.
    #[error("etcd endpoint {endpoint:?}: {source}")]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// Why it was refused.
        source: tonic::transport::Error,
    },
    /// A call failed.
    #[error("etcd {op}: {status}")]
    Call {
        /// The RPC, e.g. `txn`.
        op: &'static str,
        /// What etcd (or the transport) answered.
        status: tonic::Status,
    },
    /// A stream ended or answered something that breaks its contract.
    #[error("etcd {op}: {message}")]
    Protocol {
        /// The RPC, e.g. `watch`.
        op: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A watch's start revision is older than etcd's compaction.
    #[error("etcd watch: revision {requested} is compacted (oldest kept: {compact_revision})")]
    Compacted {
        /// The start revision asked for.
        requested: i64,
        /// The oldest revision etcd still has.
        compact_revision: i64,
    },
}

// === impl EtcdError ===

impl EtcdError {
    /// Whether the failure says nothing about the request's outcome being a
    /// refusal: etcd or the network is down or slow, and a later attempt may
    /// succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Call { status, .. } => matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled
                    | tonic::Code::Unknown
            ),
            Self::Protocol { .. } => true,
            Self::Config(_) | Self::Endpoint { .. } | Self::Compacted { .. } => false,
        }
    }

    pub(crate) fn call(op: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| Self::Call { op, status }
    }
}
