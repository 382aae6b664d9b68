//! The agent's MCP endpoint: rmcp's Streamable HTTP service in axum.
//!
//! Both protocol eras are served on `/mcp`. By default the server is
//! stateless (no legacy sessions to lose) and answers plain JSON rather than
//! SSE: with SSE-framed answers, small writes meet delayed ACKs and calls
//! stall for tens of milliseconds at regular intervals. A call that sends
//! notifications first (logging, progress) still gets an SSE answer. Agents
//! whose tools ask the client something mid-call (sampling, elicitation)
//! turn on legacy sessions: the client's answer must find the session that
//! asked.
//! rmcp accepts only loopback `Host` headers by default, so the allowed hosts
//! come from the advertised endpoint too — otherwise the gateway gets 403.
//! The handler is wrapped in [`Traced`]: tool calls get spans and metrics.
//! With TLS the port serves HTTPS only (and, with a client CA, requires
//! callers' certificates).
//!
//! Probes on the same port: `/healthz` answers 200 while the process serves
//! (a failing dependency is no reason to restart it), `/readyz` answers 503
//! while one of the agent's health checks fails; both list every check
//! (name, ok, last error, last run) and whether the agent is registered, as
//! JSON. Registration does not gate `/readyz`: an agent serves its tools
//! (degraded) before the registry is there.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::traced::Traced;

/// How the endpoint serves.
#[derive(Debug)]
pub struct Settings {
    /// Hosts accepted in the `Host` header.
    pub hosts: Vec<String>,
    /// Whether legacy-era clients get sessions.
    pub sessions: bool,
    /// The `serverInfo` announced when the handler announces rmcp's default.
    pub server_info: rmcp::model::Implementation,
    /// The agent's health checks, for the probes.
    pub health: Health,
    /// Whether the agent is registered, for the probes.
    pub registered: watch::Receiver<bool>,
}

/// Which probe.
#[derive(Debug, Clone, Copy)]
enum Probe {
    Health,
    Ready,
}

/// Hosts accepted in the `Host` header: loopback plus the advertised host.
pub fn allowed_hosts(endpoint_host: &str, endpoint_port: Option<u16>) -> Vec<String> {
    let mut hosts: Vec<String> =
        ["localhost", "127.0.0.1", "::1", "[::1]"].iter().map(|h| (*h).to_owned()).collect();
    hosts.push(endpoint_host.to_owned());
    if let Some(port) = endpoint_port {
        hosts.push(format!("{endpoint_host}:{port}"));
    }
    hosts
}

/// Serves `handler` on `listener` until `stop`; then lets open requests finish.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<switchboard_tls::ServerTls>,
    handler: S,
    settings: Settings,
    stop: CancellationToken,
) -> std::io::Result<()>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let sessions = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(settings.hosts)
        .with_json_response(true)
        .with_legacy_session_mode(settings.sessions)
        .with_cancellation_token(sessions.clone());
    let handler = Traced::new(handler).with_server_info(settings.server_info);
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let (health, registered) = (settings.health, settings.registered);
    let probe = move |which| {
        let (health, registered) = (health.clone(), registered.clone());
        move || async move { probe(which, &health, &registered) }
    };
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .route("/healthz", axum::routing::get(probe(Probe::Health)))
        .route("/readyz", axum::routing::get(probe(Probe::Ready)))
        .route("/metrics", axum::routing::get(|| async { crate::metrics::METRICS.render() }));
    let result = switchboard_tls::serve_http(listener, tls, app, stop.cancelled_owned()).await;
    sessions.cancel();
    result
}

/// A probe's answer: its status code and every check.
fn probe(which: Probe, health: &Health, registered: &watch::Receiver<bool>) -> Response {
    let ready = health.is_ready();
    let (code, status) = match which {
        Probe::Health => (StatusCode::OK, "ok"),
        Probe::Ready if ready => (StatusCode::OK, "ready"),
        Probe::Ready => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    };
    let body = serde_json::json!({
        "status": status,
        "ready": ready,
        "registered": *registered.borrow(),
        "checks": health.states(),
    });
    (code, axum::Json(body)).into_response()
}
