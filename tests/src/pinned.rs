//! A registry served in this process on an address that survives restarts:
//! stop it, load a store (the same one, or a new one for a new epoch), and
//! serve again on the same port, so clients keep their channel and only see
//! the connection drop and come back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_registry::{Registry, RegistryConfig, RegistryTasks, SledStore, server};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A registry core started on a store but not serving yet: a test can
/// prepare its state through [`Loaded::registry`] before any client sees it.
pub struct Loaded {
    pub registry: Registry,
    pub dir: Arc<TempDir>,
    tasks: RegistryTasks,
}

/// A registry serving on a fixed address.
pub struct PinnedRegistry {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub dir: Arc<TempDir>,
    tasks: Option<RegistryTasks>,
    server: Option<JoinHandle<()>>,
}

impl Loaded {
    /// Opens the store in `dir` (a fresh one when `None`) and starts the core.
    pub async fn open(config: RegistryConfig, dir: Option<Arc<TempDir>>) -> Self {
        crate::init_logging();
        let dir = dir.unwrap_or_else(|| Arc::new(TempDir::new().expect("temp dir")));
        let store = SledStore::open(dir.path()).expect("open store");
        let (registry, tasks) = Registry::start(config, Arc::new(store)).await.expect("start");
        Self { registry, dir, tasks }
    }

    /// Serves on `addr` (`127.0.0.1:0` for any free port), retrying the bind
    /// for a while in case the previous server's socket is still closing.
    pub async fn serve_on(self, addr: SocketAddr) -> PinnedRegistry {
        let listener =
            crate::eventually(&format!("binding {addr}"), Duration::from_secs(20), || async move {
                TcpListener::bind(addr).await.ok()
            })
            .await;
        let addr = listener.local_addr().expect("addr");
        let closing = self.registry.closing();
        let serving = self.registry.clone();
        let server = tokio::spawn(async move {
            server::serve_grpc(serving, listener, async move { closing.cancelled().await })
                .await
                .expect("serve");
        });
        PinnedRegistry {
            addr,
            registry: self.registry,
            dir: self.dir,
            tasks: Some(self.tasks),
            server: Some(server),
        }
    }
}

impl PinnedRegistry {
    /// A fresh store served on any free port.
    pub async fn start(config: RegistryConfig) -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        Loaded::open(config, None).await.serve_on(any).await
    }

    /// A fresh channel to it.
    pub async fn channel(&self) -> Channel {
        switchboard_client::connect(&self.addr.to_string()).await.expect("connect")
    }

    pub async fn registry_client(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channel().await)
    }

    /// Graceful stop (watch streams end with a resumable status, the store
    /// is flushed); returns the data dir for a restart.
    pub async fn stop(mut self) -> Arc<TempDir> {
        self.registry.closing().cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
        self.dir.clone()
    }
}

impl Drop for PinnedRegistry {
    fn drop(&mut self) {
        self.registry.closing().cancel();
    }
}
