//! The registry's error type and its one mapping to `tonic::Status`, plus the
//! rewrite of the statuses tonic itself answers when a request cannot be
//! decoded (see [`decode_failure`]).

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::store::StoreError;
use crate::validate::shown;

/// Prefix of every message of prost's `DecodeError`, which tonic answers as
/// `INTERNAL`.
const PROST_DECODE_ERROR: &str = "failed to decode Protobuf message";
/// tonic's message when a request body ends inside a message.
const TONIC_TRUNCATED: &str = "Unexpected EOF decoding stream.";
/// tonic's message when a unary request body carries no message at all.
const TONIC_MISSING: &str = "Missing request message.";

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
    #[error("agent {} not found", shown(.0))]
    AgentNotFound(String),
    /// The caller presented no credential, or one that is unknown, expired
    /// or revoked; the message says which.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this; the message names the
    /// role or right, the agent or the capability.
    #[error("{0}")]
    PermissionDenied(String),
    /// The token does not exist.
    #[error("token {} not found", shown(.0))]
    TokenNotFound(String),
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
            RegistryError::AgentNotFound(_) | RegistryError::TokenNotFound(_) => {
                Status::not_found(error.to_string())
            }
            RegistryError::Unauthenticated(_) => Status::unauthenticated(error.to_string()),
            RegistryError::PermissionDenied(_) => Status::permission_denied(error.to_string()),
            RegistryError::ShuttingDown => Status::unavailable(error.to_string()),
            RegistryError::Store(StoreError::Unavailable(_) | StoreError::Behind { .. }) => {
                Status::unavailable(error.to_string())
            }
            RegistryError::Store(_) => {
                // The chain goes to the log; clients get a generic message.
                tracing::error!(error = %error, "storage failure");
                Status::internal("internal storage error")
            }
        }
    }
}

/// The status to answer instead of the one tonic made when it could not
/// decode a request; `None` for every other status.
///
/// tonic answers a message over the decoding limit with `OUT_OF_RANGE`, and
/// bytes that are not the RPC's message with `INTERNAL`. Both are the
/// caller's doing, so the caller gets what gRPC says for them:
/// `RESOURCE_EXHAUSTED` naming the limit in bytes, and `INVALID_ARGUMENT`
/// with prost's description (which names the message and field that failed).
/// No handler of ours answers `OUT_OF_RANGE`, and our own `INTERNAL`s never
/// carry tonic's or prost's texts, so only tonic's decoder errors match.
pub fn decode_failure(status: &Status, max_message_bytes: usize) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::OutOfRange => {
            let found = message
                .split_once("found ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| format!(" of {n} bytes"))
                .unwrap_or_default();
            Some(Status::resource_exhausted(format!(
                "request message{found} is larger than the limit of {max_message_bytes} bytes \
                 (max_message_bytes)"
            )))
        }
        Code::Internal if message.starts_with(PROST_DECODE_ERROR) => {
            Some(Status::invalid_argument(format!(
                "request is not a valid message for this rpc: {message}"
            )))
        }
        Code::Internal if message == TONIC_TRUNCATED => Some(Status::invalid_argument(
            "request is not a valid message for this rpc: the body ends inside a grpc frame",
        )),
        Code::Internal if message == TONIC_MISSING => {
            Some(Status::invalid_argument("request carries no message"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_decoder_statuses_become_the_callers_codes() {
        let too_large = Status::out_of_range(
            "Error, decoded message length too large: found 5242880 bytes, the limit is: 4194304 bytes",
        );
        let mapped = decode_failure(&too_large, 4_194_304).unwrap();
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        assert_eq!(
            mapped.message(),
            "request message of 5242880 bytes is larger than the limit of 4194304 bytes \
             (max_message_bytes)"
        );

        let garbage = Status::internal(
            "failed to decode Protobuf message: GetAgentRequest.agent_id: invalid string value: \
             data is not UTF-8 encoded",
        );
        let mapped = decode_failure(&garbage, 1).unwrap();
        assert_eq!(mapped.code(), Code::InvalidArgument);
        assert!(mapped.message().contains("GetAgentRequest.agent_id"), "{mapped:?}");

        assert_eq!(
            decode_failure(&Status::internal(TONIC_TRUNCATED), 1).unwrap().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn our_own_statuses_are_left_alone() {
        let ours: Status = RegistryError::Store(StoreError::Invalid("x".into())).into();
        assert!(decode_failure(&ours, 1).is_none());
        assert!(decode_failure(&Status::not_found("agent \"a\" not found"), 1).is_none());
    }

    #[test]
    fn not_found_quotes_a_long_id_cut_short() {
        let message = RegistryError::AgentNotFound("a".repeat(5000)).to_string();
        assert!(message.len() < 200, "{message}");
    }
}
