//! `sb-bench-etcd`: the etcd side of `bench/compare-etcd`: lease keep-alives
//! (our heartbeats), durable puts (our registrations) and put → watch (our
//! change → watch), reported like `switchboard bench` (JSON with
//! `--output json`). Built only with the `etcd` feature (needs `protoc`).

use std::time::Duration;

use clap::Parser;
use switchboard_bench::Report;
use switchboard_bench::peers::etcd;
use switchboard_bench::progress::Progress;

/// Load an etcd.
#[derive(Debug, Parser)]
struct Args {
    /// heartbeat (lease keep-alives), register (durable puts) or watch-fanout (put → watch).
    scenario: String,
    /// The etcd client URL.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    endpoint: String,
    /// Leases (heartbeat), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    agents: Vec<usize>,
    /// Watchers (watch-fanout), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    watchers: Vec<usize>,
    /// Concurrent clients (register).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections [as `switchboard bench` picks them].
    #[arg(long)]
    connections: Option<usize>,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Fixed rate: keep-alives/s (heartbeat) or puts/s (watch-fanout, default 20).
    #[arg(long)]
    rate: Option<f64>,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    output: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.duration > 0.0 && args.duration <= 600.0, "--duration: 0 < s <= 600");
    let length = Duration::from_secs_f64(args.duration);
    let progress = Progress::new(&format!("etcd {}", args.scenario), false);
    let mut report = Report::new(&args.scenario, false);
    report.system = "etcd".into();
    report.machine.build = "debian".into();
    let pick = |streams: usize, min: usize| {
        args.connections
            .unwrap_or_else(|| streams.div_ceil(1000).clamp(min, 16))
            .min(streams.max(1))
    };
    match args.scenario.as_str() {
        "heartbeat" => {
            for &leases in &args.agents {
                let clients = etcd::clients(&args.endpoint, pick(leases, 4)).await?;
                etcd::keepalive(&clients, leases, length, args.rate, &progress, &mut report)
                    .await?;
            }
        }
        "register" => {
            let connections = args.connections.unwrap_or(args.concurrency.min(8));
            let clients = etcd::clients(&args.endpoint, connections).await?;
            etcd::put(&clients, args.concurrency, length, &progress, &mut report).await?;
        }
        "watch-fanout" => {
            for &watchers in &args.watchers {
                let clients = etcd::clients(&args.endpoint, pick(watchers * 10, 1)).await?;
                let rate = args.rate.unwrap_or(20.0);
                etcd::watch(&clients, watchers, rate, length, &progress, &mut report).await?;
                report.attach_process(server_pid(&args.endpoint));
            }
        }
        other => {
            anyhow::bail!("unknown scenario {other:?}: want heartbeat, register or watch-fanout")
        }
    }
    // The server's memory, when it runs here, after each case.
    report.attach_process(server_pid(&args.endpoint));
    if args.output == "json" {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.render_table());
    }
    Ok(())
}

/// The pid of the etcd listening at `endpoint`, when it runs here.
fn server_pid(endpoint: &str) -> Option<u32> {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/').parse().ok()?;
    switchboard_bench::procfs::listener_pid(addr)
}
