//! `sb-bench-mcp-mesh`: the MCP Mesh side of `bench/compare-mcp-mesh`:
//! the register, heartbeat and rewire scenarios against an MCP Mesh registry
//! (3.7.1) at `--url`, reported like `switchboard bench` (JSON with
//! `--output json`).

use std::time::Duration;

use clap::Parser;
use switchboard_bench::Report;
use switchboard_bench::peers::mcp_mesh::{self, MeshRegistry};
use switchboard_bench::progress::Progress;

/// Load an MCP Mesh registry.
#[derive(Debug, Parser)]
struct Args {
    /// register, heartbeat or rewire.
    scenario: String,
    /// The registry's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Concurrent clients (connections).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Agents registered for the heartbeat scenario.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Independent dependent/provider pairs for rewire.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    output: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.duration > 0.0 && args.duration <= 600.0, "--duration: 0 < s <= 600");
    anyhow::ensure!(args.concurrency > 0 && args.agents > 0 && args.pairs > 0, "sizes must be > 0");
    let mesh = MeshRegistry::new(&args.url)?;
    let progress = Progress::new(&format!("mcp-mesh {}", args.scenario), false);
    let length = Duration::from_secs_f64(args.duration);
    let mut report = Report::new(&args.scenario, false);
    report.system = "mcp-mesh-registry 3.7.1".into();
    report.machine.build = "upstream".into();
    match args.scenario.as_str() {
        "register" => {
            mcp_mesh::register(&mesh, args.concurrency, length, &progress, &mut report).await?
        }
        "heartbeat" => {
            mcp_mesh::heartbeat(
                &mesh,
                args.agents,
                args.concurrency,
                length,
                &progress,
                &mut report,
            )
            .await?
        }
        "rewire" => mcp_mesh::rewire(&mesh, args.pairs, &progress, &mut report).await?,
        other => anyhow::bail!("unknown scenario {other:?}: want register, heartbeat or rewire"),
    }
    // The server's memory, when it runs here (found by its listening port).
    let addr = args.url.trim_start_matches("http://").trim_end_matches('/').parse().ok();
    report.attach_process(addr.and_then(switchboard_bench::procfs::listener_pid));
    if args.output == "json" {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.render_table());
    }
    Ok(())
}
