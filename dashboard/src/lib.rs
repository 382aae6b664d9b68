//! A read-only web dashboard of the mesh, served under `/ui` by whichever
//! HTTP server mounts [`router`] (the gateway, the registry's admin port).
//!
//! The page is one HTML file, one JavaScript module and one stylesheet, all
//! compiled into the binary: it must work on a machine with no internet, so
//! nothing is fetched from a CDN. No front-end framework: the views are a few
//! hundred lines of plain DOM and SVG code, and a framework would add a build
//! step and more code than it saves.
//!
//! Data comes from four routes:
//! - `/ui/events`: server-sent events relaying the registry's Watch (snapshot,
//!   then changes). Each event that is a resume point carries an id
//!   `epoch:revision`, so a browser reconnecting with `Last-Event-ID` gets
//!   exactly the events after it, without loss or duplicates;
//! - `/ui/api/agents/{id}`: an agent, its current wiring, and the reason per
//!   candidate provider for each dependency;
//! - `/ui/api/heartbeats`: every agent's last heartbeat time (heartbeats are
//!   not Watch events);
//! - `/ui/api/gateway`: the gateway's own counters, when mounted on a gateway.
//!
//! Every route first passes the mounting server's [`Admission`] check (its
//! `Host`/`Origin` rule now; a viewer identity once authentication exists).

mod admission;
mod agent_json;
mod api;
mod assets;
mod error;
mod events;
mod metrics_json;

use std::sync::Arc;

use switchboard_health::MetricsRenderer;
use tonic::transport::Channel;

pub use admission::Admission;
pub use error::DashboardError;

/// What the dashboard reads from.
///
/// ```
/// use switchboard_dashboard::{DashboardConfig, router};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), switchboard_client::ConnectError> {
/// let channel = switchboard_client::connect_lazy("127.0.0.1:7600")?;
/// let app: axum::Router = router(DashboardConfig::new(channel));
/// # drop(app);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DashboardConfig {
    /// The registry whose Watch, GetAgent and ResolveDependencies feed the page.
    pub registry: Channel,
    /// The gateway's metrics, rendered as OpenMetrics text; `None` where no
    /// gateway runs in the process (the Gateway view then says so).
    pub gateway_metrics: Option<MetricsRenderer>,
    /// Who may see the dashboard; `None` admits every request, so a server
    /// reachable beyond loopback must set one.
    pub admission: Option<Admission>,
}

/// The dashboard's routes: `/ui`, its assets, `/ui/events` and `/ui/api/*`.
///
/// ```
/// use switchboard_dashboard::{DashboardConfig, router};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), switchboard_client::ConnectError> {
/// let channel = switchboard_client::connect_lazy("127.0.0.1:7600")?;
/// let app = axum::Router::new()
///     .route("/healthz", axum::routing::get(|| async { "ok" }))
///     .merge(router(DashboardConfig::new(channel)));
/// # drop(app);
/// # Ok(())
/// # }
/// ```
pub fn router(config: DashboardConfig) -> axum::Router {
    let state = Arc::new(config);
    let admit = axum::middleware::from_fn_with_state(state.clone(), admission::admit);
    assets::router().merge(events::router(state.clone())).merge(api::router(state)).layer(admit)
}

// === impl DashboardConfig ===

impl DashboardConfig {
    /// A dashboard of the registry behind `registry`, without gateway counters.
    pub fn new(registry: Channel) -> Self {
        Self { registry, gateway_metrics: None, admission: None }
    }

    /// Adds the gateway's counters to the Gateway view.
    pub fn with_gateway_metrics(mut self, metrics: MetricsRenderer) -> Self {
        self.gateway_metrics = Some(metrics);
        self
    }

    /// Checks every request with `admission` before answering it.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = Some(admission);
        self
    }
}

impl std::fmt::Debug for DashboardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardConfig")
            .field("gateway_metrics", &self.gateway_metrics.is_some())
            .field("admission", &self.admission.is_some())
            .finish_non_exhaustive()
    }
}
