//! The registry's error type and its one mapping to `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::store::StoreError;

/// Result of registry operations.
pub type RegistryResult<T> = Result<T, RegistryError>;

/// Everything that can go wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A request field is malformed or out of limits.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// Path of the field, e.g. `tools[2].dependencies[0].version`.
        field: String,
        /// What is wrong with it, naming the value.
        message: String,
    },
    /// The agent does not exist.
    #[error("agent {0:?} not found")]
    AgentNotFound(String),
    /// The storage layer failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The registry is shutting down.
    #[error("registry is shutting down")]
    ShuttingDown,
}

impl RegistryError {
    /// An `InvalidArgument` for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), message: message.into() }
    }
}

impl From<RegistryError> for Status {
    fn from(error: RegistryError) -> Self {
        match &error {
            RegistryError::InvalidArgument { field, message } => Status::with_error_details(
                Code::InvalidArgument,
                error.to_string(),
                ErrorDetails::with_bad_request_violation(field.clone(), message.clone()),
            ),
            RegistryError::AgentNotFound(_) => Status::not_found(error.to_string()),
            RegistryError::ShuttingDown => Status::unavailable(error.to_string()),
            RegistryError::Store(_) => {
                // The chain goes to the log; clients get a generic message.
                tracing::error!(error = %error, "storage failure");
                Status::internal("internal storage error")
            }
        }
    }
}
