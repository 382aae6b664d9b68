//! A whole registry process, assembled in one place so the `switchboard`
//! binary and the tests start it the same way: open the store, load it into
//! a [`Registry`], bind the gRPC and admin ports, serve, and stop in the
//! order that loses nothing.
//!
//! Ports are bound only after the store is loaded, so a client that sees the
//! port open is answered from the stored state, never from an empty one.
//! Starting is split in two ([`load`], then [`LoadedRegistry::serve`]) for
//! callers that must change the state before any client can see it;
//! [`serve`] does both.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_health::Readiness;
use switchboard_tls::ServerTls;
use tokio::net::TcpListener;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::DropGuard;

use crate::config::RegistryConfig;
use crate::error::RegistryError;
use crate::registry::{Registry, RegistryTasks};
use crate::server::{self, ServeError};
use crate::store::{EtcdStore, SledStore, Store, StoreError};

/// Longest wait for in-flight calls after a stop: long-lived streams are
/// told to end first, so only unary calls can still be running.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The bootstrap admin token's file in a sled data directory, unless the
/// configuration names another.
pub const BOOTSTRAP_TOKEN_FILE: &str = "admin.token";

/// Which store the registry keeps its state in.
#[non_exhaustive]
pub enum StoreSpec {
    /// The embedded sled store in `data_dir` (created when missing).
    Sled {
        /// Directory of the store.
        data_dir: PathBuf,
    },
    /// The etcd store under `prefix` (created when empty).
    Etcd {
        /// How to reach etcd.
        config: switchboard_etcd::EtcdConfig,
        /// Key prefix of the store, e.g. `/switchboard`.
        prefix: String,
    },
    /// A store the caller opened, e.g. one that injects faults.
    Opened(Arc<dyn Store>),
}

/// Where a port comes from: an address to bind, or a listener the caller
/// bound already (to keep a port across restarts, or to know it in advance).
#[derive(Debug)]
pub enum Listen {
    /// Bind this address once the store is loaded (port 0: any free port).
    Addr(SocketAddr),
    /// Serve on this listener.
    Listener(TcpListener),
}

/// A failure to start or to stop a registry.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store could not be opened.
    #[error("opening the store")]
    OpenStore(#[source] StoreError),
    /// The registry could not load the store or rejected its configuration.
    #[error("starting the registry")]
    Start(#[source] RegistryError),
    /// A port could not be bound.
    #[error("{name}: cannot bind {addr}")]
    Bind {
        /// Which port: `registry-grpc` or `registry-admin`.
        name: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A server failed while serving.
    #[error("{name}")]
    Serve {
        /// Which server: `registry-grpc server` or `registry-admin server`.
        name: &'static str,
        /// Why.
        #[source]
        source: ServeError,
    },
    /// A listener handed in has no local address.
    #[error("{name}: the listener has no local address")]
    LocalAddr {
        /// Which port: `registry-grpc` or `registry-admin`.
        name: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A task of the registry panicked.
    #[error("{name} task")]
    Task {
        /// Which task: `store open`, `registry-grpc server`, `registry-admin server`.
        name: &'static str,
        /// The panic.
        #[source]
        source: JoinError,
    },
}

/// A registry loaded from its store but not serving yet: change its state
/// through [`registry`](Self::registry), then [`serve`](Self::serve) it.
pub struct LoadedRegistry {
    /// The registry core.
    pub registry: Registry,
    readiness: Readiness,
    tasks: RegistryTasks,
    tls: Option<ServerTls>,
    _close_on_drop: DropGuard,
}

/// A registry serving its gRPC and admin ports. Dropping it starts a
/// shutdown without waiting for it; [`stop`](Self::stop) waits.
pub struct RunningRegistry {
    /// Where the gRPC services (Registry, Heartbeat, Watch, health,
    /// reflection) listen.
    pub grpc_addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// The registry core.
    pub registry: Registry,
    grpc: JoinHandle<Result<(), ServeError>>,
    admin: JoinHandle<Result<(), ServeError>>,
    tasks: RegistryTasks,
    _close_on_drop: DropGuard,
}

/// Opens the store, loads the registry and serves it on `grpc` and `admin`
/// (addresses to bind, or listeners already bound), the way `switchboard
/// registry` does; stop it with [`RunningRegistry::stop`].
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// use switchboard_registry::{RegistryConfig, StoreSpec};
///
/// # async fn run() -> Result<(), switchboard_registry::RunError> {
/// let running = switchboard_registry::serve(
///     RegistryConfig::default(),
///     StoreSpec::Sled { data_dir: "./switchboard-data".into() },
///     SocketAddr::from(([127, 0, 0, 1], 7600)),
///     SocketAddr::from(([127, 0, 0, 1], 7601)),
/// )
/// .await?;
/// println!("registry on {}, probes on {}", running.grpc_addr, running.admin_addr);
/// let asked = running.until_stopped(async { tokio::signal::ctrl_c().await.ok(); }).await;
/// running.stop().await?;
/// assert!(asked, "closed itself after a storage failure");
/// # Ok(()) }
/// ```
pub async fn serve(
    config: RegistryConfig,
    store: StoreSpec,
    grpc: impl Into<Listen>,
    admin: impl Into<Listen>,
) -> Result<RunningRegistry, RunError> {
    load(config, store).await?.serve(grpc, admin).await
}

/// Opens the store and loads the registry without serving it, so a caller
/// can change the state before any client sees it.
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// use switchboard_registry::{RegistryConfig, StoreSpec};
///
/// # async fn run(seed: switchboard_proto::v1::RegisterAgentRequest) -> anyhow::Result<()> {
/// let store = StoreSpec::Sled { data_dir: "./switchboard-data".into() };
/// let loaded = switchboard_registry::load(RegistryConfig::default(), store).await?;
/// loaded.registry.register(seed).await?;
/// let any = SocketAddr::from(([127, 0, 0, 1], 0));
/// let running = loaded.serve(any, any).await?;
/// # running.stop().await?;
/// # Ok(()) }
/// ```
pub async fn load(
    mut config: RegistryConfig,
    store: StoreSpec,
) -> Result<LoadedRegistry, RunError> {
    if let (None, StoreSpec::Sled { data_dir }) = (&config.auth.bootstrap_token_file, &store) {
        config.auth.bootstrap_token_file = Some(data_dir.join(BOOTSTRAP_TOKEN_FILE));
    }
    let readiness = Readiness::new();
    let loading = readiness.register("registry-store");
    let store = store.open().await?;
    let (registry, tasks) = Registry::start(config, store).await.map_err(RunError::Start)?;
    loading.ready();
    if let Some(reachable) = registry.store_reachable() {
        tokio::spawn(follow_store(reachable, readiness.clone(), registry.closing()));
    }
    let _close_on_drop = registry.closing().drop_guard();
    Ok(LoadedRegistry { registry, readiness, tasks, tls: None, _close_on_drop })
}

/// Holds the registry not ready (`store` pending in `/readyz`) while the
/// store cannot take writes, until the registry closes.
async fn follow_store(
    mut reachable: tokio::sync::watch::Receiver<bool>,
    readiness: Readiness,
    closing: tokio_util::sync::CancellationToken,
) {
    let mut pending: Option<switchboard_health::ReadyTask> = None;
    loop {
        let up = *reachable.borrow_and_update();
        match (up, pending.take()) {
            (true, Some(task)) => task.ready(),
            (true, None) => {}
            (false, task) => pending = Some(task.unwrap_or_else(|| readiness.register("store"))),
        }
        tokio::select! {
            () = closing.cancelled() => return,
            changed = reachable.changed() => if changed.is_err() { return },
        }
    }
}

// === impl StoreSpec ===

impl StoreSpec {
    async fn open(self) -> Result<Arc<dyn Store>, RunError> {
        match self {
            // Opening sled reads its log and may wait for a lock a store
            // just closed in this process still holds: keep it off the
            // async workers.
            StoreSpec::Sled { data_dir } => {
                let opened = tokio::task::spawn_blocking(move || SledStore::open(&data_dir))
                    .await
                    .map_err(|source| RunError::Task { name: "store open", source })?;
                Ok(Arc::new(opened.map_err(RunError::OpenStore)?))
            }
            StoreSpec::Etcd { config, prefix } => {
                let opened = EtcdStore::open(config, &prefix).await;
                Ok(Arc::new(opened.map_err(RunError::OpenStore)?))
            }
            StoreSpec::Opened(store) => Ok(store),
        }
    }
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Sled { data_dir } => {
                f.debug_struct("Sled").field("data_dir", data_dir).finish()
            }
            StoreSpec::Etcd { config, prefix } => f
                .debug_struct("Etcd")
                .field("endpoints", &config.endpoints)
                .field("prefix", prefix)
                .finish(),
            StoreSpec::Opened(_) => f.write_str("Opened(..)"),
        }
    }
}

// === impl Listen ===

impl Listen {
    /// The listener and its local address.
    async fn bind(self, name: &'static str) -> Result<(TcpListener, SocketAddr), RunError> {
        let listener = match self {
            Listen::Addr(addr) => TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Bind { name, addr, source })?,
            Listen::Listener(listener) => listener,
        };
        let local = listener.local_addr().map_err(|source| RunError::LocalAddr { name, source })?;
        Ok((listener, local))
    }
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Listen::Addr(addr)
    }
}

impl From<TcpListener> for Listen {
    fn from(listener: TcpListener) -> Self {
        Listen::Listener(listener)
    }
}

// === impl LoadedRegistry ===

impl LoadedRegistry {
    /// Serve both ports over TLS (`Some`), or plaintext (`None`, the
    /// default).
    pub fn with_tls(mut self, tls: Option<ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Binds (or takes) the two ports and serves on them.
    pub async fn serve(
        self,
        grpc: impl Into<Listen>,
        admin: impl Into<Listen>,
    ) -> Result<RunningRegistry, RunError> {
        self.serve_with_admin_routes(grpc, admin, |_| axum::Router::new()).await
    }

    /// [`serve`](Self::serve), with `extra(grpc_addr)` merged into the admin
    /// port's routes: given the gRPC port's bound address, so a route that
    /// reads the registry (the dashboard) can call it over gRPC like any
    /// other client.
    ///
    /// ```no_run
    /// use std::net::SocketAddr;
    ///
    /// use switchboard_registry::{RegistryConfig, StoreSpec};
    ///
    /// # async fn run() -> anyhow::Result<()> {
    /// let store = StoreSpec::Sled { data_dir: "./switchboard-data".into() };
    /// let loaded = switchboard_registry::load(RegistryConfig::default(), store).await?;
    /// let any = SocketAddr::from(([127, 0, 0, 1], 0));
    /// let version = |grpc: SocketAddr| {
    ///     axum::Router::new().route("/grpc-addr", axum::routing::get(move || async move { grpc.to_string() }))
    /// };
    /// let running = loaded.serve_with_admin_routes(any, any, version).await?;
    /// # running.stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn serve_with_admin_routes(
        self,
        grpc: impl Into<Listen>,
        admin: impl Into<Listen>,
        extra: impl FnOnce(SocketAddr) -> axum::Router,
    ) -> Result<RunningRegistry, RunError> {
        let (grpc, grpc_addr) = grpc.into().bind("registry-grpc").await?;
        let (admin, admin_addr) = admin.into().bind("registry-admin").await?;
        let LoadedRegistry { registry, readiness, tasks, tls, _close_on_drop } = self;
        let tls_on = tls.is_some();
        let closing = registry.closing();
        let grpc = tokio::spawn(server::serve_grpc(
            registry.clone(),
            grpc,
            tls.clone(),
            closing.clone().cancelled_owned(),
        ));
        let admin = tokio::spawn(server::serve_admin(
            registry.clone(),
            readiness,
            admin,
            tls,
            extra(grpc_addr),
            closing.cancelled_owned(),
        ));
        tracing::info!(%grpc_addr, %admin_addr, tls = tls_on, "registry serving");
        Ok(RunningRegistry { grpc_addr, admin_addr, registry, grpc, admin, tasks, _close_on_drop })
    }

    /// Stops the background tasks without ever serving; the store is flushed.
    pub async fn close(self) {
        self.tasks.shutdown().await;
    }
}

// === impl RunningRegistry ===

impl RunningRegistry {
    /// Waits for `stop` (returns true), or for the registry to close by
    /// itself after a storage failure (returns false).
    pub async fn until_stopped(&self, stop: impl Future<Output = ()>) -> bool {
        let closing = self.registry.closing();
        tokio::select! {
            () = stop => true,
            () = closing.cancelled() => {
                tracing::error!("registry closed itself");
                false
            }
        }
    }

    /// Ends the long-lived streams first (heartbeat sessions are told to
    /// drain, watchers get a resumable status) so the servers' graceful
    /// shutdown can finish, waits for in-flight calls (at most ten seconds),
    /// then stops the background tasks, which flushes the store.
    pub async fn stop(self) -> Result<(), RunError> {
        let RunningRegistry { registry, grpc, admin, tasks, .. } = self;
        registry.closing().cancel();
        drop(registry);
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, async { (grpc.await, admin.await) }).await;
        let served = match drained {
            Ok((grpc, admin)) => {
                joined("registry-grpc server", grpc).and(joined("registry-admin server", admin))
            }
            Err(_) => {
                tracing::warn!("in-flight calls did not finish in time");
                Ok(())
            }
        };
        // Flush even when a server failed: acknowledged writes must stay.
        tasks.shutdown().await;
        tracing::info!("registry stopped; store flushed");
        served
    }
}

/// How a server task ended.
fn joined(
    name: &'static str,
    ended: Result<Result<(), ServeError>, JoinError>,
) -> Result<(), RunError> {
    ended
        .map_err(|source| RunError::Task { name, source })?
        .map_err(|source| RunError::Serve { name, source })
}

#[cfg(test)]
mod tests;
