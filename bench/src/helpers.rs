//! Helper processes and agents the scenarios need:
//!
//! - [`run_provider`]: a tiny provider (`switchboard-bench provider`), a real
//!   process so `rewire` can SIGKILL it;
//! - [`run_echo_agent`]: an rmcp agent with an `echo` tool built with the
//!   SDK (`switchboard-bench echo-agent`), the upstream of `gateway`;
//! - [`StreamingAgent`]: an agent held by the load generator itself, with
//!   a heartbeat stream whose pushed wiring updates are timestamped.
//!
//! Helper processes stop by themselves after `lifetime`, so a load generator
//! that dies never leaves them behind for long.

use std::time::{Duration, Instant};

use rmcp::handler::server::wrapper::Parameters;
use rmcp::{schemars, tool, tool_router};
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    DependencySpec, RegisterAgentRequest, ResolutionUpdate, StreamHeartbeatsRequest, Tool,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};

/// Heartbeat period of helper agents.
const HELPER_HEARTBEAT: Duration = Duration::from_millis(500);

/// An agent of the load generator with an open heartbeat stream.
pub struct StreamingAgent {
    /// Its id.
    pub agent_id: String,
    updates: mpsc::UnboundedReceiver<(Instant, ResolutionUpdate)>,
    task: JoinHandle<()>,
}

impl StreamingAgent {
    /// Registers `request`, opens its heartbeat stream (heartbeat every
    /// 500 ms) and waits for the first ack.
    pub async fn start(channel: Channel, request: RegisterAgentRequest) -> BenchResult<Self> {
        let agent_id = request.agent_id.clone();
        RegistryServiceClient::new(channel.clone())
            .register_agent(request)
            .await
            .map_err(|s| BenchError::rpc(format!("registering {agent_id}"), s))?;
        let (outbox, requests) = mpsc::channel(8);
        let mut inbound = HeartbeatServiceClient::new(channel)
            .stream_heartbeats(ReceiverStream::new(requests))
            .await
            .map_err(|s| BenchError::rpc(format!("heartbeat stream of {agent_id}"), s))?
            .into_inner();
        let (sink, updates) = mpsc::unbounded_channel();
        let (acked_tx, acked) = tokio::sync::oneshot::channel();
        let id = agent_id.clone();
        let task = tokio::spawn(async move {
            let mut acked_tx = Some(acked_tx);
            let mut tick = tokio::time::interval(HELPER_HEARTBEAT);
            let mut sequence = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        sequence += 1;
                        let heartbeat = StreamHeartbeatsRequest {
                            agent_id: id.clone(),
                            sequence,
                            ..StreamHeartbeatsRequest::default()
                        };
                        if outbox.send(heartbeat).await.is_err() {
                            return;
                        }
                    }
                    message = inbound.message() => match message {
                        Ok(Some(response)) => match response.message {
                            Some(Message::Resolution(update)) => {
                                let _ = sink.send((Instant::now(), update));
                            }
                            Some(Message::Ack(_)) => {
                                if let Some(tx) = acked_tx.take() {
                                    let _ = tx.send(());
                                }
                            }
                            _ => {}
                        },
                        Ok(None) | Err(_) => return,
                    },
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), acked)
            .await
            .map_err(|_| {
                BenchError::timeout(format!("the first ack of {agent_id}"), Duration::from_secs(10))
            })?
            .map_err(|_| BenchError::Option(format!("the heartbeat stream of {agent_id} ended")))?;
        Ok(Self { agent_id, updates, task })
    }

    /// Drops the updates received so far.
    pub fn drain(&mut self) {
        while self.updates.try_recv().is_ok() {}
    }

    /// Waits (at most `timeout`) for a pushed update `accept` likes; returns
    /// when it arrived.
    pub async fn wait_update(
        &mut self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&ResolutionUpdate) -> bool,
    ) -> BenchResult<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.updates.recv()).await {
                Ok(Some((at, update))) if accept(&update) => return Ok(at),
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(BenchError::Option(format!(
                        "the heartbeat stream of {} ended",
                        self.agent_id
                    )));
                }
                Err(_) => return Err(BenchError::timeout(what, timeout)),
            }
        }
    }
}

impl Drop for StreamingAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The provider ids in a pushed update (every tool, every dependency).
pub fn providers(update: &ResolutionUpdate) -> Vec<&str> {
    update
        .resolutions
        .iter()
        .flat_map(|t| &t.dependencies)
        .flat_map(|d| &d.providers)
        .map(|p| p.agent_id.as_str())
        .collect()
}

/// A registration of one tool `use_it` that depends on `capability`.
pub fn dependent_request(agent_id: &str, capability: &str) -> RegisterAgentRequest {
    RegisterAgentRequest {
        agent_id: agent_id.to_owned(),
        name: "bench-dependent".into(),
        version: "1.0.0".into(),
        endpoint: "http://127.0.0.1:9/bench/dependent/mcp".into(),
        tools: vec![Tool {
            name: "use_it".into(),
            dependencies: vec![DependencySpec {
                capability: capability.to_owned(),
                ..DependencySpec::default()
            }],
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    }
}

/// A registration of one tool `serve` providing `capability` 1.0.0.
pub fn provider_request(agent_id: &str, capability: &str) -> RegisterAgentRequest {
    RegisterAgentRequest {
        agent_id: agent_id.to_owned(),
        name: "bench-provider".into(),
        version: "1.0.0".into(),
        endpoint: format!("http://127.0.0.1:9/bench/{agent_id}/mcp"),
        tools: vec![Tool {
            name: "serve".into(),
            capability: capability.to_owned(),
            version: "1.0.0".into(),
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    }
}

/// TLS for every connection to the registry (`--tls-ca`, …), set once at
/// start: scenarios and helpers dial through [`connect`].
static TLS: std::sync::OnceLock<switchboard_tls::ClientTls> = std::sync::OnceLock::new();

/// Dials every registry connection over `tls` from now on.
pub fn use_tls(tls: switchboard_tls::ClientTls) {
    let _ = TLS.set(tls);
}

/// A registry channel: plaintext, or TLS after [`use_tls`] (or for an
/// `https://` address).
pub async fn connect(address: &str) -> Result<Channel, switchboard_client::ConnectError> {
    switchboard_client::connect_with(address, TLS.get()).await
}

/// `switchboard-bench provider`: registers a provider of `capability`,
/// prints `REGISTERED <id>`, heartbeats until killed or `lifetime` is over.
pub async fn run_provider(registry: &str, capability: &str, lifetime: Duration) -> BenchResult<()> {
    let channel = crate::helpers::connect(registry).await?;
    let agent_id = format!("bench-victim-{:08x}", rand::random::<u32>());
    let mut agent = StreamingAgent::start(channel, provider_request(&agent_id, capability)).await?;
    println!("REGISTERED {}", agent.agent_id);
    let ended = agent.wait_update("never", lifetime, |_| false).await;
    match ended {
        Err(BenchError::Timeout { .. }) => Ok(()),
        Err(other) => Err(other),
        Ok(_) => Ok(()),
    }
}

/// Arguments of the echo tool.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// Text to send back.
    text: String,
}

/// An agent whose one tool sends its input back.
#[derive(Debug, Clone, Copy)]
struct Echo;

#[tool_router(server_handler)]
impl Echo {
    /// Sends the text back.
    #[tool(description = "Send the text back unchanged")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }
}

/// `switchboard-bench echo-agent`: serves `echo` over MCP with the SDK,
/// registered at `registry`; prints `LISTEN agent-mcp <addr>` and
/// `REGISTERED <id>`; stops on SIGTERM, ctrl-c or after `lifetime`.
pub async fn run_echo_agent(registry: &str, lifetime: Duration) -> BenchResult<()> {
    let running = switchboard_agent::Agent::new("bench-echo")
        .registry(registry)
        .listen("127.0.0.1:0")
        .tool("echo", |t| t.capability("bench_echo").version("1.0.0"))
        .start(Echo, Echo::tool_router())
        .await
        .map_err(|e| BenchError::Option(format!("echo agent: {e}")))?;
    println!("LISTEN agent-mcp {}", running.local_addr);
    println!("REGISTERED {}", running.agent_id);
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| BenchError::io("installing the SIGTERM handler", e))?;
    let mut terminate = terminate;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        () = tokio::time::sleep(lifetime) => {}
    }
    running.shutdown().await.map_err(|e| BenchError::Option(format!("echo agent: {e}")))
}
