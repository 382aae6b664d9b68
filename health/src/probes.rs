//! HTTP probes shared by the registry and the gateway: `/healthz`, `/readyz`,
//! `/metrics`.
//!
//! Readiness follows agentgateway's idea: each subsystem that must finish
//! starting (store opened, listener bound, first snapshot built) registers a
//! [`ReadyTask`] up front and marks it ready when done. The process is ready
//! when no task is pending, so adding a subsystem never means editing a
//! central "is everything up?" function. A task dropped without
//! [`ReadyTask::ready`] stays pending: a subsystem that failed to start keeps
//! the process out of rotation instead of silently counting as ready.
//!
//! Liveness (`/healthz`) is deliberately trivial: it answers as long as the
//! HTTP server runs, so orchestrators restart the process only when it is
//! truly stuck.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;

/// Produces Prometheus text exposition.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Readiness as "every subsystem registers a task; ready when all have
/// finished". Cheap to clone; clones share the same tasks.
///
/// ```
/// use switchboard_health::Readiness;
///
/// let readiness = Readiness::new();
/// let store = readiness.register("store");
/// assert_eq!(readiness.pending(), ["store"]);
/// store.ready();
/// assert!(readiness.is_ready());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<Mutex<Pending>>,
}

/// One subsystem's pending startup; call [`ready`](Self::ready) when done.
#[derive(Debug)]
#[must_use = "a task that is never marked ready keeps the process not ready"]
pub struct ReadyTask {
    readiness: Readiness,
    id: u64,
}

#[derive(Debug, Default)]
struct Pending {
    next_id: u64,
    tasks: BTreeMap<u64, String>,
}

// === impl Readiness ===

impl Readiness {
    /// No tasks yet: ready until one is registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pending task named `name` (names need not be unique).
    pub fn register(&self, name: &str) -> ReadyTask {
        let mut pending = self.inner.lock();
        let id = pending.next_id;
        pending.next_id += 1;
        pending.tasks.insert(id, name.to_owned());
        ReadyTask { readiness: self.clone(), id }
    }

    /// Whether every registered task is ready.
    pub fn is_ready(&self) -> bool {
        self.inner.lock().tasks.is_empty()
    }

    /// Names of the pending tasks, in registration order.
    pub fn pending(&self) -> Vec<String> {
        self.inner.lock().tasks.values().cloned().collect()
    }
}

// === impl ReadyTask ===

impl ReadyTask {
    /// Marks this subsystem as started.
    pub fn ready(self) {
        self.readiness.inner.lock().tasks.remove(&self.id);
    }
}

/// An axum router with `GET /healthz` (200 `ok`), `GET /readyz` (200 `ready`,
/// or 503 naming the pending tasks) and `GET /metrics` (200, OpenMetrics
/// content type, body from `metrics`).
pub fn probe_router(readiness: Readiness, metrics: MetricsRenderer) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move { readyz(&readiness) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], metrics()) }
            }),
        )
}

/// A renderer encoding a `prometheus-client` registry in the text format.
pub fn registry_renderer(registry: Arc<prometheus_client::registry::Registry>) -> MetricsRenderer {
    Arc::new(move || {
        let mut body = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut body, &registry) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        body
    })
}

fn readyz(readiness: &Readiness) -> impl IntoResponse + use<> {
    let pending = readiness.pending();
    if pending.is_empty() {
        (StatusCode::OK, "ready".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: waiting for {}", pending.join(", ")))
    }
}

#[cfg(test)]
mod tests;
