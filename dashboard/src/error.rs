//! The dashboard's one error type, mapped to an HTTP response in one place:
//! the browser shows the message, so it names the thing that was wrong.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// Why a dashboard request failed.
///
/// ```
/// use switchboard_dashboard::DashboardError;
///
/// let error = DashboardError::BadLastEventId("x".into());
/// assert_eq!(error.to_string(), "bad Last-Event-ID \"x\": want epoch:revision");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The `Last-Event-ID` header is not `epoch:revision`.
    #[error("bad Last-Event-ID {0:?}: want epoch:revision")]
    BadLastEventId(String),
    /// The mounting server's admission check refused the request.
    #[error("{0}")]
    Forbidden(String),
    /// No gateway runs in this process.
    #[error("no gateway is served here: open /ui on the gateway's port for its counters")]
    NoGateway,
    /// The registry refused or failed the call.
    #[error("registry: {0}")]
    Registry(#[from] tonic::Status),
}

// === impl DashboardError ===

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadLastEventId(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NoGateway => StatusCode::NOT_FOUND,
            Self::Registry(status) => match status.code() {
                tonic::Code::NotFound => StatusCode::NOT_FOUND,
                tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            },
        };
        let message = match &self {
            // Internal failures keep their detail in the log, not on the page.
            Self::Registry(s) if status == StatusCode::BAD_GATEWAY => {
                tracing::warn!(code = ?s.code(), message = s.message(), "dashboard: registry call failed");
                "registry unavailable".to_owned()
            }
            Self::Registry(s) => s.message().to_owned(),
            other => other.to_string(),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
