//! An MCP endpoint served the way agents serve theirs, without registering
//! it: for a process that registers its endpoint under agents that come and
//! go (the bridge re-registers when a server's lists change) while the
//! endpoint itself must stay put, so clients' sessions survive.

use rmcp::ServerHandler;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use tokio::sync::watch;

use crate::health::Health;
use crate::server;

/// Serves `handler` on `listener` until `stop`, exactly as an agent's
/// endpoint is served: `/mcp` in both protocol eras (legacy sessions when
/// `sessions`), plain JSON answers, `/healthz`, and the `Host` header
/// checked against loopback plus `advertised` (the URL registered for it).
/// `server_info` is announced when the handler announces rmcp's default.
/// With `tls`, HTTPS only (advertise an `https://` URL).
pub async fn serve_endpoint<S>(
    listener: TcpListener,
    tls: Option<switchboard_tls::ServerTls>,
    handler: S,
    advertised: String,
    sessions: bool,
    server_info: rmcp::model::Implementation,
    stop: CancellationToken,
) -> std::io::Result<()>
where
    S: ServerHandler + Clone + Send + Sync + 'static,
{
    let uri: tonic::codegen::http::Uri = advertised.parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("endpoint {advertised:?} is not a URL"),
        )
    })?;
    let hosts = server::allowed_hosts(uri.host().unwrap_or("127.0.0.1"), uri.port_u16());
    // No health checks of its own, and "registered" for the probes: the
    // endpoint is served whether or not an agent is registered under it.
    let (health, _checking) = Health::start(Vec::new(), &stop);
    let (_registered, registered) = watch::channel(true);
    let settings = server::Settings { hosts, sessions, server_info, health, registered };
    server::serve(listener, tls, handler, settings, stop).await
}
