//! `switchboard registry`: run the registry on the embedded sled store until
//! SIGTERM or ctrl-c. `up` reuses [`start`] and [`RunningRegistry::stop`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use switchboard_health::Readiness;
use switchboard_registry::server::ServeError;
use switchboard_registry::{Registry, RegistryTasks, SledStore, server};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::settings::{RegistryArgs, RegistrySettings};
use crate::{shutdown, telemetry};

/// Longest wait for in-flight calls after a shutdown request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A registry serving its gRPC and admin ports.
pub struct RunningRegistry {
    /// Where the gRPC services listen.
    pub grpc_addr: SocketAddr,
    registry: Registry,
    grpc: JoinHandle<Result<(), ServeError>>,
    admin: JoinHandle<Result<(), ServeError>>,
    tasks: RegistryTasks,
}

/// Runs the registry until a shutdown signal.
pub async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    let _telemetry = telemetry::init("switchboard-registry", &settings.telemetry)?;
    let stop = shutdown::on_signal();
    let running = start(settings).await?;
    let asked = running.until_stopped(&stop).await;
    running.stop().await?;
    anyhow::ensure!(asked, "the registry stopped after a storage failure (see the log)");
    Ok(())
}

/// Opens the store, starts the registry and binds its ports (announced on
/// stdout as `LISTEN registry-grpc <addr>` and `LISTEN registry-admin <addr>`).
pub async fn start(settings: RegistrySettings) -> anyhow::Result<RunningRegistry> {
    let readiness = Readiness::new();
    let loading = readiness.register("registry-store");
    let store = SledStore::open(&settings.data_dir)
        .with_context(|| format!("opening the store in {}", settings.data_dir.display()))?;
    let (registry, tasks) = Registry::start(settings.registry.clone(), Arc::new(store))
        .await
        .context("starting the registry")?;
    loading.ready();
    let grpc = bind(settings.registry_addr, "registry-grpc").await?;
    let admin = bind(settings.registry_admin_addr, "registry-admin").await?;
    let grpc_addr = grpc.local_addr()?;
    let closing = registry.closing();
    let grpc =
        tokio::spawn(server::serve_grpc(registry.clone(), grpc, closing.clone().cancelled_owned()));
    let admin = tokio::spawn(server::serve_admin(
        registry.clone(),
        readiness,
        admin,
        closing.cancelled_owned(),
    ));
    Ok(RunningRegistry { grpc_addr, registry, grpc, admin, tasks })
}

impl RunningRegistry {
    /// Waits for `stop` (a signal: returns true), or for the registry to
    /// close by itself after a storage failure (returns false).
    pub async fn until_stopped(&self, stop: &tokio_util::sync::CancellationToken) -> bool {
        let closing = self.registry.closing();
        tokio::select! {
            () = stop.cancelled() => true,
            () = closing.cancelled() => {
                tracing::error!("registry closed itself");
                false
            }
        }
    }

    /// Ends the long-lived streams first (heartbeat sessions are told to
    /// drain, watchers get a resumable status) so the servers' graceful
    /// shutdown can finish, then flushes the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.registry.closing().cancel();
        drop(self.registry);
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, async { (self.grpc.await, self.admin.await) })
                .await;
        match drained {
            Ok((grpc, admin)) => {
                grpc.context("grpc server task")?.context("grpc server")?;
                admin.context("admin server task")?.context("admin server")?;
            }
            Err(_) => tracing::warn!("in-flight calls did not finish in time"),
        }
        self.tasks.shutdown().await;
        tracing::info!("registry stopped; store flushed");
        Ok(())
    }
}

/// Binds a listener and announces it on stdout (`LISTEN <name> <addr>`), the
/// line scripts and tests wait for.
async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("{name}: cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    println!("LISTEN {name} {local}");
    tracing::info!(%local, "{name} listening");
    Ok(listener)
}
