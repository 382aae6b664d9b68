//! The command line of `switchboard-bench`, declared once: the binary only
//! parses it and calls [`run`]. Progress goes to stderr, the report to stdout
//! (a markdown table, or JSON with `--output json`).
//!
//! Two hidden scenarios are the helper processes the benchmarks start from
//! this same binary: `provider` (a tiny provider that `rewire` SIGKILLs) and
//! `echo-agent` (the upstream of `gateway`). The server side is always the
//! real product binary, `switchboard`, found next to this one.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};

use crate::error::{BenchError, BenchResult};
use crate::{BenchOptions, Peer, Report, Scenario, helpers};

/// How long a helper process lives when `--duration` does not say.
const HELPER_LIFETIME: Duration = Duration::from_secs(600);

/// Flags of `switchboard-bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The scenario to run (`all` runs every one in turn).
    #[arg(value_enum)]
    pub scenario: ScenarioArg,
    /// Load an existing registry at this gRPC address instead of spawning one.
    #[arg(long, conflicts_with = "spawn")]
    pub registry: Option<String>,
    /// Spawn a fresh `switchboard registry` on a temp data dir (the default
    /// when --registry is not given).
    #[arg(long)]
    pub spawn: bool,
    /// An existing gateway (`host:port`) for the gateway scenario; default: spawn one.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Drive the etcd at this client URL instead of Switchboard (heartbeat = lease keep-alives,
    /// register = durable puts, watch-fanout = put → watch; needs the `etcd` feature).
    #[arg(long, value_name = "URL", conflicts_with_all = ["registry", "spawn", "gateway"])]
    pub etcd: Option<String>,
    /// Drive the MCP Mesh registry at this base URL instead of Switchboard (heartbeat,
    /// register, rewire).
    #[arg(long, value_name = "URL", conflicts_with_all = ["registry", "spawn", "gateway", "etcd"])]
    pub mcp_mesh: Option<String>,
    /// The `switchboard` binary spawned as registry and gateway [default: the one next to
    /// this binary].
    #[arg(long, env = "SWITCHBOARD_BIN", value_name = "PATH")]
    pub switchboard_bin: Option<PathBuf>,
    /// Agents, comma-separated for several cases [heartbeat: 1000,10000; restart: 10000;
    /// watch-fanout: background agents, 0].
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<usize>,
    /// Watchers, comma-separated [watch-fanout: 1,100,1000].
    #[arg(long, value_delimiter = ',')]
    pub watchers: Vec<usize>,
    /// Dependents sharing one capability, comma-separated [growth: 0,100,1000,10000]; rewire
    /// then measures one more provider joining (acknowledged, every dependent pushed) instead of
    /// its usual cases.
    #[arg(long, value_delimiter = ',')]
    pub dependents: Vec<usize>,
    /// Where growth writes its PNG plot [growth.png; none with --smoke].
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// Concurrent clients, comma-separated [register: 64; gateway: 1,32; MCP Mesh heartbeat: 64].
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// HTTP/2 connections to spread streams and calls over [about one per 1000 streams].
    #[arg(long)]
    pub connections: Option<usize>,
    /// Length of each measured phase: seconds, or with a unit (500ms, 10s) [10s; gateway 5s].
    #[arg(long, value_parser = phase_length)]
    pub duration: Option<Duration>,
    /// Fixed rate: heartbeats/s for heartbeat [half the saturated rate], changes/s for
    /// watch-fanout [20 and 200].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Samples of one-at-a-time scenarios [rewire: 200 joins, 20 crashes; restart: 2;
    /// MCP Mesh rewire: 5 pairs].
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Tiny sizes and short phases: checks that a scenario works, measures nothing.
    #[arg(long)]
    pub smoke: bool,
    /// Run against N registry replicas (`switchboard registry --store etcd`) on one etcd
    /// prefix instead of one registry on sled; connections, agents and watchers are spread over
    /// them (heartbeat, register, watch-fanout, replica-kill).
    #[arg(long, value_name = "N", conflicts_with_all = ["registry", "etcd", "mcp_mesh"])]
    pub replicas: Option<usize>,
    /// The etcd of --replicas (`host:port,…`) [default: a 3-member etcd started here on free
    /// loopback ports].
    #[arg(long, value_delimiter = ',', requires = "replicas")]
    pub etcd_endpoints: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Capability served by the `provider` helper.
    #[arg(long, hide = true)]
    pub capability: Option<String>,
    /// Dial the registry (--registry) with TLS, trusting this CA (PEM).
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a registry that requires one (mTLS).
    #[arg(long, value_name = "PATH", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// The private key of --tls-client-cert (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

/// What to run: a scenario, all of them, or a hidden helper process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenarioArg {
    /// One scenario.
    Run(Scenario),
    /// Every scenario in turn (with a peer: every one the peer has).
    All,
    /// Helper: a provider process that heartbeats until killed.
    Provider,
    /// Helper: an MCP agent with an `echo` tool.
    EchoAgent,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A markdown table and notes.
    Table,
    /// JSON (an array of reports for `all`).
    Json,
}

/// Runs a benchmark scenario (or a helper process) as the flags say.
pub async fn run(args: BenchArgs) -> BenchResult<()> {
    let lifetime = args.duration.unwrap_or(HELPER_LIFETIME);
    let tls = switchboard_tls::ClientTlsConfig {
        ca: args.tls_ca.clone(),
        cert: args.tls_client_cert.clone(),
        key: args.tls_client_key.clone(),
    };
    if tls != switchboard_tls::ClientTlsConfig::default() {
        let tls = switchboard_tls::ClientTls::load(&tls)
            .map_err(|error| BenchError::Option(error.to_string()))?;
        helpers::use_tls(tls);
    }
    match args.scenario {
        ScenarioArg::Provider => {
            let registry = required(&args.registry, "registry")?;
            let capability = required(&args.capability, "capability")?;
            return helpers::run_provider(registry, capability, lifetime).await;
        }
        ScenarioArg::EchoAgent => {
            let registry = required(&args.registry, "registry")?;
            return helpers::run_echo_agent(registry, lifetime).await;
        }
        _ => {}
    }
    let template = args.options()?;
    let mut reports: Vec<Report> = Vec::new();
    for scenario in args.scenarios(template.peer.as_ref()) {
        let all = args.scenario == ScenarioArg::All;
        if all && scenario == Scenario::Restart && template.registry.is_some() {
            eprintln!("[restart] skipped: it needs a spawned registry (--spawn)");
            continue;
        }
        let options = BenchOptions { scenario, ..template.clone() };
        let report = crate::run(&options).await.map_err(|error| in_scenario(scenario, error))?;
        if args.output == Output::Table {
            println!("{}", report.render_table());
        }
        reports.push(report);
    }
    if args.output == Output::Json {
        let json = if args.scenario == ScenarioArg::All {
            serde_json::to_string_pretty(&reports)
                .map_err(|e| BenchError::Option(format!("encoding the reports: {e}")))?
        } else {
            reports.first().map(Report::to_json).unwrap_or_default()
        };
        println!("{json}");
    }
    Ok(())
}

// === impl ScenarioArg ===

impl ValueEnum for ScenarioArg {
    fn value_variants<'a>() -> &'a [Self] {
        const VARIANTS: [ScenarioArg; 12] = [
            ScenarioArg::Run(Scenario::Heartbeat),
            ScenarioArg::Run(Scenario::Register),
            ScenarioArg::Run(Scenario::WatchFanout),
            ScenarioArg::Run(Scenario::WatchMemory),
            ScenarioArg::Run(Scenario::Rewire),
            ScenarioArg::Run(Scenario::Gateway),
            ScenarioArg::Run(Scenario::Restart),
            ScenarioArg::Run(Scenario::Growth),
            ScenarioArg::Run(Scenario::ReplicaKill),
            ScenarioArg::All,
            ScenarioArg::Provider,
            ScenarioArg::EchoAgent,
        ];
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            ScenarioArg::Run(scenario) => {
                PossibleValue::new(scenario.name()).help(scenario.about())
            }
            ScenarioArg::All => PossibleValue::new("all")
                .help("Every scenario in turn (with --etcd or --mcp-mesh: every one the peer has)"),
            ScenarioArg::Provider => PossibleValue::new("provider").hide(true),
            ScenarioArg::EchoAgent => PossibleValue::new("echo-agent").hide(true),
        })
    }
}

// === impl BenchArgs ===

impl BenchArgs {
    /// The options of a run (its scenario is set per scenario run).
    fn options(&self) -> BenchResult<BenchOptions> {
        let bench_bin = std::env::current_exe()
            .map_err(|e| BenchError::io("finding this binary (current_exe)", e))?;
        let switchboard_bin =
            self.switchboard_bin.clone().unwrap_or_else(|| bench_bin.with_file_name("switchboard"));
        let peer = match (&self.etcd, &self.mcp_mesh) {
            (Some(url), _) => Some(Peer::Etcd(url.clone())),
            (None, Some(url)) => Some(Peer::McpMesh(url.clone())),
            (None, None) => None,
        };
        let mut options = BenchOptions::new(Scenario::Heartbeat, switchboard_bin, bench_bin);
        options.registry = self.registry.clone();
        options.gateway = self.gateway.clone();
        options.peer = peer;
        options.agents = self.agents.clone();
        options.watchers = self.watchers.clone();
        options.dependents = self.dependents.clone();
        options.plot = self.plot.clone().or_else(|| (!self.smoke).then(|| "growth.png".into()));
        options.concurrency = self.concurrency.clone();
        options.connections = self.connections;
        options.duration = self.duration;
        options.rate = self.rate;
        options.iterations = self.iterations;
        options.smoke = self.smoke;
        options.quiet = self.quiet;
        options.replicas = self.replicas;
        options.etcd_endpoints = self.etcd_endpoints.clone();
        Ok(options)
    }

    /// The scenarios to run, in order.
    fn scenarios(&self, peer: Option<&Peer>) -> Vec<Scenario> {
        match self.scenario {
            ScenarioArg::Run(scenario) => vec![scenario],
            ScenarioArg::All | ScenarioArg::Provider | ScenarioArg::EchoAgent => match peer {
                Some(peer) => peer.scenarios().to_vec(),
                None if self.replicas.is_some() => Scenario::REPLICAS.to_vec(),
                None => Scenario::ALL.to_vec(),
            },
        }
    }
}

/// A flag a helper process cannot do without.
fn required<'a>(value: &'a Option<String>, flag: &str) -> BenchResult<&'a str> {
    value.as_deref().ok_or_else(|| BenchError::Option(format!("--{flag} is required here")))
}

/// `error`, saying which scenario it stopped.
fn in_scenario(scenario: Scenario, error: BenchError) -> BenchError {
    match error {
        BenchError::Option(message) => BenchError::Option(message),
        other => BenchError::Scenario { scenario: scenario.name(), source: Box::new(other) },
    }
}

/// A phase length: plain seconds (`10`, `1.5`) or a number with a unit
/// (`500ms`, `10s`, `2m`); within 1 ms..600 s.
fn phase_length(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let seconds = number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| n * scale)
        .ok_or_else(|| format!("{text:?} is not a positive duration (10, 1.5, 500ms, 10s, 2m)"))?;
    if !(0.001..=600.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range: a phase lasts 1ms..600s"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(line: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("switchboard-bench").chain(line.iter().copied()))
            .map(|cli| cli.args)
    }

    #[test]
    fn phase_lengths_take_seconds_or_a_unit() {
        assert_eq!(phase_length("10"), Ok(Duration::from_secs(10)));
        assert_eq!(phase_length("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(phase_length("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(phase_length("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "0", "-1", "ten", "5h", "11m", "nan"] {
            assert!(phase_length(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn lists_split_on_commas_and_peers_exclude_a_registry() {
        let args = parse(&["heartbeat", "--agents", "10,20", "--duration", "2s"]).unwrap();
        assert_eq!(args.agents, [10, 20]);
        assert_eq!(args.duration, Some(Duration::from_secs(2)));
        assert!(parse(&["register", "--etcd", "http://e", "--registry", "r"]).is_err());
        assert!(parse(&["register", "--etcd", "http://e", "--mcp-mesh", "http://m"]).is_err());
        let error = parse(&["register", "--duration", "soon"]).unwrap_err().to_string();
        assert!(error.contains("--duration"), "{error}");
    }

    #[test]
    fn all_runs_what_the_peer_has() {
        let args = parse(&["all"]).unwrap();
        assert_eq!(args.scenarios(None), Scenario::ALL);
        let etcd = Peer::Etcd("http://127.0.0.1:2379".into());
        assert_eq!(args.scenarios(Some(&etcd)), etcd.scenarios());
        let one = parse(&["rewire"]).unwrap();
        assert_eq!(one.scenarios(Some(&etcd)), [Scenario::Rewire]);
        let replicas = parse(&["all", "--replicas", "2"]).unwrap();
        assert_eq!(replicas.scenarios(None), Scenario::REPLICAS);
    }

    #[test]
    fn replicas_take_etcd_endpoints_and_exclude_other_targets() {
        let args =
            parse(&["replica-kill", "--replicas", "3", "--etcd-endpoints", "a:1,b:2"]).unwrap();
        assert_eq!(args.replicas, Some(3));
        assert_eq!(args.etcd_endpoints, ["a:1", "b:2"]);
        assert!(parse(&["heartbeat", "--etcd-endpoints", "a:1"]).is_err());
        assert!(parse(&["heartbeat", "--replicas", "2", "--registry", "r"]).is_err());
        assert!(parse(&["heartbeat", "--replicas", "2", "--etcd", "http://e"]).is_err());
    }

    #[test]
    fn replica_kill_needs_two_replicas() {
        let options = |replicas| {
            let mut args = parse(&["replica-kill"]).unwrap();
            args.replicas = replicas;
            let mut options = args.options().unwrap();
            options.scenario = Scenario::ReplicaKill;
            options.validate()
        };
        for bad in [None, Some(1), Some(0), Some(17)] {
            assert!(options(bad).is_err(), "{bad:?} replicas should be refused");
        }
        assert!(options(Some(2)).is_ok());
    }
}
