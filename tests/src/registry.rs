//! A registry served in this process, on a real sled store and a real port.

use std::net::SocketAddr;
use std::sync::Arc;

use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_registry::{Registry, RegistryConfig, RegistryTasks, SledStore, server};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A running in-process registry.
pub struct InProcessRegistry {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub dir: Arc<TempDir>,
    tasks: Option<RegistryTasks>,
    server: Option<JoinHandle<()>>,
}

impl InProcessRegistry {
    /// Default configuration, fresh store.
    pub async fn start() -> Self {
        Self::start_with(RegistryConfig::default(), None).await
    }

    /// Given configuration; reuses `dir` (a restart) when given.
    pub async fn start_with(config: RegistryConfig, dir: Option<Arc<TempDir>>) -> Self {
        crate::init_logging();
        let dir = dir.unwrap_or_else(|| Arc::new(TempDir::new().expect("temp dir")));
        let store = SledStore::open(dir.path()).expect("open store");
        let (registry, tasks) = Registry::start(config, Arc::new(store)).await.expect("start");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let closing = registry.closing();
        let serving = registry.clone();
        let server = tokio::spawn(async move {
            server::serve_grpc(serving, listener, async move { closing.cancelled().await })
                .await
                .expect("serve");
        });
        Self { addr, registry, dir, tasks: Some(tasks), server: Some(server) }
    }

    /// A fresh channel to it.
    pub async fn channel(&self) -> Channel {
        switchboard_client::connect(&self.addr.to_string()).await.expect("connect")
    }

    pub async fn registry_client(&self) -> RegistryServiceClient<Channel> {
        RegistryServiceClient::new(self.channel().await)
    }

    pub async fn heartbeat_client(&self) -> HeartbeatServiceClient<Channel> {
        HeartbeatServiceClient::new(self.channel().await)
    }

    pub async fn watch_client(&self) -> WatchServiceClient<Channel> {
        WatchServiceClient::new(self.channel().await)
    }

    /// Graceful stop: streams end, the store is flushed. Returns the data dir
    /// for a restart.
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

impl Drop for InProcessRegistry {
    fn drop(&mut self) {
        self.registry.closing().cancel();
    }
}
