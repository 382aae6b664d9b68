//! The one way tests start a registry: [`TestRegistry::builder`] chooses
//! in process (through `switchboard_registry::serve`, exactly as the binary
//! assembles it) or a child process of the real `switchboard registry`
//! binary (for crashes), a port chosen by the OS or pinned (so clients keep
//! their address across restarts), and the store back end ([`Backend`]).
//! Every registry gets a real data directory and serves both its gRPC and
//! its admin port.

mod backend;
mod front;
mod peers;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchboard_client::{AuthChannel, Bearer};
use switchboard_proto::v1::access_service_client::AccessServiceClient;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{CreateTokenRequest, RegisterAgentRequest, TokenInfo};
use switchboard_registry::{Listen, LoadedRegistry, Registry, RegistryConfig, RunningRegistry};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tonic::transport::Channel;

use crate::process::SwitchboardProcess;

pub use backend::Backend;
use peers::{Like, Peers};

/// Longest wait for a pinned port that a previous server may still hold.
const REBIND_PATIENCE: Duration = Duration::from_secs(20);

/// How to start a [`TestRegistry`]; every setting has a default.
#[derive(Clone, Debug, Default)]
pub struct TestRegistryBuilder {
    config: Option<RegistryConfig>,
    data_dir: Option<Arc<TempDir>>,
    pinned: Option<SocketAddr>,
    child: Option<Vec<String>>,
    env: Vec<(String, String)>,
    backend: Option<Backend>,
    auth: bool,
}

/// A running registry.
pub struct TestRegistry {
    /// Where its gRPC services listen.
    pub addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// Its data directory, kept across restarts.
    pub dir: Arc<TempDir>,
    again: TestRegistryBuilder,
    running: Running,
    peers: Peers,
}

/// An in-process registry loaded from its store but not serving yet: a test
/// prepares its state through [`registry`](Self::registry) before any
/// client can see it, then calls [`serve`](Self::serve).
pub struct UnservedRegistry {
    pub registry: Registry,
    pub dir: Arc<TempDir>,
    loaded: LoadedRegistry,
    /// Its configuration, for the peer replicas of a replica set.
    config: RegistryConfig,
    again: TestRegistryBuilder,
}

enum Running {
    InProcess(RunningRegistry),
    Child(SwitchboardProcess),
}

// === impl TestRegistryBuilder ===

impl TestRegistryBuilder {
    /// The registry's configuration (in process only: a child process takes
    /// flags, see [`child_process`](Self::child_process)).
    pub fn config(mut self, config: RegistryConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Reuses a data directory (a restart); a fresh one otherwise.
    pub fn data_dir(mut self, dir: Arc<TempDir>) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Serves gRPC on `addr` instead of a port chosen by the OS; in process,
    /// the bind is retried while a previous server still holds the port.
    pub fn pinned(mut self, addr: SocketAddr) -> Self {
        self.pinned = Some(addr);
        self
    }

    /// Runs the real `switchboard registry` binary with `extra` flags (e.g.
    /// `--expired-after 2s`) instead of serving in this process.
    pub fn child_process(mut self, extra: &[&str]) -> Self {
        self.child = Some(extra.iter().map(|arg| (*arg).to_owned()).collect());
        self
    }

    /// Environment for the child process (e.g. an OTLP endpoint).
    pub fn env(mut self, env: &[(&str, &str)]) -> Self {
        self.env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// Authentication on (`--auth`): the registry bootstraps an admin
    /// token, read it with [`TestRegistry::admin_token`].
    pub fn auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// The store back end; [`Backend::from_env`] when not set.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Starts the registry and waits until it serves.
    pub async fn start(self) -> TestRegistry {
        switchboard_tls::ensure_crypto_provider();
        if self.child.is_some() {
            return self.spawn().await;
        }
        self.start_unserved().await.serve().await
    }

    /// Loads the store in this process without serving it.
    pub async fn start_unserved(self) -> UnservedRegistry {
        assert!(self.child.is_none(), "a child-process registry cannot start unserved");
        crate::init_logging();
        let dir = self.dir();
        let store = self.chosen_backend().store(dir.path());
        let mut config = self.config.clone().unwrap_or_default();
        config.auth.enabled |= self.auth;
        // Where `admin_token` reads it, on every back end.
        if config.auth.bootstrap_token_file.is_none() {
            config.auth.bootstrap_token_file =
                Some(dir.path().join(switchboard_registry::BOOTSTRAP_TOKEN_FILE));
        }
        let loaded =
            switchboard_registry::load(config.clone(), store).await.expect("load the registry");
        UnservedRegistry { registry: loaded.registry.clone(), dir, loaded, config, again: self }
    }

    /// `switchboard registry` as a child process (with its peers, for a
    /// replica set).
    async fn spawn(self) -> TestRegistry {
        assert!(self.config.is_none(), "config() is in process only; give the child its flags");
        let dir = self.dir();
        let peers = self.chosen_backend().peers();
        // A replica set's front takes the pinned address.
        let grpc = if peers == 0 { self.pinned.unwrap_or_else(any_port) } else { any_port() };
        let process = self.spawn_process(dir.path(), dir.path(), grpc).await;
        let admin_addr = process.addr("registry-admin");
        let main = process.addr("registry-grpc");
        let (addr, peers) = Peers::start(&self, dir.path(), main, Like::Child).await;
        TestRegistry { addr, admin_addr, dir, again: self, running: Running::Child(process), peers }
    }

    /// One `switchboard registry` process on the store of `dir`, serving
    /// gRPC on `grpc`.
    async fn spawn_process(
        &self,
        dir: &Path,
        data_dir: &Path,
        grpc: SocketAddr,
    ) -> SwitchboardProcess {
        let grpc = grpc.to_string();
        let mut args: Vec<String> = ["registry", "--registry-addr", &grpc]
            .into_iter()
            .chain(["--registry-admin-addr", "127.0.0.1:0"])
            .map(str::to_owned)
            .collect();
        args.extend(self.chosen_backend().flags(dir, data_dir));
        args.extend(self.child.iter().flatten().cloned());
        if self.auth {
            args.push("--auth".to_owned());
        }
        let env = self.env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            SwitchboardProcess::spawn_with_env(&args, &env, &["registry-grpc", "registry-admin"])
        })
        .await
        .expect("spawn the registry")
    }

    fn dir(&self) -> Arc<TempDir> {
        self.data_dir.clone().unwrap_or_else(|| Arc::new(TempDir::new().expect("temp dir")))
    }

    fn chosen_backend(&self) -> Backend {
        self.backend.unwrap_or_else(Backend::from_env)
    }
}

// === impl UnservedRegistry ===

impl UnservedRegistry {
    /// Serves it (on the pinned address, if the builder gave one).
    pub async fn serve(self) -> TestRegistry {
        let replica_set = self.again.chosen_backend().peers() > 0;
        let grpc = match self.again.pinned {
            // A replica set's front takes the pinned address.
            Some(addr) if !replica_set => Listen::Listener(bind_when_free(addr).await),
            _ => Listen::Addr(any_port()),
        };
        let running = self.loaded.serve(grpc, any_port()).await.expect("serve the registry");
        let like = Like::InProcess(&self.config);
        let (addr, peers) =
            Peers::start(&self.again, self.dir.path(), running.grpc_addr, like).await;
        TestRegistry {
            addr,
            admin_addr: running.admin_addr,
            dir: self.dir,
            again: self.again,
            running: Running::InProcess(running),
            peers,
        }
    }
}

// === impl TestRegistry ===

impl TestRegistry {
    /// A builder with every default: in process, fresh store, any port.
    pub fn builder() -> TestRegistryBuilder {
        TestRegistryBuilder::default()
    }

    /// An in-process registry with the default configuration on a fresh store.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Prometheus text of the registry (in process only); of a replica
    /// set, every replica's samples added up.
    pub fn render_metrics(&self) -> String {
        let main = std::iter::once(self.registry().render_metrics());
        peers::summed(main.chain(self.peers.metrics()))
    }

    /// How many replicas serve behind `addr`: 1, or 3 on a replica set
    /// (`SWITCHBOARD_TEST_BACKEND=etcd-replicas`), where each fresh
    /// connection reaches the next one. What only the replica holding an
    /// agent's stream knows (its last heartbeat time) is then known through
    /// one connection in that many.
    pub fn replicas(&self) -> usize {
        1 + self.peers.len()
    }

    /// The registry core (in process only; of a replica set, the first
    /// replica's).
    pub fn registry(&self) -> &Registry {
        match &self.running {
            Running::InProcess(running) => &running.registry,
            Running::Child(_) => panic!("a child-process registry has no in-process handle"),
        }
    }

    /// The same registry again: same settings and data directory, gRPC on
    /// the same address. Take it before [`stop`](Self::stop) or
    /// [`kill`](Self::kill), start it after.
    pub fn relaunch(&self) -> TestRegistryBuilder {
        self.again.clone().data_dir(self.dir.clone()).pinned(self.addr)
    }

    /// A fresh channel to it.
    pub async fn channel(&self) -> Channel {
        switchboard_client::connect(&self.addr.to_string()).await.expect("connect")
    }

    /// The bootstrap admin token of a registry started with auth (written
    /// to `admin.token` in its data directory).
    pub fn admin_token(&self) -> String {
        let path = self.dir.path().join(switchboard_registry::BOOTSTRAP_TOKEN_FILE);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// A fresh channel that sends `token` with every call.
    pub async fn channel_as(&self, token: &str) -> AuthChannel {
        let bearer = Bearer::new(Some(token)).expect("a token that fits in metadata");
        bearer.channel(self.channel().await)
    }

    /// A token issued with the bootstrap admin token: its record and secret.
    pub async fn issue_token(&self, request: CreateTokenRequest) -> (TokenInfo, String) {
        let mut access = AccessServiceClient::new(self.channel_as(&self.admin_token()).await);
        let created = access.create_token(request).await.expect("admin creates a token");
        let created = created.into_inner();
        (created.token.expect("the token's record"), created.secret)
    }

    /// A registry client that sends `token` with every call.
    pub async fn registry_client_as(&self, token: &str) -> RegistryServiceClient<AuthChannel> {
        RegistryServiceClient::new(self.channel_as(token).await)
    }

    /// Registers `request` with `token`; returns the agent id.
    pub async fn register_as(&self, token: &str, request: RegisterAgentRequest) -> String {
        let mut client = self.registry_client_as(token).await;
        client.register_agent(request).await.expect("registered").into_inner().agent_id
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

    /// Graceful stop (heartbeat streams drain, watch streams end with a
    /// resumable status, the store is flushed; a child must exit with 0 on
    /// SIGTERM). Returns the data dir for a restart.
    pub async fn stop(self) -> Arc<TempDir> {
        // All at once, as one registry stops: no stream moves to a replica
        // that is about to stop too.
        let (front, ()) = tokio::join!(self.peers.stop(), self.running.stop());
        drop(front);
        self.dir
    }

    /// The child process's id, for signals (SIGSTOP/SIGCONT); None in process.
    pub fn pid(&self) -> Option<u32> {
        match &self.running {
            Running::Child(process) => Some(process.child.id()),
            Running::InProcess(_) => None,
        }
    }

    /// The child's exit status if it has exited by itself (after a storage
    /// failure, say); None while it runs, and in process.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match &mut self.running {
            Running::Child(process) => process.child.try_wait().ok().flatten(),
            Running::InProcess(_) => None,
        }
    }

    /// SIGKILL of the child process: nothing is flushed. Returns the data dir.
    pub fn kill(self) -> Arc<TempDir> {
        match self.running {
            Running::Child(process) => process.kill(),
            Running::InProcess(_) => panic!("kill() needs .child_process(): use stop()"),
        }
        // The peers (and the front) after it: while it still ran, closing
        // the front would have broken its streams, and it would have
        // written that down.
        self.peers.kill();
        self.dir
    }

    /// Graceful stop, then the same registry again on the same address.
    pub async fn restart(self) -> Self {
        let again = self.relaunch();
        self.stop().await;
        again.start().await
    }
}

// === impl Running ===

impl Running {
    fn grpc_addr(&self) -> SocketAddr {
        match self {
            Running::InProcess(running) => running.grpc_addr,
            Running::Child(process) => process.addr("registry-grpc"),
        }
    }

    /// Graceful stop; a child must exit with 0 on SIGTERM.
    async fn stop(self) {
        match self {
            Running::InProcess(running) => running.stop().await.expect("registry stops cleanly"),
            Running::Child(process) => {
                let status = tokio::task::spawn_blocking(move || process.terminate())
                    .await
                    .expect("wait for the registry");
                assert!(status.success(), "registry exit status on SIGTERM: {status:?}");
            }
        }
    }
}

/// Any free loopback port.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Binds `addr`, waiting while a previous server's socket still holds it.
async fn bind_when_free(addr: SocketAddr) -> TcpListener {
    crate::eventually(&format!("binding {addr}"), REBIND_PATIENCE, || async move {
        TcpListener::bind(addr).await.ok()
    })
    .await
}
