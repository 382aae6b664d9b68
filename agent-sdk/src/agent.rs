//! The agent builder and its running form.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::handler::server::router::tool::ToolRouter;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{DeregisterAgentRequest, RegisterAgentRequest, Tool};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::mesh::{Mesh, Wiring};
use switchboard_client::DEFAULT_REGISTRY_ADDR;

use crate::{AgentError, MeshTool, server};

/// Longest wait for the deregistration on shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// An agent: its identity, where it serves and registers, and the mesh
/// metadata of its tools.
///
/// Defaults come from the environment: `SWITCHBOARD_REGISTRY` (registry
/// address, default [`DEFAULT_REGISTRY_ADDR`]), `SWITCHBOARD_AGENT_ADDR` (listen
/// address, default `127.0.0.1:0`), `SWITCHBOARD_AGENT_ENDPOINT` (the URL
/// advertised to the mesh, default `http://<listen address>/mcp`).
#[derive(Debug, Clone)]
pub struct Agent {
    name: String,
    version: String,
    registry: String,
    listen: String,
    endpoint: Option<String>,
    labels: HashMap<String, String>,
    tools: HashMap<String, MeshTool>,
    drain_timeout: Duration,
}

/// A started agent.
pub struct RunningAgent {
    /// Id under which it is registered.
    pub agent_id: String,
    /// Where its MCP endpoint listens.
    pub local_addr: SocketAddr,
    /// The URL advertised to the mesh.
    pub endpoint: String,
    stop: CancellationToken,
    task: JoinHandle<Result<(), AgentError>>,
}

impl Agent {
    /// A new agent named `name` (`[a-z0-9][a-z0-9_.-]{0,63}`).
    pub fn new(name: &str) -> Self {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        Self {
            name: name.to_owned(),
            version: "0.0.0".into(),
            registry: env("SWITCHBOARD_REGISTRY").unwrap_or_else(|| DEFAULT_REGISTRY_ADDR.into()),
            listen: env("SWITCHBOARD_AGENT_ADDR").unwrap_or_else(|| "127.0.0.1:0".into()),
            endpoint: env("SWITCHBOARD_AGENT_ENDPOINT"),
            labels: HashMap::new(),
            tools: HashMap::new(),
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// The agent software's version (shown to operators).
    pub fn version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.version);
        self
    }

    /// The registry address (`host:port` or URL).
    pub fn registry(mut self, address: &str) -> Self {
        address.clone_into(&mut self.registry);
        self
    }

    /// The listen address of the MCP endpoint.
    pub fn listen(mut self, address: &str) -> Self {
        address.clone_into(&mut self.listen);
        self
    }

    /// The URL advertised to the mesh, when it differs from the listen address
    /// (behind NAT, in a container).
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = Some(url.to_owned());
        self
    }

    /// A label for operators.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Mesh metadata of the tool named `tool` (capability, version, tags,
    /// dependencies). Tools without it are served but provide no capability.
    pub fn tool(mut self, tool: &str, configure: impl FnOnce(MeshTool) -> MeshTool) -> Self {
        let meta = self.tools.remove(tool).unwrap_or_default();
        self.tools.insert(tool.to_owned(), configure(meta));
        self
    }

    /// How long in-flight calls may take to finish on shutdown.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Starts, prints `LISTEN agent-mcp <addr>` and `REGISTERED <id>` on
    /// stdout, and runs until SIGTERM or ctrl-c; then deregisters, drains
    /// in-flight calls and returns.
    pub async fn serve<S>(self, handler: S, router: ToolRouter<S>) -> Result<(), AgentError>
    where
        S: ServerHandler + Clone + Send + Sync + 'static,
    {
        self.start(handler, router).await?.serve_until_signal().await
    }

    /// Starts serving and registers; returns once registered.
    pub async fn start<S>(
        self,
        handler: S,
        router: ToolRouter<S>,
    ) -> Result<RunningAgent, AgentError>
    where
        S: ServerHandler + Clone + Send + Sync + 'static,
    {
        let tools = self.registered_tools(&router)?;
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            AgentError::Config(format!("listen address {:?} is not IP:PORT", self.listen))
        })?;
        let listener =
            TcpListener::bind(addr).await.map_err(|source| AgentError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        let endpoint = self.endpoint.clone().unwrap_or_else(|| format!("http://{local_addr}/mcp"));
        let uri: tonic::codegen::http::Uri = endpoint
            .parse()
            .map_err(|_| AgentError::Config(format!("endpoint {endpoint:?} is not a URL")))?;
        let hosts = server::allowed_hosts(uri.host().unwrap_or("127.0.0.1"), uri.port_u16());

        let channel = switchboard_client::connect(&self.registry)
            .await
            .map_err(|e| AgentError::RegistryUnreachable(e.to_string()))?;
        let request = RegisterAgentRequest {
            agent_id: format!("{}-{}", self.name, &uuid::Uuid::new_v4().simple().to_string()[..8]),
            name: self.name.clone(),
            version: self.version.clone(),
            endpoint: endpoint.clone(),
            labels: self.labels.clone(),
            tools,
            ..RegisterAgentRequest::default()
        };
        let wiring = Wiring::new(&self.tools);
        let (mesh, agent_id) = Mesh::register(channel.clone(), request, wiring).await?;

        let stop = CancellationToken::new();
        let serving = tokio::spawn(server::serve(listener, handler, hosts, stop.child_token()));
        // The heartbeat loop outlives `stop`: it ends only after the
        // deregistration, so the registry never sees a broken stream first.
        let leaving = stop.child_token();
        let mesh_stop = CancellationToken::new();
        let meshing = tokio::spawn(mesh.run(leaving, mesh_stop.clone()));
        let task = tokio::spawn(shut_down_later(
            stop.clone(),
            channel,
            agent_id.clone(),
            serving,
            (meshing, mesh_stop),
            self.drain_timeout,
        ));
        tracing::info!(agent_id = %agent_id, %endpoint, "agent registered and serving");
        Ok(RunningAgent { agent_id, local_addr, endpoint, stop, task })
    }

    /// The registration's tools: the handler's tool definitions with the
    /// mesh metadata layered on.
    fn registered_tools<S>(&self, router: &ToolRouter<S>) -> Result<Vec<Tool>, AgentError>
    where
        S: Send + Sync + 'static,
    {
        let served = router.list_all();
        if let Some(unknown) =
            self.tools.keys().find(|name| !served.iter().any(|t| t.name == **name))
        {
            return Err(AgentError::Config(format!(
                "tool {unknown:?} has mesh metadata but the handler serves no such tool"
            )));
        }
        Ok(served
            .into_iter()
            .map(|tool| {
                let meta = self.tools.get(tool.name.as_ref()).cloned().unwrap_or_default();
                let version =
                    if meta.version.is_empty() { "1.0.0".into() } else { meta.version.clone() };
                // The whole MCP definition travels as the JSON the agent
                // serves; the registry keeps it as bytes and the gateway
                // serves it verbatim.
                let definition = serde_json::to_vec(&tool).unwrap_or_default();
                Tool {
                    name: tool.name.to_string(),
                    capability: meta.capability.clone(),
                    version,
                    tags: meta.tags.clone(),
                    description: tool.description.as_deref().unwrap_or_default().to_owned(),
                    input_schema: None,
                    dependencies: meta.specs(),
                    mcp_definition: definition.into(),
                }
            })
            .collect())
    }
}

impl RunningAgent {
    /// Prints `LISTEN agent-mcp <addr>` and `REGISTERED <id>` on stdout (the
    /// lines scripts wait for), runs until SIGTERM or ctrl-c, then shuts down.
    pub async fn serve_until_signal(self) -> Result<(), AgentError> {
        // Installed before announcing, so an early SIGTERM is never lost.
        let signal = shutdown_signal();
        println!("LISTEN agent-mcp {}", self.local_addr);
        println!("REGISTERED {}", self.agent_id);
        signal.await;
        self.shutdown().await
    }

    /// Deregisters, lets in-flight calls finish (bounded), and stops.
    pub async fn shutdown(self) -> Result<(), AgentError> {
        self.stop.cancel();
        self.task.await.unwrap_or_else(|e| Err(AgentError::Serve(std::io::Error::other(e))))
    }

    /// Stops without deregistering, like a crash (tests of liveness use it).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// The shutdown sequence: deregister first (dependents rewire, the gateway
/// stops routing here), then close the heartbeat stream, then stop accepting
/// and drain.
async fn shut_down_later(
    stop: CancellationToken,
    channel: tonic::transport::Channel,
    agent_id: String,
    serving: JoinHandle<std::io::Result<()>>,
    (meshing, mesh_stop): (JoinHandle<()>, CancellationToken),
    drain_timeout: Duration,
) -> Result<(), AgentError> {
    stop.cancelled().await;
    let request = DeregisterAgentRequest { agent_id: agent_id.clone() };
    let mut client = RegistryServiceClient::new(channel);
    match tokio::time::timeout(DEREGISTER_TIMEOUT, client.deregister_agent(request)).await {
        Ok(Ok(_)) => tracing::info!(%agent_id, "deregistered"),
        Ok(Err(status)) => tracing::warn!(%agent_id, %status, "deregistration failed"),
        Err(_) => tracing::warn!(%agent_id, "deregistration timed out"),
    }
    mesh_stop.cancel();
    let _ = meshing.await;
    match tokio::time::timeout(drain_timeout, serving).await {
        Ok(Ok(result)) => result.map_err(AgentError::Serve),
        Ok(Err(join)) => Err(AgentError::Serve(std::io::Error::other(join))),
        Err(_) => {
            tracing::warn!("in-flight calls did not finish within {drain_timeout:?}");
            Ok(())
        }
    }
}

/// A future that completes on SIGTERM or ctrl-c; the handlers are installed
/// when this is called, not when it is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let interrupt = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut terminate) = terminate {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt => {}
            }
            return;
        }
        let _ = interrupt.await;
    }
}
