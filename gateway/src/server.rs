//! Serving the gateway: `/mcp` (both MCP eras, rmcp's Streamable HTTP
//! service), `/healthz`, `/readyz` (ready once the first routing snapshot is
//! in), `/metrics` and the dashboard at `/ui` (unless `ui` is off), all on
//! one HTTP port.
//!
//! Legacy clients get sessions (so `list_changed` can reach them on their
//! SSE stream); 2026-07-28 requests are stateless and answered as plain JSON.
//! `Host` and `Origin` are validated against loopback plus what the operator
//! configured (DNS-rebinding protection; `*` for deployments behind a proxy).
//!
//! With `tls` set the port serves HTTPS only; the gateway's own clients (the
//! registry's Watch, agents) use `client_tls`.

use std::future::Future;
use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use switchboard_client::{WatchCache, WatchCacheConfig};
use switchboard_health::{MetricsRenderer, Readiness, probe_router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::forward::{self, App};
use crate::guard::{Guard, LOOPBACK_HOSTS, LOOPBACK_ORIGINS};
use crate::{Gateway, GatewayConfig, GatewayHandler};

/// A gateway error before or while serving.
///
/// ```
/// use std::time::Duration;
/// use switchboard_gateway::{GatewayConfig, GatewayError, serve};
///
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let config = GatewayConfig { call_timeout: Duration::ZERO, ..GatewayConfig::default() };
/// let error = serve(config, listener, std::future::pending()).await.unwrap_err();
/// assert!(matches!(error, GatewayError::Config(_)), "checked before serving: {error}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is wrong.
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    /// The registry address is unusable.
    #[error(transparent)]
    Registry(#[from] switchboard_client::ConnectError),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the gateway on `listener` until `shutdown` completes: follows the
/// registry's Watch, and answers `/mcp`, `/healthz`, `/readyz` and
/// `/metrics`.
///
/// ```no_run
/// use switchboard_gateway::{GatewayConfig, serve};
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Port 0: the OS picks one, as tests do.
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// println!("MCP at http://{}/mcp", listener.local_addr()?);
/// let stop = CancellationToken::new();
/// let config = GatewayConfig { registry: "127.0.0.1:7600".into(), ..GatewayConfig::default() };
/// serve(config, listener, stop.cancelled_owned()).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    config.validate().map_err(GatewayError::Config)?;
    let addrs = switchboard_client::RegistryAddrs::parse(&config.registry)?
        .with_tls(config.client_tls.clone());
    let registries = switchboard_client::Registries::resolve(addrs).await?;
    // The dashboard and the API-key checks read the replica the gateway
    // starts on.
    let channel = registries.current().channel;
    let watch =
        WatchCacheConfig { bearer: config.registry_token.clone(), ..WatchCacheConfig::default() };
    let cache = WatchCache::spawn_on(registries, watch);
    let access = if config.access.any_enabled() {
        let access = crate::access::Access::new(config.access.clone(), channel.clone())
            .map_err(GatewayError::Config)?;
        Some(Arc::new(access))
    } else {
        None
    };
    let gateway = Gateway::with_access(config.clone(), access.clone());
    if let Some(access) = &access {
        access.start(gateway.metrics());
    }
    let readiness = Readiness::new();
    let first_snapshot = readiness.register("routing-snapshot");
    let mut views = cache.subscribe();
    tokio::spawn(async move {
        if views.wait_for(|view| view.complete).await.is_ok() {
            first_snapshot.ready();
        }
    });
    let following = tokio::spawn(gateway.clone().follow(cache));

    let sessions = CancellationToken::new();
    // The dashboard shares the gateway's registry channel, reads its
    // counters, and is held to the same Host/Origin rule as /mcp.
    let counted = gateway.clone();
    let ui = config.ui.then(|| {
        let metrics: MetricsRenderer = Arc::new(move || counted.metrics().render());
        let guard = Guard::new(&config.allowed_hosts, &config.allowed_origins);
        let admission: switchboard_dashboard::Admission =
            Arc::new(move |headers| guard.refusal(headers).map_or(Ok(()), Err));
        switchboard_dashboard::DashboardConfig::new(channel)
            .with_gateway_metrics(metrics)
            .with_admission(admission)
    });
    let app = router(&config, gateway, readiness, sessions.clone())
        .merge(ui.map(switchboard_dashboard::router).unwrap_or_default());
    let result = switchboard_tls::serve_http(listener, config.tls.clone(), app, shutdown).await;
    sessions.cancel();
    following.abort();
    result.map_err(GatewayError::Io)
}

/// The gateway's HTTP routes, for embedding in another axum server;
/// `gateway` is fed by the caller ([`Gateway::follow`] or [`Gateway::apply`]).
///
/// ```
/// use switchboard_gateway::{Gateway, GatewayConfig, router};
/// use switchboard_health::Readiness;
/// use tokio_util::sync::CancellationToken;
///
/// let config = GatewayConfig::default();
/// let gateway = Gateway::new(config.clone());
/// let app: axum::Router = router(&config, gateway, Readiness::new(), CancellationToken::new());
/// let app = app.route("/version", axum::routing::get(|| async { "1.0" }));
/// # drop(app);
/// ```
pub fn router(
    config: &GatewayConfig,
    gateway: Gateway,
    readiness: Readiness,
    sessions: CancellationToken,
) -> axum::Router {
    let stop = sessions.clone();
    let mut mcp_config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_legacy_session_mode(true)
        .with_cancellation_token(sessions);
    mcp_config = if config.allowed_hosts.iter().any(|h| h == "*") {
        mcp_config.disable_allowed_hosts()
    } else {
        let hosts = LOOPBACK_HOSTS
            .iter()
            .map(|h| (*h).to_owned())
            .chain(config.allowed_hosts.iter().cloned());
        mcp_config.with_allowed_hosts(hosts)
    };
    mcp_config = if config.allowed_origins.iter().any(|o| o == "*") {
        mcp_config.disable_allowed_origins()
    } else {
        let origins = LOOPBACK_ORIGINS
            .iter()
            .map(|o| (*o).to_owned())
            .chain(config.allowed_origins.iter().cloned());
        mcp_config.with_allowed_origins(origins).enforce_origin_validation()
    };
    let gateway_metadata = gateway.access().and_then(|access| access.metadata());
    let handler = GatewayHandler::new(gateway.clone());
    let sessions = Arc::new(LocalSessionManager::default());
    let service =
        StreamableHttpService::new(move || Ok(handler.clone()), sessions.clone(), mcp_config);
    let app = Arc::new(App::new(config, gateway.clone(), service, sessions));
    // Session streams relayed from agents end when the gateway stops serving.
    let stopping = gateway.clone();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            stop.cancelled().await;
            stopping.upstream().stop();
        });
    }
    let metrics: MetricsRenderer = Arc::new(move || gateway.metrics().render());
    let mcp = axum::routing::any(forward::handle).with_state(app);
    let mut routes = axum::Router::new().route("/mcp", mcp);
    if let Some(document) = gateway_metadata {
        // RFC 9728: at the root, and with the resource's path appended.
        let document = Arc::new(document);
        let serve = move || {
            let document = document.clone();
            async move { axum::Json((*document).clone()) }
        };
        routes = routes
            .route("/.well-known/oauth-protected-resource", axum::routing::get(serve.clone()))
            .route("/.well-known/oauth-protected-resource/{*path}", axum::routing::get(serve));
    }
    routes.merge(probe_router(readiness, metrics))
}
