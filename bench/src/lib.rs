//! The load generator of Switchboard: the scenarios of the
//! `switchboard-bench` binary, measured against a registry (and gateway) on
//! this machine, with latency percentiles, throughput and the registry's
//! memory in one report. It is its own binary so that the product binary
//! operators deploy carries none of it; the servers it loads are the real
//! `switchboard` binary, spawned as child processes.
//!
//! | scenario | what it measures |
//! |---|---|
//! | `heartbeat` | N agents, one bidi heartbeat stream each: acks/s at saturation, send → ack latency at a fixed rate |
//! | `register` | durable `RegisterAgent` (5 tools) with C concurrent clients |
//! | `watch-fanout` | a change → its arrival at each of W watchers |
//! | `watch-memory` | the registry's memory when 1k watchers read a snapshot slowly, or get a burst of status changes |
//! | `rewire` | provider joins / leaves / is SIGKILLed → the dependent's pushed wiring |
//! | `gateway` | `tools/call` through the gateway vs straight to the agent |
//! | `restart` | a registry holding N agents restarted (SIGTERM, SIGKILL): time to serve, agents expired |
//! | `replica-kill` | `--replicas N`: one replica `kill -9`ed → every agent it held re-homed and healthy |
//!
//! With `--replicas N` the registry is N `switchboard registry --store etcd`
//! replicas on one etcd prefix (a 3-member etcd started here, or
//! `--etcd-endpoints`), and connections, hence agents and watchers, are
//! spread over the replicas; `heartbeat` then also reports etcd's write
//! counters over its phases.
//!
//! With [`Peer`] set, the equivalent scenarios drive etcd or the MCP Mesh
//! registry instead, with the same flags, phases and report, for the
//! side-by-side comparisons of `bench/compare-*`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_bench::BenchError> {
//! use switchboard_bench::{BenchOptions, Scenario};
//!
//! let mut options = BenchOptions::new(
//!     Scenario::Register,
//!     "target/release/switchboard".into(),
//!     "target/release/switchboard-bench".into(),
//! );
//! options.smoke = true;
//! let report = switchboard_bench::run(&options).await?;
//! println!("{}", report.render_table());
//! # Ok(())
//! # }
//! ```
//!
//! Everything is bounded: every phase has a duration, every wait a timeout,
//! and child processes are killed when the run ends. Traffic goes to the
//! given registry address only (loopback when spawned).

pub mod cli;
mod error;
pub mod etcd_cluster;
pub mod fixture;
pub mod fleet;
pub mod helpers;
pub mod peers;
pub mod phase;
mod plot;
pub mod process;
pub mod procfs;
pub mod progress;
pub mod report;
mod scenario;
pub mod stats;
pub mod target;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{BenchError, BenchResult};
pub use report::{Report, Row};

/// The benchmark scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Heartbeat streams: saturation and fixed rate.
    Heartbeat,
    /// Durable registrations with concurrent clients.
    Register,
    /// Change → every watcher.
    WatchFanout,
    /// Registry memory under many watchers.
    WatchMemory,
    /// Provider joins, leaves, crashes → dependent rewired.
    Rewire,
    /// Gateway overhead on `tools/call`.
    Gateway,
    /// Registry restart with many stored agents.
    Restart,
    /// How memory, heartbeats and registration latency grow with size.
    Growth,
    /// A replica killed → its agents re-homed and healthy (`--replicas`).
    ReplicaKill,
}

/// A peer system driven instead of Switchboard, by its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// etcd 3.4 at this client URL (`http://127.0.0.1:2379`).
    Etcd(String),
    /// The MCP Mesh registry at this base URL (`http://127.0.0.1:8000`).
    McpMesh(String),
}

/// Everything a run needs; unset sizes take the scenario's defaults
/// (smaller with `smoke`).
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// What to run.
    pub scenario: Scenario,
    /// An existing registry's gRPC address; `None` spawns a fresh one.
    pub registry: Option<String>,
    /// An existing gateway's address (`host:port`); `None` spawns one.
    pub gateway: Option<String>,
    /// Drive this peer instead of Switchboard.
    pub peer: Option<Peer>,
    /// The `switchboard` binary: spawned as registry and gateway.
    pub switchboard_bin: PathBuf,
    /// The `switchboard-bench` binary: spawned as the helper processes
    /// (`provider`, `echo-agent`).
    pub bench_bin: PathBuf,
    /// Agent counts (heartbeat, restart; background agents of watch-fanout).
    pub agents: Vec<usize>,
    /// Watcher counts (watch-fanout).
    pub watchers: Vec<usize>,
    /// Dependents of one capability (growth; rewire's fan-out cases).
    pub dependents: Vec<usize>,
    /// Where a scenario that draws writes its PNG plot (growth).
    pub plot: Option<PathBuf>,
    /// Concurrent clients (register, gateway).
    pub concurrency: Vec<usize>,
    /// HTTP/2 connections the streams and calls are spread over.
    pub connections: Option<usize>,
    /// Length of each measured phase.
    pub duration: Option<Duration>,
    /// Fixed rate: heartbeats/s (heartbeat), changes/s (watch-fanout).
    pub rate: Option<f64>,
    /// Samples of one-at-a-time scenarios (rewire, restart).
    pub iterations: Option<usize>,
    /// Tiny sizes and short phases: checks that a scenario works.
    pub smoke: bool,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Registry replicas on one etcd prefix instead of one registry on sled.
    pub replicas: Option<usize>,
    /// The etcd of the replicas (`host:port`); empty: start a 3-member one.
    pub etcd_endpoints: Vec<String>,
}

impl Scenario {
    /// Every scenario, in the order `all` runs them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Heartbeat,
        Scenario::Register,
        Scenario::WatchFanout,
        Scenario::WatchMemory,
        Scenario::Rewire,
        Scenario::Gateway,
        Scenario::Restart,
        Scenario::Growth,
    ];

    /// What `all --replicas N` runs: the scenarios that say something about
    /// replicas.
    pub const REPLICAS: [Scenario; 4] =
        [Scenario::Heartbeat, Scenario::Register, Scenario::WatchFanout, Scenario::ReplicaKill];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Heartbeat => "heartbeat",
            Scenario::Register => "register",
            Scenario::WatchFanout => "watch-fanout",
            Scenario::WatchMemory => "watch-memory",
            Scenario::Rewire => "rewire",
            Scenario::Gateway => "gateway",
            Scenario::Restart => "restart",
            Scenario::Growth => "growth",
            Scenario::ReplicaKill => "replica-kill",
        }
    }

    /// What it measures, in one line (the command line's help).
    pub fn about(self) -> &'static str {
        match self {
            Scenario::Heartbeat => {
                "Heartbeat streams: acks/s at saturation, ack latency at a fixed rate"
            }
            Scenario::Register => "Durable registrations with concurrent clients",
            Scenario::WatchFanout => "A change → its arrival at every watcher",
            Scenario::WatchMemory => {
                "Registry memory: 1k slow watchers from revision 0, 1k watchers × a status burst"
            }
            Scenario::Rewire => "Provider joins / leaves / SIGKILL → the dependent's pushed wiring",
            Scenario::Gateway => "tools/call through the gateway vs directly to the agent",
            Scenario::Restart => {
                "Registry restart with stored agents: time to serve, agents expired"
            }
            Scenario::Growth => {
                "How costs grow: RSS and heartbeats at 1k-100k agents, registration with \
                 0-10k dependents (table and PNG plot)"
            }
            Scenario::ReplicaKill => {
                "--replicas N: kill -9 one replica → every agent it held re-homed and healthy"
            }
        }
    }
}

impl BenchOptions {
    /// Defaults for `scenario`, spawning registries from `switchboard_bin`
    /// and helpers from `bench_bin`.
    pub fn new(scenario: Scenario, switchboard_bin: PathBuf, bench_bin: PathBuf) -> Self {
        Self {
            scenario,
            registry: None,
            gateway: None,
            peer: None,
            switchboard_bin,
            bench_bin,
            agents: Vec::new(),
            watchers: Vec::new(),
            dependents: Vec::new(),
            plot: None,
            concurrency: Vec::new(),
            connections: None,
            duration: None,
            rate: None,
            iterations: None,
            smoke: false,
            quiet: false,
            replicas: None,
            etcd_endpoints: Vec::new(),
        }
    }

    /// Checks values that would make a run meaningless.
    pub fn validate(&self) -> BenchResult<()> {
        let zero = |name: &str, values: &[usize]| {
            if values.contains(&0) {
                Err(BenchError::Option(format!("--{name} must be greater than 0")))
            } else {
                Ok(())
            }
        };
        zero("watchers", &self.watchers)?;
        zero("concurrency", &self.concurrency)?;
        if self.scenario != Scenario::WatchFanout {
            zero("agents", &self.agents)?;
        }
        if self.connections == Some(0) {
            return Err(BenchError::Option("--connections must be greater than 0".into()));
        }
        if self.duration.is_some_and(|d| d.is_zero() || d > Duration::from_secs(600)) {
            return Err(BenchError::Option("--duration must be positive and at most 600s".into()));
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return Err(BenchError::Option("--rate must be a positive number".into()));
        }
        if self.iterations.is_some_and(|i| i == 0 || i > 10_000) {
            return Err(BenchError::Option("--iterations must be within 1..10000".into()));
        }
        if let Some(peer) = &self.peer
            && !peer.scenarios().contains(&self.scenario)
        {
            let has: Vec<&str> = peer.scenarios().iter().map(|s| s.name()).collect();
            return Err(BenchError::Option(format!(
                "--{}: {} is not measured there (it has {})",
                peer.flag(),
                self.scenario.name(),
                has.join(", ")
            )));
        }
        if !self.dependents.is_empty() && self.peer.is_some() {
            return Err(BenchError::Option(
                "--dependents is measured on Switchboard only (no peer pushes wiring)".into(),
            ));
        }
        if let Some(replicas) = self.replicas {
            if !(1..=16).contains(&replicas) {
                return Err(BenchError::Option("--replicas must be within 1..16".into()));
            }
            if self.registry.is_some() || self.peer.is_some() {
                return Err(BenchError::Option(
                    "--replicas spawns its own replicas: not with --registry, --etcd or --mcp-mesh"
                        .into(),
                ));
            }
        } else if !self.etcd_endpoints.is_empty() {
            return Err(BenchError::Option("--etcd-endpoints needs --replicas N".into()));
        }
        if self.scenario == Scenario::ReplicaKill && self.replicas.unwrap_or(0) < 2 {
            return Err(BenchError::Option(
                "replica-kill needs --replicas 2 or more (agents move to another replica)".into(),
            ));
        }
        if self.scenario == Scenario::Restart && self.registry.is_some() {
            return Err(BenchError::Option(
                "restart kills and restarts the registry: use --spawn, not --registry".into(),
            ));
        }
        Ok(())
    }

    /// The `switchboard` binary to spawn, when it is there.
    pub(crate) fn switchboard(&self) -> BenchResult<&Path> {
        if self.switchboard_bin.is_file() {
            return Ok(&self.switchboard_bin);
        }
        Err(BenchError::Option(format!(
            "--switchboard-bin: no switchboard binary at {}: build it (`cargo build --release -p \
             switchboard` puts it next to switchboard-bench), or pass --switchboard-bin PATH or \
             set SWITCHBOARD_BIN",
            self.switchboard_bin.display()
        )))
    }

    /// The phase length: `--duration`, else `normal` (or `smoke`).
    pub(crate) fn phase(&self, normal: Duration, smoke: Duration) -> Duration {
        self.duration.unwrap_or(if self.smoke { smoke } else { normal })
    }

    /// Connections for `streams` multiplexed streams: `--connections`, else
    /// about one per thousand, at least `min` (to use both cores), at most 16.
    pub(crate) fn connections_for(&self, streams: usize, min: usize) -> usize {
        self.connections
            .unwrap_or_else(|| streams.div_ceil(1000).clamp(min, 16))
            .min(streams.max(1))
    }

    /// Change rates of watch-fanout: `--rate`, else 20/s and 200/s (20/s
    /// alone hides what per-watcher costs do at a real write rate).
    pub(crate) fn watch_rates(&self) -> Vec<f64> {
        self.rate.map_or_else(|| vec![20.0, 200.0], |rate| vec![rate])
    }

    /// A list option, else the scenario's default (or smoke default).
    pub(crate) fn sizes(&self, given: &[usize], normal: &[usize], smoke: &[usize]) -> Vec<usize> {
        if !given.is_empty() {
            given.to_vec()
        } else if self.smoke {
            smoke.to_vec()
        } else {
            normal.to_vec()
        }
    }
}

impl Peer {
    /// The scenarios that have an equivalent on this peer.
    pub fn scenarios(&self) -> &'static [Scenario] {
        match self {
            Peer::Etcd(_) => &[Scenario::Heartbeat, Scenario::Register, Scenario::WatchFanout],
            Peer::McpMesh(_) => &[Scenario::Heartbeat, Scenario::Register, Scenario::Rewire],
        }
    }

    /// Its command-line flag.
    pub fn flag(&self) -> &'static str {
        match self {
            Peer::Etcd(_) => "etcd",
            Peer::McpMesh(_) => "mcp-mesh",
        }
    }
}

/// Runs the scenario of `options` and returns its report.
pub async fn run(options: &BenchOptions) -> BenchResult<Report> {
    options.validate()?;
    match &options.peer {
        Some(peer) => peers::run(options, peer).await,
        None => scenario::run(options).await,
    }
}
