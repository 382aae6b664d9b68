//! `gateway`: `tools/call` of an echo tool through the gateway against the
//! same call made straight to the agent, with the same rmcp client (one
//! reused session per client), with 1 and 32 concurrent clients. Reports the
//! latency the gateway adds at p50 and its share of direct throughput.
//!
//! The gateway is `--gateway ADDR`, or `switchboard gateway` spawned next to
//! the registry; when it cannot be started the scenario is skipped with the
//! reason, not failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use switchboard_client::{McpPool, McpPoolConfig};

use crate::error::{BenchError, BenchResult};
use crate::process::ChildProcess;
use crate::report::{Report, Row};
use crate::stats::SharedLatency;

use super::Ctx;

/// How long the echo agent and a spawned gateway live at most.
const HELPER_LIFETIME: &str = "600";

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.concurrency, &[1, 32], &[1, 2]);
    let phase_length = options.phase(Duration::from_secs(5), Duration::from_secs(1));
    let target = ctx.target(&[]).await?;

    let mut spawned_gateway = None;
    let gateway_addr = match &options.gateway {
        Some(addr) => addr.clone(),
        None => {
            let args: Vec<String> = vec![
                "gateway".into(),
                "--registry".into(),
                target.addr.clone(),
                "--gateway-addr".into(),
                "127.0.0.1:0".into(),
            ];
            let started = async {
                let mut child = ChildProcess::spawn(
                    &options.switchboard_bin,
                    &args,
                    &[("SWITCHBOARD_LOG", "warn")],
                )?;
                let addr = child.wait_listen("gateway", Duration::from_secs(20)).await?;
                Ok::<_, BenchError>((child, addr))
            };
            match started.await {
                Ok((child, addr)) => {
                    spawned_gateway = Some(child);
                    addr.to_string()
                }
                Err(error) => {
                    let reason = format!("the gateway is not available: {error}");
                    ctx.progress.say(format!("SKIPPED: {reason}"));
                    report.skipped = Some(reason);
                    target.shutdown().await;
                    return Ok(());
                }
            }
        }
    };

    let args: Vec<String> = vec![
        "bench".into(),
        "echo-agent".into(),
        "--registry".into(),
        target.addr.clone(),
        "--duration".into(),
        HELPER_LIFETIME.into(),
    ];
    let mut agent = ChildProcess::spawn(&options.switchboard_bin, &args, &[("RUST_LOG", "warn")])?;
    let agent_addr = agent.wait_listen("agent-mcp", Duration::from_secs(30)).await?;
    agent
        .wait_for_line("REGISTERED", Duration::from_secs(30), |l| {
            l.starts_with("REGISTERED").then_some(())
        })
        .await?;
    let direct = format!("http://{agent_addr}/mcp");
    let via_gateway = format!("http://{gateway_addr}/mcp");
    let gateway_tool = wait_for_route(&via_gateway, Duration::from_secs(20)).await?;
    ctx.progress.say(format!("gateway {gateway_addr} routes {gateway_tool:?} to the echo agent"));

    for clients in sizes {
        let straight = measure(ctx, "direct", &direct, "echo", clients, phase_length).await?;
        let routed =
            measure(ctx, "gateway", &via_gateway, &gateway_tool, clients, phase_length).await?;
        let added = match (&straight.latency, &routed.latency) {
            (Some(s), Some(r)) => Some(r.p50_ms - s.p50_ms),
            _ => None,
        };
        let ratio = if straight.throughput_per_s > 0.0 {
            routed.throughput_per_s / straight.throughput_per_s
        } else {
            0.0
        };
        report.rows.push(straight);
        let mut routed = routed.with("throughput_ratio", (ratio * 1000.0).round() / 1000.0);
        if let Some(added) = added {
            routed = routed.with("added_p50_ms", (added * 1000.0).round() / 1000.0);
        }
        report.rows.push(routed);
    }
    report.note(
        "gateway: the same rmcp client (one reused session per client) calls `echo` on the agent \
         directly, then through the gateway; throughput_ratio = gateway / direct",
    );
    agent.kill().await;
    if let Some(mut gateway) = spawned_gateway {
        gateway.kill().await;
    }
    target.shutdown().await;
    Ok(())
}

/// Waits until the gateway lists the echo tool; returns its name there.
async fn wait_for_route(gateway: &str, timeout: Duration) -> BenchResult<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let pool = McpPool::new(McpPoolConfig::default());
        let last = match pool.list_tools(gateway).await {
            Ok(tools) => {
                if let Some(tool) =
                    tools.iter().find(|t| t.name == "echo" || t.name.ends_with("__echo"))
                {
                    return Ok(tool.name.to_string());
                }
                format!("tools/list has {} tools, no echo", tools.len())
            }
            Err(error) => error.to_string(),
        };
        if Instant::now() > deadline {
            return Err(BenchError::Mcp(format!(
                "the gateway did not route the echo tool within {timeout:?}: {last}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `clients` clients, each with its own session, calling `tool` at `endpoint`
/// back to back for `length`.
async fn measure(
    ctx: &Ctx<'_>,
    path: &str,
    endpoint: &str,
    tool: &str,
    clients: usize,
    length: Duration,
) -> BenchResult<Row> {
    let latency = Arc::new(SharedLatency::new());
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut pools = Vec::with_capacity(clients);
    for _ in 0..clients {
        let pool = McpPool::new(McpPoolConfig::default());
        // Warm up: the session (and its connection) exists before timing.
        pool.call_tool(endpoint, call(tool)).await.map_err(|e| BenchError::Mcp(e.to_string()))?;
        pools.push(Arc::new(pool));
    }
    let started = Instant::now();
    let deadline = started + length;
    let workers: Vec<_> = pools
        .into_iter()
        .enumerate()
        .map(|(index, pool)| {
            let (latency, done, errors) = (latency.clone(), done.clone(), errors.clone());
            let (endpoint, tool) = (endpoint.to_owned(), tool.to_owned());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match pool.call_tool(&endpoint, call(&tool)).await {
                        Ok(result) if result.is_error != Some(true) => {
                            latency.record(index, sent.elapsed());
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    {
        let label = format!("{path}, {clients} clients");
        let _shown = ctx.progress.phase(&label, "calls", Some(length), done.clone());
        for worker in workers {
            let _ = worker.await;
        }
    }
    let mut row = Row::new(
        format!("tools/call {path}, {clients} clients"),
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        &latency.collect(),
    );
    let failed = errors.load(Ordering::Relaxed);
    if failed > 0 {
        row = row.with("errors", failed);
    }
    Ok(row)
}

fn call(tool: &str) -> CallToolRequestParams {
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), serde_json::Value::String("ping".into()));
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}
