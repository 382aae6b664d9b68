//! The bridge's MCP endpoint for a stdio server: one per life of the
//! program, independent of the registrations that advertise it, so a
//! re-registration (the server's lists changed) keeps every client session.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::forward::Forward;

/// How long open requests may take once the endpoint stops.
const DRAIN: Duration = Duration::from_secs(2);

/// A serving endpoint.
pub struct Endpoint {
    /// The URL registered for it.
    pub url: String,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

/// The endpoint serves HTTPS with the files every component takes
/// (`SWITCHBOARD_TLS_CERT`, `SWITCHBOARD_TLS_KEY`, `SWITCHBOARD_TLS_CLIENT_CA`),
/// as the agent the bridge registers does.
fn tls_config_from_env() -> Option<switchboard_tls::ServerTlsConfig> {
    let env =
        |key: &str| std::env::var_os(key).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let (Some(cert), Some(key)) = (env("SWITCHBOARD_TLS_CERT"), env("SWITCHBOARD_TLS_KEY")) else {
        return None;
    };
    Some(switchboard_tls::ServerTlsConfig {
        cert,
        key,
        client_ca: env("SWITCHBOARD_TLS_CLIENT_CA"),
    })
}

fn tls_from_env() -> Result<Option<switchboard_tls::ServerTls>, String> {
    tls_config_from_env()
        .map(|config| switchboard_tls::ServerTls::load(&config).map_err(|error| error.to_string()))
        .transpose()
}

/// Whether the bridge's endpoints serve HTTPS (a certificate and key are
/// set in the environment), for the exposure check before they open.
pub fn serves_tls() -> bool {
    tls_config_from_env().is_some()
}

// === impl Endpoint ===

impl Endpoint {
    /// Serves `handler` on `listen` (`IP:PORT`, port 0 for any).
    pub async fn start(listen: &str, handler: Forward, name: &str) -> Result<Self, String> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
        let local = listener.local_addr().map_err(|error| error.to_string())?;
        let tls = tls_from_env()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{local}/mcp");
        let stop = CancellationToken::new();
        let info = rmcp::model::Implementation::new(name, env!("CARGO_PKG_VERSION"));
        let task = tokio::spawn(switchboard_agent::serve_endpoint(
            listener,
            tls,
            handler,
            url.clone(),
            true,
            info,
            stop.clone(),
        ));
        Ok(Self { url, stop, task })
    }

    /// Stops accepting, lets open requests finish (bounded), frees the port.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if tokio::time::timeout(DRAIN, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}
