//! `gateway`: `tools/call` of an echo tool through the gateway against the
//! same call made straight to the agent, with the same rmcp client (one
//! reused session per client), with 1 and 32 concurrent clients. Reports the
//! latency the gateway adds at p50 and its share of direct throughput.
//!
//! The gateway is `--gateway ADDR`, or `switchboard gateway` spawned next to
//! the registry; when it cannot be started the scenario is skipped with the
//! reason, not failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use switchboard_client::{McpPool, McpPoolConfig};

use crate::error::{BenchError, BenchResult};
use crate::phase::closed_loop;
use crate::process::ChildProcess;
use crate::report::{Report, Row};
use crate::target::RegistryTarget;

use super::Ctx;

/// How long the echo agent lives at most (seconds).
const HELPER_LIFETIME: &str = "600";
/// Longest wait for a helper process to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.concurrency, &[1, 32], &[1, 2]);
    let length = options.phase(Duration::from_secs(5), Duration::from_secs(1));
    let target = ctx.target(&[]).await?;
    let (mut spawned_gateway, gateway_addr) = match gateway(ctx, &target).await {
        Ok(gateway) => gateway,
        Err(error) => {
            let reason = format!("the gateway is not available: {error}");
            ctx.progress.say(format!("SKIPPED: {reason}"));
            report.skipped = Some(reason);
            target.shutdown().await;
            return Ok(());
        }
    };
    let (mut agent, direct) = echo_agent(ctx, &target).await?;
    let via_gateway = format!("http://{gateway_addr}/mcp");
    let gateway_tool = wait_for_route(&via_gateway, Duration::from_secs(20)).await?;
    ctx.progress.say(format!("gateway {gateway_addr} routes {gateway_tool:?} to the echo agent"));

    for clients in sizes {
        let straight = measure(ctx, "direct", &direct, "echo", clients, length).await?;
        let routed = measure(ctx, "gateway", &via_gateway, &gateway_tool, clients, length).await?;
        let ratio = if straight.throughput_per_s > 0.0 {
            routed.throughput_per_s / straight.throughput_per_s
        } else {
            0.0
        };
        let mut routed = routed.with("throughput_ratio", (ratio * 1000.0).round() / 1000.0);
        if let (Some(s), Some(r)) = (straight.latency, routed.latency) {
            routed = routed.with("added_p50_ms", ((r.p50_ms - s.p50_ms) * 1000.0).round() / 1000.0);
        }
        report.rows.extend([straight, routed]);
    }
    report.note(
        "gateway: the same rmcp client (one reused session per client) calls `echo` on the agent \
         directly, then through the gateway; throughput_ratio = gateway / direct",
    );
    agent.kill().await;
    if let Some(gateway) = spawned_gateway.as_mut() {
        gateway.kill().await;
    }
    target.shutdown().await;
    Ok(())
}

/// The gateway to call: `--gateway`, else `switchboard gateway` spawned and
/// fed by `target`.
async fn gateway(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
) -> BenchResult<(Option<ChildProcess>, String)> {
    if let Some(addr) = &ctx.options.gateway {
        return Ok((None, addr.clone()));
    }
    let args: Vec<String> =
        ["gateway", "--registry", &target.addr, "--gateway-addr", "127.0.0.1:0"]
            .map(String::from)
            .into();
    let env = [("SWITCHBOARD_LOG", "warn")];
    let mut child = ChildProcess::spawn(ctx.options.switchboard()?, &args, &env)?;
    let addr = child.wait_listen("gateway", Duration::from_secs(20)).await?;
    Ok((Some(child), addr.to_string()))
}

/// The `echo-agent` helper registered at `target`, and its MCP endpoint.
async fn echo_agent(ctx: &Ctx<'_>, target: &RegistryTarget) -> BenchResult<(ChildProcess, String)> {
    let args: Vec<String> =
        ["echo-agent", "--registry", &target.addr, "--duration", HELPER_LIFETIME]
            .map(String::from)
            .into();
    let mut agent = ChildProcess::spawn(&ctx.options.bench_bin, &args, &[("RUST_LOG", "warn")])?;
    let addr = agent.wait_listen("agent-mcp", START_TIMEOUT).await?;
    agent
        .wait_for_line("REGISTERED", START_TIMEOUT, |l| l.starts_with("REGISTERED").then_some(()))
        .await?;
    Ok((agent, format!("http://{addr}/mcp")))
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
    let mut pools = Vec::with_capacity(clients);
    for _ in 0..clients {
        let pool = McpPool::new(McpPoolConfig::default());
        // Warm up: the session (and its connection) exists before timing.
        pool.call_tool(endpoint, call(tool)).await.map_err(|e| BenchError::Mcp(e.to_string()))?;
        pools.push(Arc::new(pool));
    }
    let label = format!("{path}, {clients} clients");
    let plan = crate::phase::PhasePlan {
        progress: &ctx.progress,
        label: &label,
        unit: "calls",
        length,
        server: None,
    };
    let stats = closed_loop(&plan, clients, |worker| {
        let (pool, endpoint, tool) = (pools[worker].clone(), endpoint.to_owned(), tool.to_owned());
        move |_| {
            let (pool, endpoint, params) = (pool.clone(), endpoint.clone(), call(&tool));
            Some(async move {
                let answer = pool.call_tool(&endpoint, params).await;
                answer.is_ok_and(|result| result.is_error != Some(true))
            })
        }
    })
    .await;
    Ok(Row::phase(format!("tools/call {path}, {clients} clients"), &stats))
}

fn call(tool: &str) -> CallToolRequestParams {
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), serde_json::Value::String("ping".into()));
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}
