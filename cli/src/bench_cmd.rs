//! `switchboard bench <scenario>`: the load generator of `bench/`, so users
//! can size their own deployment. Progress goes to stderr, the report to
//! stdout (a markdown table, or JSON with `--output json`).
//!
//! Two hidden scenarios are helper processes the benchmarks start from this
//! same binary: `provider` (a tiny provider that `rewire` SIGKILLs) and
//! `echo-agent` (the upstream of `gateway`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use switchboard_bench::{BenchOptions, Report, Scenario};

/// Flags of `switchboard bench`.
#[derive(Debug, Args)]
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
    /// Agents, comma-separated for several cases [heartbeat: 1000,10000; restart: 10000;
    /// watch-fanout: background agents, 0].
    #[arg(long, value_delimiter = ',')]
    pub agents: Vec<usize>,
    /// Watchers, comma-separated [watch-fanout: 1,100,1000].
    #[arg(long, value_delimiter = ',')]
    pub watchers: Vec<usize>,
    /// Concurrent clients, comma-separated [register: 64; gateway: 1,32].
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// HTTP/2 connections to spread streams and calls over [about one per 1000 streams].
    #[arg(long)]
    pub connections: Option<usize>,
    /// Length of each measured phase: seconds, or with a unit (500ms, 10s) [10s; gateway 5s].
    #[arg(long)]
    pub duration: Option<String>,
    /// Fixed rate: heartbeats/s for heartbeat [half the saturated rate], changes/s for
    /// watch-fanout [20].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Samples of one-at-a-time scenarios [rewire: 200 joins, 20 crashes; restart: 2].
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Tiny sizes and short phases: checks that a scenario works, measures nothing.
    #[arg(long)]
    pub smoke: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Capability served by the `provider` helper.
    #[arg(long, hide = true)]
    pub capability: Option<String>,
}

/// The scenarios (and the hidden helper processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    /// Heartbeat streams: acks/s at saturation, ack latency at a fixed rate.
    Heartbeat,
    /// Durable registrations with concurrent clients.
    Register,
    /// A change → its arrival at every watcher.
    WatchFanout,
    /// Provider joins / leaves / SIGKILL → dependent's pushed wiring.
    Rewire,
    /// tools/call through the gateway vs directly to the agent.
    Gateway,
    /// Registry restart with stored agents: time to serve, agents expired.
    Restart,
    /// Every scenario in turn.
    All,
    /// Helper: a provider process that heartbeats until killed.
    #[value(hide = true)]
    Provider,
    /// Helper: an MCP agent with an `echo` tool.
    #[value(hide = true)]
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

/// Runs a benchmark scenario (or a helper process).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    match args.scenario {
        ScenarioArg::Provider => {
            let registry = args.registry.as_deref().context("provider needs --registry")?;
            let capability = args.capability.as_deref().context("provider needs --capability")?;
            let lifetime = duration.unwrap_or(Duration::from_secs(600));
            return Ok(
                switchboard_bench::helpers::run_provider(registry, capability, lifetime).await?
            );
        }
        ScenarioArg::EchoAgent => {
            let registry = args.registry.as_deref().context("echo-agent needs --registry")?;
            let lifetime = duration.unwrap_or(Duration::from_secs(600));
            return Ok(switchboard_bench::helpers::run_echo_agent(registry, lifetime).await?);
        }
        _ => {}
    }
    let scenarios: Vec<Scenario> = match args.scenario {
        ScenarioArg::Heartbeat => vec![Scenario::Heartbeat],
        ScenarioArg::Register => vec![Scenario::Register],
        ScenarioArg::WatchFanout => vec![Scenario::WatchFanout],
        ScenarioArg::Rewire => vec![Scenario::Rewire],
        ScenarioArg::Gateway => vec![Scenario::Gateway],
        ScenarioArg::Restart => vec![Scenario::Restart],
        ScenarioArg::All | ScenarioArg::Provider | ScenarioArg::EchoAgent => Scenario::ALL.to_vec(),
    };
    let bin = switchboard_bin()?;
    let mut reports: Vec<Report> = Vec::new();
    for scenario in scenarios {
        let mut options = BenchOptions::new(scenario, bin.clone());
        options.registry = args.registry.clone();
        options.gateway = args.gateway.clone();
        options.agents = args.agents.clone();
        options.watchers = args.watchers.clone();
        options.concurrency = args.concurrency.clone();
        options.connections = args.connections;
        options.duration = duration;
        options.rate = args.rate;
        options.iterations = args.iterations;
        options.smoke = args.smoke;
        options.quiet = args.quiet;
        if scenario == Scenario::Restart
            && options.registry.is_some()
            && args.scenario == ScenarioArg::All
        {
            eprintln!("[restart] skipped: it needs a spawned registry (--spawn)");
            continue;
        }
        let report = switchboard_bench::run(&options)
            .await
            .with_context(|| format!("bench {}", scenario.name()))?;
        if args.output == Output::Table {
            println!("{}", report.render_table());
        }
        reports.push(report);
    }
    if args.output == Output::Json {
        let json = if args.scenario == ScenarioArg::All {
            serde_json::to_string_pretty(&reports)?
        } else {
            reports.first().map(Report::to_json).unwrap_or_default()
        };
        println!("{json}");
    }
    Ok(())
}

/// This binary: spawned as registry, gateway and helper processes.
fn switchboard_bin() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the switchboard binary (current_exe)")
}

/// `10` (seconds) or a duration with a unit (`500ms`, `10s`, `2m`).
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    if let Ok(seconds) = text.trim().parse::<f64>() {
        anyhow::ensure!(seconds > 0.0 && seconds.is_finite(), "--duration must be positive");
        return Ok(Duration::from_secs_f64(seconds));
    }
    crate::duration::parse(text).map_err(|e| anyhow::anyhow!("--duration: {e}"))
}
