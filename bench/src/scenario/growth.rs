//! `growth`: how the registry's costs grow with what it holds.
//!
//! Sizes (`--agents`, default 1k, 10k, 50k, 100k): a fresh registry gets N
//! agents of five tools, each tool with a realistic ~500-byte JSON Schema;
//! its RSS is read empty, with the agents registered, and with one
//! heartbeat stream per agent open, and with `--watchers` (default 1000)
//! idle watchers open too; then the streams saturate it for one
//! short phase (acks/s). Dependents (`--dependents`, default 0, 100, 1k,
//! 10k): a fresh registry gets D agents that all depend on one capability,
//! then providers of it join one at a time (`--iterations`, default 20) and
//! each registration's latency is timed — every join rewires all D.
//! The figures go to the table and, drawn by the bench, to a PNG (`--plot`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_client::proto_json::to_struct;
use switchboard_proto::EncodedStruct;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{
    DependencySpec, ListAgentsRequest, RegisterAgentRequest, Tool, WatchRequest,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{agent_request, deregister_all, register_all, run_tag};
use crate::fleet::{Mode, Phase};
use crate::phase::{hold, wait_until};
use crate::plot::{self, Panel};
use crate::report::{Report, Row};
use crate::stats::Latency;
use crate::target::RegistryTarget;

use super::Ctx;

/// The capability every dependent needs and every joining provider offers.
const CAPABILITY: &str = "growth.dep";
/// Registrations in flight while filling a registry with dependents.
const REGISTER_CONCURRENCY: usize = 64;
/// Longest wait for every watcher to be open.
const WATCHERS_TIMEOUT: Duration = Duration::from_secs(60);
const MIB: f64 = 1024.0 * 1024.0;

pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report) -> BenchResult<()> {
    let options = ctx.options;
    let sizes = options.sizes(&options.agents, &[1000, 10_000, 50_000, 100_000], &[30, 60]);
    let dependents = options.sizes(&options.dependents, &[0, 100, 1000, 10_000], &[0, 20]);
    let length = options.phase(Duration::from_secs(3), Duration::from_millis(500));
    let watchers =
        options.watchers.first().copied().unwrap_or(if options.smoke { 3 } else { 1000 });
    let joins = options.iterations.unwrap_or(if options.smoke { 3 } else { 20 });
    let tag = run_tag();

    let mut size_rows = Vec::new();
    for agents in sizes {
        let target = ctx.target(&[]).await?;
        size_rows.push(size_case(ctx, &target, &tag, agents, watchers, length).await?);
        target.shutdown().await;
    }
    let mut dependent_rows = Vec::new();
    for count in dependents {
        let target = ctx.target(&[]).await?;
        dependent_rows.push(dependents_case(ctx, &target, &tag, count, joins).await?);
        target.shutdown().await;
    }
    if let Some(path) = &options.plot {
        let png = plot::render(&panels(&size_rows, &dependent_rows));
        std::fs::write(path, png)
            .map_err(|e| BenchError::io(format!("writing the plot {}", path.display()), e))?;
        report.note(format!(
            "plot written to {}: left, registry RSS MB (blue: agents registered, orange: with \
             their heartbeat streams open) by agents; middle, saturated heartbeat acks/s by \
             agents; right, registration latency ms of one more provider (green: p50, red: p99) \
             by dependents",
            path.display()
        ));
    }
    report.rows.extend(size_rows);
    report.rows.extend(dependent_rows);
    report.note(format!(
        "growth: agents of 5 tools, each with a JSON Schema of {} bytes as JSON ({} encoded); \
         rss_mb_* = registry RSS empty, with the agents registered, with one heartbeat stream \
         per agent open, with {watchers} idle watchers open too; bytes_per_agent, \
         bytes_per_stream and bytes_per_watcher are the RSS differences divided by their count",
        schema_json().to_string().len(),
        realistic_schema().as_bytes().len(),
    ));
    report.note(
        "dependents: D agents depend on one capability (one shared spec), then providers of it \
         join one at a time; latency = RegisterAgent of the provider (durable), every join \
         rewiring all D",
    );
    Ok(())
}

/// RSS registered and with streams, then a saturated heartbeat phase.
async fn size_case(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    tag: &str,
    agents: usize,
    watchers: usize,
    length: Duration,
) -> BenchResult<Row> {
    let empty = target.stats().and_then(|s| s.rss_mb());
    let schema = realistic_schema();
    let requests = (0..agents)
        .map(|i| {
            let mut request = agent_request("grow", tag, i);
            for tool in &mut request.tools {
                tool.input_schema = Some(schema.clone());
            }
            request
        })
        .collect();
    let connections = ctx.options.connections_for(agents, 4);
    let population = ctx.populate_with(target, requests, connections).await?;
    let streams = target.stats().and_then(|s| s.rss_mb());
    let watching = idle_watchers(target, &population.channels[0], watchers).await?;
    let with_watchers = target.stats().and_then(|s| s.rss_mb());
    let phase = Phase::new(Mode::Saturate);
    let recorder = phase.recorder();
    population.fleet.set_phase(phase);
    let label = format!("saturate, {agents} agents");
    let stats = hold(&ctx.plan(&label, "acks", length, target), Duration::ZERO, &recorder).await;
    let mut row = Row::phase(format!("{agents} agents: heartbeats saturated"), &stats)
        .with("agents", agents as u64)
        .with("connections", population.channels.len() as u64);
    let per = |from: Option<f64>, to: Option<f64>| {
        from.zip(to).map(|(a, b)| ((b - a).max(0.0) * MIB / agents as f64).round() as u64)
    };
    for (key, value) in [
        ("rss_mb_empty", empty),
        ("rss_mb_registered", population.registered_rss_mb),
        ("rss_mb_streams", streams),
        ("rss_mb_watchers", with_watchers),
    ] {
        if let Some(mb) = value {
            row = row.with(key, (mb * 10.0).round() / 10.0);
        }
    }
    if let Some(bytes) = per(empty, population.registered_rss_mb) {
        row = row.with("bytes_per_agent", bytes);
    }
    if let Some(bytes) = per(population.registered_rss_mb, streams) {
        row = row.with("bytes_per_stream", bytes);
    }
    if watchers > 0 {
        row = row.with("watchers", watchers as u64);
        if let Some((a, b)) = streams.zip(with_watchers) {
            row = row.with("bytes_per_watcher", ((b - a).max(0.0) * MIB / watchers as f64) as u64);
        }
    }
    ctx.progress.say(format!(
        "{agents} agents: RSS {} MB empty, {} MB registered, {} MB with streams, {} MB with \
         {watchers} watchers; {:.0} acks/s",
        show(empty),
        show(population.registered_rss_mb),
        show(streams),
        show(with_watchers),
        stats.rate()
    ));
    watching.cancel();
    population.fleet.stop().await;
    if !target.is_spawned() {
        let failed = deregister_all(&population.channels[0], population.ids, 64).await;
        if failed > 0 {
            ctx.progress.say(format!("{failed} benchmark agents could not be deregistered"));
        }
    }
    Ok(row)
}

/// `count` watchers from the current revision, open and idle (no change
/// happens while they are measured); cancelling the token ends them.
async fn idle_watchers(
    target: &RegistryTarget,
    channel: &Channel,
    count: usize,
) -> BenchResult<CancellationToken> {
    let stop = CancellationToken::new();
    if count == 0 {
        return Ok(stop);
    }
    let probe = RegistryServiceClient::new(channel.clone())
        .list_agents(ListAgentsRequest { page_size: 1, ..ListAgentsRequest::default() })
        .await
        .map_err(|s| BenchError::rpc("reading the revision", s))?
        .into_inner();
    let request = WatchRequest { since_revision: probe.revision, ..WatchRequest::default() };
    let channels = target.channels(count.div_ceil(100).clamp(1, 16)).await?;
    let open = Arc::new(AtomicUsize::new(0));
    for index in 0..count {
        let mut client = WatchServiceClient::new(channels[index % channels.len()].clone());
        let (request, open, stop) = (request.clone(), open.clone(), stop.clone());
        tokio::spawn(async move {
            let Ok(response) = client.watch(request).await else { return };
            open.fetch_add(1, Ordering::Relaxed);
            let mut stream = response.into_inner();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    message = stream.message() => if !matches!(message, Ok(Some(_))) { return },
                }
            }
        });
    }
    wait_until("watchers to open", &open, count, WATCHERS_TIMEOUT).await?;
    Ok(stop)
}

/// `count` dependents of [`CAPABILITY`], then `joins` providers of it one at a time.
async fn dependents_case(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    tag: &str,
    count: usize,
    joins: usize,
) -> BenchResult<Row> {
    let channels = target.channels(ctx.options.connections_for(count, 1)).await?;
    let requests: Vec<_> = (0..count).map(|i| dependent(tag, i)).collect();
    let mut ids: Vec<String> = requests.iter().map(|r| r.agent_id.clone()).collect();
    register_all(&channels, requests, REGISTER_CONCURRENCY, || {}).await?;
    let mut client = RegistryServiceClient::new(channels[0].clone());
    let mut latency = Latency::new();
    for i in 0..joins {
        let request = provider(tag, count, i);
        ids.push(request.agent_id.clone());
        let started = Instant::now();
        client
            .register_agent(request)
            .await
            .map_err(|s| BenchError::rpc(format!("registering provider {i}"), s))?;
        latency.record(started.elapsed());
    }
    let row = Row::samples(format!("provider joins, {count} dependents"), &latency)
        .with("dependents", count as u64)
        .with_registry(target.stats());
    if !target.is_spawned() {
        deregister_all(&channels[0], ids, 64).await;
    }
    Ok(row)
}

/// An agent whose one tool needs [`CAPABILITY`].
fn dependent(tag: &str, index: usize) -> RegisterAgentRequest {
    RegisterAgentRequest {
        agent_id: format!("bench-growdep-{tag}-{index}"),
        name: "bench-growdep".into(),
        version: "1.0.0".into(),
        endpoint: format!("http://127.0.0.1:9/bench/growdep/{index}/mcp"),
        tools: vec![Tool {
            name: "use_dep".into(),
            dependencies: vec![DependencySpec {
                capability: CAPABILITY.into(),
                version: ">=1.0".into(),
                tags: Vec::new(),
            }],
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    }
}

/// Provider `index` of [`CAPABILITY`], in the run with `dependents`.
fn provider(tag: &str, dependents: usize, index: usize) -> RegisterAgentRequest {
    RegisterAgentRequest {
        agent_id: format!("bench-growprov-{tag}-{dependents}-{index}"),
        name: "bench-growprov".into(),
        version: "1.0.0".into(),
        endpoint: format!("http://127.0.0.1:9/bench/growprov/{index}/mcp"),
        tools: vec![Tool {
            name: "serve".into(),
            capability: CAPABILITY.into(),
            version: "1.0.0".into(),
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    }
}

/// A tool's arguments as MCP servers describe them: ~500 bytes of JSON.
fn realistic_schema() -> EncodedStruct {
    let object = schema_json().as_object().cloned().unwrap_or_default();
    EncodedStruct::from_struct(&to_struct(&object))
}

fn schema_json() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for, in plain words.",
                      "minLength": 1, "maxLength": 2048},
            "limit": {"type": "integer", "description": "Most results to return.",
                      "minimum": 1, "maximum": 100, "default": 10},
            "language": {"type": "string", "description": "Language of the results.",
                         "enum": ["en", "de", "fr", "es", "it", "ja"]},
            "filters": {"type": "object", "description": "Optional narrowing.",
                        "properties": {"since": {"type": "string", "format": "date-time"},
                                       "exact": {"type": "boolean"}},
                        "additionalProperties": false}
        },
        "required": ["query"],
        "additionalProperties": false
    })
}

/// The plot: RSS and heartbeat rate by agents, join latency by dependents.
fn panels(sizes: &[Row], dependents: &[Row]) -> Vec<Panel> {
    let extra = |row: &Row, key: &str| row.extra.get(key).and_then(serde_json::Value::as_f64);
    let agents: Vec<f64> = sizes.iter().filter_map(|r| extra(r, "agents")).collect();
    let rss = Panel {
        x_ticks: agents.clone(),
        series: vec![
            (0, sizes.iter().map(|r| extra(r, "rss_mb_registered")).collect()),
            (1, sizes.iter().map(|r| extra(r, "rss_mb_streams")).collect()),
        ],
    };
    let rate = Panel {
        x_ticks: agents,
        series: vec![(1, sizes.iter().map(|r| Some(r.throughput_per_s)).collect())],
    };
    let latency = Panel {
        x_ticks: dependents.iter().filter_map(|r| extra(r, "dependents")).collect(),
        series: vec![
            (2, dependents.iter().map(|r| r.latency.as_ref().map(|l| l.p50_ms)).collect()),
            (3, dependents.iter().map(|r| r.latency.as_ref().map(|l| l.p99_ms)).collect()),
        ],
    };
    vec![rss, rate, latency]
}

fn show(mb: Option<f64>) -> String {
    mb.map_or_else(|| "?".to_owned(), |mb| format!("{mb:.0}"))
}
