//! The registry under test: a fresh `switchboard registry` child on a temp
//! data dir (`--spawn`), or an existing one (`--registry ADDR`).
//!
//! A spawned registry logs at `warn` only, so its own logging does not show
//! up as write activity, and its memory is read from `/proc/<pid>`. For an
//! existing registry the pid is looked up from the listening socket, which
//! works when it runs on this machine as the same user.
//!
//! With `--replicas N` the target is N `switchboard registry --store etcd`
//! children on one fresh etcd prefix: the first is the one whose process is
//! measured, and connections are spread over all of them in turn.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard_proto::v1::ListAgentsRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::etcd_cluster::EtcdCluster;
use crate::process::ChildProcess;
use crate::procfs::{ProcessStats, listener_pid};

/// Longest wait for a spawned registry to announce its ports.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A registry to load.
pub struct RegistryTarget {
    /// Its gRPC address (`127.0.0.1:PORT`).
    pub addr: String,
    child: Option<ChildProcess>,
    data_dir: Option<TempDir>,
    external_pid: Option<u32>,
    bin: Option<PathBuf>,
    extra_args: Vec<String>,
    /// The other replicas of a replica set (empty for one registry).
    others: Vec<RegistryTarget>,
    /// The etcd a replica set shares.
    etcd: Option<EtcdCluster>,
}

/// How a spawned registry came back after a restart.
#[derive(Debug, Clone, Copy)]
pub struct Restarted {
    /// From exec to its `LISTEN registry-grpc` line.
    pub to_listen: Duration,
    /// From exec to the first successful RPC.
    pub to_serving: Duration,
}

impl RegistryTarget {
    /// Starts `bin registry` on a fresh temp data dir and ports chosen by the
    /// OS; `extra_args` go to `switchboard registry` (liveness settings).
    pub async fn spawn(bin: &Path, extra_args: &[String]) -> BenchResult<Self> {
        let data_dir = tempfile::Builder::new()
            .prefix("switchboard-bench-")
            .tempdir()
            .map_err(|e| BenchError::io("creating the registry's temp data dir", e))?;
        let mut target = Self {
            addr: String::new(),
            child: None,
            data_dir: Some(data_dir),
            external_pid: None,
            bin: Some(bin.to_owned()),
            extra_args: extra_args.to_vec(),
            others: Vec::new(),
            etcd: None,
        };
        target.start("127.0.0.1:0").await?;
        Ok(target)
    }

    /// Starts `count` replicas of `bin registry --store etcd` on `etcd`,
    /// under a prefix of their own (so a shared etcd never mixes runs).
    pub async fn spawn_replicas(
        bin: &Path,
        extra_args: &[String],
        count: usize,
        etcd: EtcdCluster,
    ) -> BenchResult<Self> {
        let prefix = format!("/sb-bench-{:08x}", rand::random::<u32>());
        let mut args = extra_args.to_vec();
        args.extend(
            [
                "--store",
                "etcd",
                "--etcd-endpoints",
                &etcd.endpoints_flag(),
                "--etcd-prefix",
                &prefix,
            ]
            .map(String::from),
        );
        let mut first = Self::spawn(bin, &args).await?;
        for _ in 1..count.max(1) {
            first.others.push(Self::spawn(bin, &args).await?);
        }
        first.etcd = Some(etcd);
        Ok(first)
    }

    /// Its replicas' addresses (one for a single registry).
    pub fn addrs(&self) -> Vec<String> {
        std::iter::once(self.addr.clone())
            .chain(self.others.iter().map(|o| o.addr.clone()))
            .collect()
    }

    /// How many replicas serve it (1 for a single registry).
    pub fn replicas(&self) -> usize {
        1 + self.others.len()
    }

    /// The replica that connection `index` of [`channels`](Self::channels) goes to.
    pub fn replica_of(&self, index: usize) -> usize {
        index % self.replicas()
    }

    /// Replica `index` (0 is this one), to stop or restart it.
    pub fn replica_mut(&mut self, index: usize) -> Option<&mut RegistryTarget> {
        match index {
            0 => Some(self),
            n => self.others.get_mut(n - 1),
        }
    }

    /// The etcd of a replica set.
    pub fn etcd(&self) -> Option<&EtcdCluster> {
        self.etcd.as_ref()
    }

    /// An existing registry at `addr` (`host:port`).
    pub async fn external(addr: &str) -> BenchResult<Self> {
        let parsed: Option<SocketAddr> = addr.trim_start_matches("http://").parse().ok();
        let target = Self {
            addr: addr.trim_start_matches("http://").to_owned(),
            child: None,
            data_dir: None,
            external_pid: parsed.and_then(listener_pid),
            bin: None,
            extra_args: Vec::new(),
            others: Vec::new(),
            etcd: None,
        };
        target.wait_serving(Duration::from_secs(10)).await?;
        Ok(target)
    }

    /// True when this process started the registry (it may be restarted).
    pub fn is_spawned(&self) -> bool {
        self.bin.is_some()
    }

    /// Its pid, when known.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(ChildProcess::pid).or(self.external_pid)
    }

    /// Its memory and write figures now, when it can be seen.
    pub fn stats(&self) -> Option<ProcessStats> {
        self.pid().and_then(ProcessStats::read)
    }

    /// `release` or `debug` when spawned from a cargo target dir.
    pub fn build(&self) -> Option<&'static str> {
        let bin = self.bin.as_ref()?.to_string_lossy().into_owned();
        if bin.contains("/release/") {
            Some("release")
        } else if bin.contains("/debug/") {
            Some("debug")
        } else {
            None
        }
    }

    /// `count` separate HTTP/2 connections to it; with replicas, at least
    /// one per replica and a multiple of their number, connection `i` going
    /// to replica `i % replicas` (so the next connection is the next replica).
    pub async fn channels(&self, count: usize) -> BenchResult<Vec<Channel>> {
        let addrs = self.addrs();
        let count = count.max(1).next_multiple_of(addrs.len());
        let mut channels = Vec::with_capacity(count);
        for index in 0..count {
            channels.push(crate::helpers::connect(&addrs[index % addrs.len()]).await?);
        }
        Ok(channels)
    }

    /// Stops it with SIGTERM (or SIGKILL when `kill`), and returns how long
    /// the exit took. Only for a spawned registry.
    pub async fn stop_process(&mut self, kill: bool) -> BenchResult<Duration> {
        let Some(child) = self.child.as_mut() else {
            return Err(BenchError::Option(
                "only a spawned registry (--spawn) can be stopped".into(),
            ));
        };
        let started = Instant::now();
        if kill {
            child.kill().await;
            Ok(started.elapsed())
        } else {
            child.terminate(Duration::from_secs(30)).await
        }
    }

    /// Starts the registry again on the same data dir and the same port.
    pub async fn restart(&mut self) -> BenchResult<Restarted> {
        let addr = self.addr.clone();
        let started = Instant::now();
        self.start(&addr).await?;
        let to_listen = started.elapsed();
        self.wait_serving(Duration::from_secs(30)).await?;
        Ok(Restarted { to_listen, to_serving: started.elapsed() })
    }

    /// Kills a spawned registry (every replica, then the etcd started for
    /// them) and removes its data dir.
    pub async fn shutdown(mut self) {
        for other in std::mem::take(&mut self.others) {
            Box::pin(other.shutdown()).await;
        }
        if let Some(mut child) = self.child.take() {
            child.kill().await;
        }
        drop(self.etcd.take());
        drop(self.data_dir.take());
    }

    async fn start(&mut self, grpc_addr: &str) -> BenchResult<()> {
        let (Some(bin), Some(dir)) = (&self.bin, &self.data_dir) else {
            return Err(BenchError::Option("not a spawned registry".into()));
        };
        let mut args: Vec<String> = vec![
            "registry".into(),
            "--registry-addr".into(),
            grpc_addr.into(),
            "--registry-admin-addr".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().display().to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        let mut child = ChildProcess::spawn(bin, &args, &[("SWITCHBOARD_LOG", "warn")])?;
        let addr = child.wait_listen("registry-grpc", START_TIMEOUT).await?;
        child.wait_listen("registry-admin", START_TIMEOUT).await?;
        self.addr = addr.to_string();
        self.child = Some(child);
        Ok(())
    }

    /// Polls a cheap RPC until it succeeds.
    async fn wait_serving(&self, timeout: Duration) -> BenchResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let attempt = async {
                let channel = crate::helpers::connect(&self.addr).await.ok()?;
                let request = ListAgentsRequest { page_size: 1, ..ListAgentsRequest::default() };
                RegistryServiceClient::new(channel).list_agents(request).await.ok()
            };
            if attempt.await.is_some() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::timeout(format!("the registry at {}", self.addr), timeout));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
