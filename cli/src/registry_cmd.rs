//! `switchboard registry` (and, for now, `switchboard up`): run the registry
//! on the embedded sled store until SIGTERM or ctrl-c.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use switchboard_health::Readiness;
use switchboard_registry::{Registry, SledStore, server};
use tokio::net::TcpListener;

use crate::settings::RegistryArgs;
use crate::{shutdown, telemetry};

/// Longest wait for in-flight calls after a shutdown request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the registry until a shutdown signal.
pub async fn run(args: RegistryArgs) -> anyhow::Result<()> {
    let settings = args.resolve()?;
    telemetry::init()?;
    let stop = shutdown::on_signal();
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

    let closing = registry.closing();
    // On a signal, end the long-lived streams first (heartbeat sessions are
    // told to drain, watchers get a resumable status) so the gRPC server's
    // graceful shutdown can finish.
    let propagate = {
        let (stop, closing) = (stop.clone(), closing.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            closing.cancel();
        })
    };
    let grpc_task =
        tokio::spawn(server::serve_grpc(registry.clone(), grpc, cancelled(closing.clone())));
    let admin_task = tokio::spawn(server::serve_admin(
        registry.clone(),
        readiness,
        admin,
        cancelled(closing.clone()),
    ));
    drop(registry);

    closing.cancelled().await;
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let grpc = grpc_task.await;
        let admin = admin_task.await;
        (grpc, admin)
    })
    .await;
    match drained {
        Ok((grpc, admin)) => {
            grpc.context("grpc server task")?.context("grpc server")?;
            admin.context("admin server task")?.context("admin server")?;
        }
        Err(_) => tracing::warn!("in-flight calls did not finish in time"),
    }
    tasks.shutdown().await;
    propagate.abort();
    tracing::info!("registry stopped; store flushed");
    Ok(())
}

async fn cancelled(token: tokio_util::sync::CancellationToken) {
    token.cancelled().await;
}

/// Binds a listener and announces it on stdout (`LISTEN <name> <addr>`), the
/// line scripts and tests wait for.
async fn bind(addr: std::net::SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("{name}: cannot bind {addr}"))?;
    let local = listener.local_addr()?;
    println!("LISTEN {name} {local}");
    tracing::info!(%local, "{name} listening");
    Ok(listener)
}
