//! The MCP Mesh registry (3.7.1, Go) driven through its HTTP API, for
//! `bench/compare-mcp-mesh`.
//!
//! Its protocol, as observed on the binary: `POST /heartbeat` with the whole
//! agent (tools, dependencies) registers or refreshes it and answers with
//! `dependencies_resolved`; `HEAD /heartbeat/{id}` is the fast heartbeat:
//! 200 "nothing changed", 202 "topology changed: send a full heartbeat",
//! 410 "unknown agent". Agents learn new wiring only by polling (their SDK
//! sends the fast heartbeat every 5 s), and the registry marks a silent agent
//! unhealthy after `DEFAULT_TIMEOUT_THRESHOLD` (20 s), checked every
//! `HEALTH_CHECK_INTERVAL` (10 s). A killed MCP Mesh agent is exactly an
//! agent that stops heartbeating (there is no connection to break), which is
//! how `crash` simulates it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{BenchError, BenchResult};
use crate::phase::closed_loop;
use crate::progress::Progress;
use crate::report::{Report, Row};
use crate::stats::Latency;
use crate::{BenchOptions, Scenario};

use super::Driven;

/// Their SDK's fast-heartbeat period.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// A client of one MCP Mesh registry.
#[derive(Clone)]
pub struct MeshRegistry {
    base: String,
    http: reqwest::Client,
}

/// What a fast heartbeat answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastBeat {
    /// 200: nothing changed.
    Unchanged,
    /// 202: topology changed, send a full heartbeat.
    Changed,
    /// 410: unknown agent.
    Unknown,
}

impl MeshRegistry {
    /// A client of the registry at `base` (`http://127.0.0.1:8000`).
    pub fn new(base: &str) -> BenchResult<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BenchError::Option(format!("http client: {e}")))?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), http })
    }

    /// Full heartbeat (registration): returns `dependencies_resolved`.
    pub async fn full_heartbeat(&self, agent: &Value) -> BenchResult<Value> {
        let response = self
            .http
            .post(format!("{}/heartbeat", self.base))
            .json(agent)
            .send()
            .await
            .map_err(|e| BenchError::Mcp(format!("POST /heartbeat: {e}")))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| BenchError::Mcp(format!("POST /heartbeat answer: {e}")))?;
        if !status.is_success() {
            return Err(BenchError::Mcp(format!("POST /heartbeat: {status}: {body}")));
        }
        Ok(body.get("dependencies_resolved").cloned().unwrap_or(Value::Null))
    }

    /// Fast heartbeat of `agent_id`.
    pub async fn fast_heartbeat(&self, agent_id: &str) -> BenchResult<FastBeat> {
        let response = self
            .http
            .head(format!("{}/heartbeat/{agent_id}", self.base))
            .send()
            .await
            .map_err(|e| BenchError::Mcp(format!("HEAD /heartbeat: {e}")))?;
        match response.status().as_u16() {
            200 => Ok(FastBeat::Unchanged),
            202 => Ok(FastBeat::Changed),
            410 => Ok(FastBeat::Unknown),
            other => Err(BenchError::Mcp(format!("HEAD /heartbeat/{agent_id}: {other}"))),
        }
    }
}

/// An agent in MCP Mesh's format: five tools, tool 4 depending on
/// `bench_base` (as our benchmark agents).
pub fn agent(agent_id: &str, index: usize) -> Value {
    let tools: Vec<Value> = (0..5)
        .map(|t| {
            let mut tool = json!({
                "function_name": format!("tool_{t}"),
                "capability": if t == 0 { format!("bench_cap{}", index % 50) } else { format!("bench_t{t}") },
                "version": format!("1.{}.0", index % 5),
                "tags": ["bench", if index.is_multiple_of(2) { "eu" } else { "us" }],
                "description": format!("Benchmark tool {t} of agent {index}: takes a text and a count, answers text."),
            });
            if t == 4 {
                tool["dependencies"] = json!([{"capability": "bench_base", "version": ">=1.0", "tags": ["+eu"]}]);
            }
            tool
        })
        .collect();
    json!({
        "agent_id": agent_id,
        "agent_type": "mcp_agent",
        "name": agent_id,
        "version": "1.0.0",
        "http_host": "127.0.0.1",
        "http_port": 9000 + (index % 1000),
        "namespace": "default",
        "tools": tools,
    })
}

/// A provider of `capability` or a dependent on it.
fn pair_agent(agent_id: &str, capability: &str, provider: bool, port: usize) -> Value {
    let tool = if provider {
        json!({"function_name": "serve", "capability": capability, "version": "1.0.0"})
    } else {
        json!({"function_name": "use_it", "capability": format!("{capability}_user"), "version": "1.0.0",
               "dependencies": [{"capability": capability}]})
    };
    json!({"agent_id": agent_id, "agent_type": "mcp_agent", "name": agent_id, "version": "1.0.0",
           "http_host": "127.0.0.1", "http_port": port, "namespace": "default", "tools": [tool]})
}

/// The provider ids in a `dependencies_resolved` answer.
pub fn resolved_providers(resolved: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(tools) = resolved.as_object() {
        for deps in tools.values() {
            for dep in deps.as_array().into_iter().flatten() {
                let available = dep.get("status").and_then(Value::as_str) == Some("available");
                if let Some(id) = dep.get("agent_id").and_then(Value::as_str)
                    && available
                    && !id.is_empty()
                {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    ids
}

/// The scenario of `options` against the MCP Mesh registry at `driven.url`.
pub(crate) async fn run(
    options: &BenchOptions,
    driven: &Driven<'_>,
    report: &mut Report,
) -> BenchResult<()> {
    let mesh = MeshRegistry::new(driven.url)?;
    let length = options.phase(Duration::from_secs(10), Duration::from_millis(1500));
    let clients = options.sizes(&options.concurrency, &[64], &[4]);
    match options.scenario {
        Scenario::Register => {
            for &workers in &clients {
                register(&mesh, driven, workers, length, report).await;
            }
        }
        Scenario::Heartbeat => {
            let connections = clients.first().copied().unwrap_or(64);
            for agents in options.sizes(&options.agents, &[1000], &[50]) {
                heartbeat(&mesh, driven, agents, connections, length, report).await?;
            }
        }
        Scenario::Rewire => {
            let pairs = options.iterations.unwrap_or(if options.smoke { 2 } else { 5 });
            rewire(&mesh, pairs, driven.progress, report).await?;
        }
        other => {
            return Err(BenchError::Option(format!("--mcp-mesh: no {} scenario", other.name())));
        }
    }
    Ok(())
}

/// `register`: `workers` concurrent full registrations of new agents.
async fn register(
    mesh: &MeshRegistry,
    driven: &Driven<'_>,
    workers: usize,
    length: Duration,
    report: &mut Report,
) {
    let tag = crate::fixture::run_tag();
    let label = format!("{workers} clients");
    let stats = closed_loop(&driven.plan(&label, "registrations", length), workers, |_| {
        let (mesh, tag) = (mesh.clone(), tag.clone());
        move |n: usize| {
            let (mesh, body) = (mesh.clone(), agent(&format!("bench-reg-{tag}-{n}"), n));
            Some(async move { mesh.full_heartbeat(&body).await.is_ok() })
        }
    })
    .await;
    report.rows.push(
        Row::phase(format!("register (durable), {workers} clients"), &stats)
            .with("tools_per_agent", 5u64),
    );
}

/// `heartbeat`: `agents` registered agents, fast heartbeats from `clients`
/// concurrent connections, back to back (round robin over the agents).
async fn heartbeat(
    mesh: &MeshRegistry,
    driven: &Driven<'_>,
    agents: usize,
    clients: usize,
    length: Duration,
    report: &mut Report,
) -> BenchResult<()> {
    let tag = crate::fixture::run_tag();
    let ids: Arc<Vec<String>> =
        Arc::new((0..agents).map(|i| format!("bench-hb-{tag}-{i}")).collect());
    driven.progress.say(format!("registering {agents} agents"));
    let registering = futures::future::join_all((0..clients).map(|worker| {
        let (mesh, ids) = (mesh.clone(), ids.clone());
        async move {
            for index in (worker..ids.len()).step_by(clients) {
                mesh.full_heartbeat(&agent(&ids[index], index)).await?;
            }
            Ok::<_, BenchError>(())
        }
    }))
    .await;
    registering.into_iter().collect::<BenchResult<Vec<()>>>()?;
    let label = format!("fast heartbeats, {clients} connections");
    let stats = closed_loop(&driven.plan(&label, "acks", length), clients, |_| {
        let (mesh, ids) = (mesh.clone(), ids.clone());
        move |n: usize| {
            let (mesh, ids) = (mesh.clone(), ids.clone());
            Some(async move {
                let answer = mesh.fast_heartbeat(&ids[n % ids.len()]).await;
                matches!(answer, Ok(FastBeat::Unchanged | FastBeat::Changed))
            })
        }
    })
    .await;
    report.rows.push(
        Row::phase(format!("heartbeat saturate, {agents} agents"), &stats)
            .with("connections", clients as u64),
    );
    Ok(())
}

/// A dependent polling like MCP Mesh's SDK: a fast heartbeat every
/// [`POLL_INTERVAL`] (first one at a random point of the interval), a full
/// one on 202; returns when `done` accepts the providers it got.
async fn poll_until(
    mesh: &MeshRegistry,
    dependent: &Value,
    agent_id: &str,
    timeout: Duration,
    done: impl Fn(&[String]) -> bool,
) -> BenchResult<Instant> {
    let deadline = Instant::now() + timeout;
    tokio::time::sleep(POLL_INTERVAL.mul_f64(rand::random::<f64>())).await;
    loop {
        if mesh.fast_heartbeat(agent_id).await? != FastBeat::Unchanged {
            let resolved = mesh.full_heartbeat(dependent).await?;
            if done(&resolved_providers(&resolved)) {
                return Ok(Instant::now());
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::timeout(format!("{agent_id} to be rewired"), timeout));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Keeps `agent_id` alive with fast heartbeats until `stop`.
fn keep_alive(
    mesh: MeshRegistry,
    body: Value,
    agent_id: String,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            match mesh.fast_heartbeat(&agent_id).await {
                Ok(FastBeat::Unknown) | Ok(FastBeat::Changed) => {
                    let _ = mesh.full_heartbeat(&body).await;
                }
                _ => {}
            }
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    });
    stop
}

/// `rewire`: `pairs` independent dependent/provider pairs at once. Join:
/// the provider registers → the dependent's polling sees it. Crash: the
/// provider stops heartbeating (a killed agent) → the dependent sees it gone.
async fn rewire(
    mesh: &MeshRegistry,
    pairs: usize,
    progress: &Progress,
    report: &mut Report,
) -> BenchResult<()> {
    let tag = crate::fixture::run_tag();
    progress.say(format!("{pairs} provider joins (dependents poll every {POLL_INTERVAL:?})"));
    let joins = futures::future::join_all((0..pairs).map(|i| {
        let mesh = mesh.clone();
        let tag = tag.clone();
        async move {
            let capability = format!("bench_rw_{tag}_{i}");
            let (dep_id, prov_id) =
                (format!("bench-dep-{tag}-{i}"), format!("bench-prov-{tag}-{i}"));
            let dependent = pair_agent(&dep_id, &capability, false, 9100 + i);
            let provider = pair_agent(&prov_id, &capability, true, 9300 + i);
            mesh.full_heartbeat(&dependent).await?;
            // The dependent's own polling (poll_until) keeps it alive.
            let sent = Instant::now();
            mesh.full_heartbeat(&provider).await?;
            let prov_alive = keep_alive(mesh.clone(), provider.clone(), prov_id.clone());
            let at = poll_until(&mesh, &dependent, &dep_id, Duration::from_secs(30), |p| {
                p.contains(&prov_id)
            })
            .await?;
            let join = at.saturating_duration_since(sent);
            tokio::time::sleep(Duration::from_millis(100)).await;
            // Crash: the provider goes silent.
            let killed = Instant::now();
            drop(prov_alive);
            let at = poll_until(&mesh, &dependent, &dep_id, Duration::from_secs(90), |p| {
                !p.contains(&prov_id)
            })
            .await?;
            Ok::<_, BenchError>((join, at.saturating_duration_since(killed)))
        }
    }))
    .await;
    let (mut join, mut crash) = (Latency::new(), Latency::new());
    for result in joins {
        let (j, c) = result?;
        join.record(j);
        crash.record(c);
    }
    report.rows.push(Row::samples("provider joins → dependent rewired", &join));
    report.rows.push(Row::samples("provider SIGKILLed → dependent rewired", &crash));
    report.note(format!(
        "mcp-mesh rewire: dependents poll with HEAD /heartbeat/{{id}} every {}s as its SDK does \
         (full POST /heartbeat on 202); a crash is the provider going silent",
        POLL_INTERVAL.as_secs()
    ));
    Ok(())
}
