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

use std::sync::Arc;

use axum::serve::ListenerExt as _;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/metrics", axum::routing::get(|| async { crate::metrics::METRICS.render() }));
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let result = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    sessions.cancel();
    result
}
