//! A real etcd cluster for tests: `/usr/bin/etcd` (Debian `etcd-server`,
//! installed by tests/run) members on 127.0.0.1 with free ports, data in a
//! temporary directory, every member killed when the cluster drops.
//!
//! Peer URLs must be known before the first member starts (they form the
//! initial cluster), so ports are chosen by binding port 0 and releasing
//! it just before etcd binds it.
//!
//! [`EtcdCluster::start_tls`] serves the client URLs over TLS with client
//! certificates required (etcd's `--client-cert-auth`), from development
//! certificates: a CA, a server certificate for 127.0.0.1 and client
//! certificates (see [`ETCD_CLIENTS`]). Peer traffic stays plaintext.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_etcd::{EtcdClient, EtcdConfig};
use switchboard_tls::ClientTls;
use switchboard_tls::dev::DevCerts;
use tempfile::TempDir;

use crate::eventually;

/// A running etcd cluster.
pub struct EtcdCluster {
    members: Vec<EtcdMember>,
    extra_args: Vec<String>,
    initial_cluster: String,
    token: String,
    tls: Option<DevCerts>,
    dir: TempDir,
}

/// The client certificates a TLS cluster's CA issues: `registry` for the
/// process under test, `harness` for the cluster's own probes.
pub const ETCD_CLIENTS: [&str; 2] = ["registry", "harness"];

/// One member: its ports, its data and its process while it runs.
struct EtcdMember {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// The etcd binary: `$ETCD_BIN`, else `/usr/bin/etcd`.
pub fn etcd_bin() -> PathBuf {
    std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("/usr/bin/etcd"), PathBuf::from)
}

// === impl EtcdCluster ===

impl EtcdCluster {
    /// Three members, each answering before this returns.
    pub async fn start() -> Self {
        Self::start_with(3).await
    }

    /// `size` members, each answering before this returns.
    pub async fn start_with(size: usize) -> Self {
        Self::start_with_args(size, &[]).await
    }

    /// `size` members started with `extra` flags (e.g. `--auth-token-ttl 1`).
    pub async fn start_with_args(size: usize, extra: &[&str]) -> Self {
        Self::launch(size, extra, false).await
    }

    /// `size` members serving clients over TLS only, requiring a client
    /// certificate signed by [`EtcdCluster::certs`]' CA.
    pub async fn start_tls(size: usize) -> Self {
        Self::launch(size, &[], true).await
    }

    async fn launch(size: usize, extra: &[&str], tls: bool) -> Self {
        let bin = etcd_bin();
        assert!(bin.exists(), "{} is missing: install Debian etcd-server", bin.display());
        let dir = TempDir::new().expect("temp dir");
        let tls = tls.then(|| {
            let clients: Vec<String> = ETCD_CLIENTS.iter().map(|c| (*c).to_owned()).collect();
            switchboard_tls::dev::generate(&dir.path().join("tls"), &[], &clients)
                .expect("etcd dev certificates")
        });
        let members: Vec<EtcdMember> = (0..size)
            .map(|index| EtcdMember {
                name: format!("m{index}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}=http://127.0.0.1:{}", member.name, member.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("sb-test-{}", rand::random::<u64>());
        let extra_args = extra.iter().map(|arg| (*arg).to_owned()).collect();
        let mut cluster = Self { members, extra_args, initial_cluster, token, tls, dir };
        for index in 0..size {
            cluster.spawn(index);
        }
        for index in 0..size {
            cluster.wait_member(index).await;
        }
        cluster
    }

    /// Every member's client endpoint (`127.0.0.1:port`; `https://127.0.0.1:port`
    /// for a TLS cluster), running or not.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|index| self.endpoint(index)).collect()
    }

    /// The endpoints as one comma-separated flag value.
    pub fn endpoint_list(&self) -> String {
        self.endpoints().join(",")
    }

    /// Member `index`'s client endpoint.
    pub fn endpoint(&self, index: usize) -> String {
        let endpoint = self.members[index].endpoint();
        if self.tls.is_some() { format!("https://{endpoint}") } else { endpoint }
    }

    /// A client over every member.
    pub async fn client(&self) -> EtcdClient {
        EtcdClient::connect(self.config()).await.expect("connect to etcd")
    }

    /// A client config over every member (with the `harness` client
    /// certificate for a TLS cluster).
    pub fn config(&self) -> EtcdConfig {
        self.with_tls(EtcdConfig::new(self.endpoints()))
    }

    /// A TLS cluster's certificates: its CA, its members' certificate and
    /// the client certificates of [`ETCD_CLIENTS`].
    pub fn certs(&self) -> Option<&DevCerts> {
        self.tls.as_ref()
    }

    /// The registry flags that reach this cluster as `client` (one of
    /// [`ETCD_CLIENTS`]): `--etcd-endpoints`, and for a TLS cluster
    /// `--etcd-tls-ca` and the client's `--etcd-tls-cert`/`--etcd-tls-key`.
    pub fn flags(&self, client: &str) -> Vec<String> {
        let mut flags = vec!["--etcd-endpoints".to_owned(), self.endpoint_list()];
        if let Some(certs) = &self.tls {
            let config = certs.client_config(client);
            let path =
                |p: Option<PathBuf>| p.expect("a client of ETCD_CLIENTS").display().to_string();
            flags.extend([
                "--etcd-tls-ca".to_owned(),
                certs.ca.display().to_string(),
                "--etcd-tls-cert".to_owned(),
                path(config.cert),
                "--etcd-tls-key".to_owned(),
                path(config.key),
            ]);
        }
        flags
    }

    fn with_tls(&self, config: EtcdConfig) -> EtcdConfig {
        match &self.tls {
            Some(certs) => config.with_tls(
                ClientTls::load(&certs.client_config("harness")).expect("etcd client tls"),
            ),
            None => config,
        }
    }

    /// `kill -9` member `index` (its data stays for a restart).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts member `index` on its data and ports; returns once it answers.
    pub async fn restart(&mut self, index: usize) {
        self.kill(index);
        self.spawn(index);
        self.wait_member(index).await;
    }

    /// The value of an unlabelled counter or gauge on member `index`'s
    /// `/metrics`, e.g. `etcd_mvcc_put_total` (0 when absent); plaintext
    /// clusters only.
    pub async fn metric(&self, index: usize, name: &str) -> f64 {
        switchboard_tls::ensure_crypto_provider();
        let url = format!("http://{}/metrics", self.endpoint(index));
        let body = reqwest::get(&url).await.expect("etcd metrics").text().await.expect("body");
        crate::metric_value(&body, name).unwrap_or(0.0)
    }

    /// Where member `index` writes its log.
    pub fn log_path(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.members[index].name))
    }

    fn spawn(&mut self, index: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(index))
            .expect("etcd log file");
        let member = &self.members[index];
        let data_dir = self.dir.path().join(format!("{}.etcd", member.name));
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let mut command = Command::new(etcd_bin());
        if let Some(certs) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&certs.server_cert)
                .arg("--key-file")
                .arg(&certs.server_key)
                .arg("--trusted-ca-file")
                .arg(&certs.ca)
                .arg("--client-cert-auth");
        }
        // A restarted member finds its data directory and ignores the
        // initial-cluster flags, so one command line serves both.
        let child = command
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token, "--initial-cluster-state", "new"])
            .args(["--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {}: {error}", etcd_bin().display()));
        self.members[index].child = Some(child);
    }

    /// Runs `etcdctl` (Debian `etcd-client`) against member 0 with `args`;
    /// panics with its output when it fails.
    pub fn etcdctl(&self, args: &[&str]) {
        let mut command = Command::new("etcdctl");
        if let Some(certs) = &self.tls {
            let config = certs.client_config("harness");
            command.arg("--cacert").arg(&certs.ca);
            command.arg("--cert").args(config.cert).arg("--key").args(config.key);
        }
        let output = command
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint(0)])
            .args(args)
            .output()
            .expect("run etcdctl (Debian etcd-client)");
        assert!(
            output.status.success(),
            "etcdctl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until member `index` answers a linearizable read (so it has
    /// joined a cluster with a leader).
    async fn wait_member(&self, index: usize) {
        let config = self.with_tls(EtcdConfig::new([self.endpoint(index)]));
        let log = self.log_path(index);
        eventually(
            &format!("etcd member {index} to answer (log: {})", log.display()),
            WAIT,
            || {
                let config = config.clone();
                async move {
                    let client = EtcdClient::connect(config).await.ok()?;
                    client.get(b"/health-probe".to_vec()).await.ok().map(|_| ())
                }
            },
        )
        .await;
    }

    /// The cluster's directory (member data and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}

// === impl EtcdMember ===

impl EtcdMember {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }
}

/// How long a member may take to answer after a (re)start: a cluster forms
/// once a majority is up; leader election takes about a second.
const WAIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}
