//! Who may see the dashboard. Every dashboard route passes one check before
//! it is answered, supplied by the server that mounts the dashboard: today
//! its `Host`/`Origin` rule, so a page on another site cannot read the mesh
//! through a browser on the operator's machine (DNS rebinding). When
//! authentication exists, requiring a viewer identity belongs in the same
//! check; the dashboard is read-only, so viewing is the only right it needs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;

use crate::{DashboardConfig, DashboardError};

/// Decides from a request's headers whether it may see the dashboard: `Err`
/// carries the reason, answered with HTTP 403.
///
/// ```
/// use std::sync::Arc;
/// use switchboard_dashboard::Admission;
///
/// let loopback_only: Admission = Arc::new(|headers| {
///     let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
///     if host.starts_with("127.0.0.1:") { Ok(()) } else { Err(format!("forbidden: host {host:?}")) }
/// });
/// # drop(loopback_only);
/// ```
pub type Admission = Arc<dyn Fn(&HeaderMap) -> Result<(), String> + Send + Sync>;

/// Middleware in front of every dashboard route.
pub(crate) async fn admit(
    State(config): State<Arc<DashboardConfig>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(admission) = &config.admission
        && let Err(reason) = admission(request.headers())
    {
        return DashboardError::Forbidden(reason).into_response();
    }
    next.run(request).await
}
