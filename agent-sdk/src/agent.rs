//! The agent builder and its running form.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::handler::server::router::tool::ToolRouter;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{
    DeregisterAgentRequest, Prompt, RegisterAgentRequest, Resource, ResourceTemplate, Tool,
};
use switchboard_telemetry::exposure::{ALLOW_PLAINTEXT_ENV, Protection, check_listener};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::health::{self, Health};
use crate::mesh::{FirstAttempt, Mesh, Wiring};
use switchboard_client::{DEFAULT_REGISTRY_ADDR, Registries, RegistryAddrs};
use switchboard_tls::{ClientTls, ClientTlsConfig, ServerTls, ServerTlsConfig};

use crate::introspect::Served;
use crate::{AgentError, HealthCheck, MeshTool, introspect, server};

/// Longest wait for the deregistration on shutdown.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// An agent: its identity, where it serves and registers, and the mesh
/// metadata of its tools.
///
/// Defaults come from the environment: `SWITCHBOARD_REGISTRY` (registry
/// address or comma-separated addresses, default [`DEFAULT_REGISTRY_ADDR`]), `SWITCHBOARD_AGENT_ADDR` (listen
/// address, default `127.0.0.1:0`), `SWITCHBOARD_AGENT_ENDPOINT` (the URL
/// advertised to the mesh, default `http://<listen address>/mcp`),
/// `SWITCHBOARD_REQUIRE_REGISTRY` (`true`/`1` or `false`/`0`, default false;
/// see [`Agent::require_registry`]), `SWITCHBOARD_TOKEN` (the registry token,
/// see [`Agent::token`]), `SWITCHBOARD_INSECURE_ALLOW_PLAINTEXT`
/// (same values; see [`Agent::insecure_allow_plaintext`]).
///
/// TLS, as every Switchboard component names it: `SWITCHBOARD_TLS_CERT`,
/// `SWITCHBOARD_TLS_KEY` (and `SWITCHBOARD_TLS_CLIENT_CA` for mTLS) make
/// the MCP endpoint serve HTTPS ([`Agent::tls`]); `SWITCHBOARD_TLS_CA`,
/// `SWITCHBOARD_TLS_CLIENT_CERT`, `SWITCHBOARD_TLS_CLIENT_KEY` are the
/// agent's client side ([`Agent::client_tls`]): to the registry, to the
/// agents it depends on, and to its own endpoint when it lists itself.
///
/// The agent serves at once. When the registry cannot be reached at start it
/// logs what it waits for and registers in the background, with backoff,
/// once the registry appears (no restart needed); until then its
/// dependencies are unresolved and its tools answer degraded.
/// [`Agent::require_registry`] makes it fail at start instead.
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
    sessions: bool,
    /// An unparsable environment value is kept as the error to report at
    /// start (a builder cannot fail).
    require_registry: Result<bool, String>,
    insecure_allow_plaintext: Result<bool, String>,
    health_checks: Vec<HealthCheck>,
    tls: Option<ServerTlsConfig>,
    client_tls: Option<ClientTlsConfig>,
    /// The registry token (an unusable one is reported at start).
    token: Result<switchboard_client::Bearer, String>,
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
    registered: watch::Receiver<bool>,
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
            sessions: false,
            require_registry: flag(
                "SWITCHBOARD_REQUIRE_REGISTRY",
                env("SWITCHBOARD_REQUIRE_REGISTRY"),
            ),
            insecure_allow_plaintext: flag(ALLOW_PLAINTEXT_ENV, env(ALLOW_PLAINTEXT_ENV)),
            health_checks: Vec::new(),
            tls: match (env("SWITCHBOARD_TLS_CERT"), env("SWITCHBOARD_TLS_KEY")) {
                (None, None) => None,
                (cert, key) => Some(ServerTlsConfig {
                    cert: cert.unwrap_or_default().into(),
                    key: key.unwrap_or_default().into(),
                    client_ca: env("SWITCHBOARD_TLS_CLIENT_CA").map(Into::into),
                }),
            },
            client_tls: {
                let config = ClientTlsConfig {
                    ca: env("SWITCHBOARD_TLS_CA").map(Into::into),
                    cert: env("SWITCHBOARD_TLS_CLIENT_CERT").map(Into::into),
                    key: env("SWITCHBOARD_TLS_CLIENT_KEY").map(Into::into),
                };
                (config != ClientTlsConfig::default()).then_some(config)
            },
            token: switchboard_client::Bearer::from_env()
                .map_err(|e| format!("{}: {e}", switchboard_client::TOKEN_ENV)),
        }
    }

    /// Serve the MCP endpoint over HTTPS with these files (reloaded when
    /// they change); the advertised endpoint becomes `https://`. With
    /// `client_ca`, callers (the gateway, dependents) must present a
    /// certificate signed by it.
    pub fn tls(mut self, config: ServerTlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// TLS for the agent's own connections: to the registry (also turned on
    /// by an `https://` registry address), to its dependencies, and to its
    /// own endpoint when it lists itself. The first agent of a process that
    /// sets it decides it for every dependency call of the process.
    pub fn client_tls(mut self, config: ClientTlsConfig) -> Self {
        self.client_tls = Some(config);
        self
    }

    /// The token sent on every registry call and stream, for a registry
    /// that runs with auth (an agent token whose scope covers this agent's
    /// name and capabilities). Default: `SWITCHBOARD_TOKEN`; an empty secret sends none.
    pub fn token(mut self, secret: &str) -> Self {
        self.token = switchboard_client::Bearer::new(Some(secret)).map_err(|e| e.to_string());
        self
    }

    /// The agent software's version (shown to operators).
    pub fn version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.version);
        self
    }

    /// The registry address (`host:port` or URL), or several replicas'
    /// separated by commas (`10.0.0.1:7600,10.0.0.2:7600`), or a DNS name
    /// that resolves to several: the agent registers at one, starting at a
    /// random one, and moves to the next when it fails.
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

    /// Whether clients of the 2025 protocol era get sessions (off by
    /// default: stateless, plain JSON answers). Turn it on when tools ask
    /// the client something mid-call (sampling, elicitation): the client's
    /// answer must reach the session that asked.
    pub fn sessions(mut self, on: bool) -> Self {
        self.sessions = on;
        self
    }

    /// Whether an unreachable registry at start is an error (off by default:
    /// the agent serves at once and registers when the registry appears).
    /// Turn it on where a supervisor should see the failure, e.g. to restart
    /// the agent with another registry address.
    pub fn require_registry(mut self, on: bool) -> Self {
        self.require_registry = Ok(on);
        self
    }

    /// Whether the MCP endpoint may listen on a non-loopback address (a
    /// wildcard such as `0.0.0.0` included) without TLS and auth. Off by
    /// default: such an agent refuses to start, since whoever reaches it can
    /// call its tools. On, it starts with a warning and reports
    /// `switchboard_insecure_listener{listener="agent"} 1` on its `/metrics`.
    pub fn insecure_allow_plaintext(mut self, on: bool) -> Self {
        self.insecure_allow_plaintext = Ok(on);
        self
    }

    /// Adds a health check. While one fails the agent keeps serving, but
    /// reports itself not ready on its heartbeats: the registry makes it
    /// DEGRADED ("agent reports unhealthy"), so calls go to healthy replicas
    /// when there are any; its `/readyz` answers 503. See [`HealthCheck`].
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health_checks.push(check);
        self
    }

    /// Starts, prints `LISTEN agent-mcp <addr>` on stdout, then
    /// `REGISTERED <id>` once registered, and runs until SIGTERM or ctrl-c;
    /// then deregisters, drains in-flight calls and returns.
    ///
    /// `router` is the handler's tool router; what gets registered is what
    /// the handler serves (see [`Agent::start_handler`]).
    pub async fn serve<S>(self, handler: S, router: ToolRouter<S>) -> Result<(), AgentError>
    where
        S: ServerHandler + Clone + Send + Sync + 'static,
    {
        self.start(handler, router).await?.serve_until_signal().await
    }

    /// [`Agent::serve`] for any handler.
    pub async fn serve_handler<S>(self, handler: S) -> Result<(), AgentError>
    where
        S: ServerHandler + Clone + Send + Sync + 'static,
    {
        self.start_handler(handler).await?.serve_until_signal().await
    }

    /// Starts serving and registers; returns once registered, or once
    /// serving when the registry is unreachable (registration goes on in the
    /// background; see [`RunningAgent::registered`]). `router` is the
    /// handler's tool router (kept for source compatibility: the handler
    /// itself is what gets listed and registered).
    pub async fn start<S>(
        self,
        handler: S,
        router: ToolRouter<S>,
    ) -> Result<RunningAgent, AgentError>
    where
        S: ServerHandler + Clone + Send + Sync + 'static,
    {
        drop(router);
        self.start_handler(handler).await
    }

    /// Starts serving `handler` (any rmcp server: tools, resources,
    /// templates, prompts, completion, logging) and registers everything it
    /// serves; returns once registered.
    ///
    /// What is registered is what an MCP client of the agent sees: once the
    /// endpoint listens, the SDK lists it over loopback and sends each tool,
    /// resource, template and prompt definition verbatim, with the
    /// capabilities and `serverInfo` of its `initialize` answer. A handler
    /// that keeps rmcp's default `serverInfo` announces the agent's name and
    /// version.
    ///
    /// Returns once registered; when the registry is unreachable, once
    /// serving, with registration going on in the background (an error
    /// instead with [`Agent::require_registry`]). A refused registration is
    /// an error either way.
    pub async fn start_handler<S>(self, handler: S) -> Result<RunningAgent, AgentError>
    where
        S: ServerHandler + Clone + Send + Sync + 'static,
    {
        health::validate(&self.health_checks)?;
        // Listing itself and calling dependencies build HTTP clients.
        switchboard_tls::ensure_crypto_provider();
        let require_registry = self.require_registry.clone().map_err(AgentError::Config)?;
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            AgentError::Config(format!("listen address {:?} is not IP:PORT", self.listen))
        })?;
        let tls_error = |e: switchboard_tls::TlsError| AgentError::Config(e.to_string());
        let server_tls = self.tls.as_ref().map(ServerTls::load).transpose().map_err(tls_error)?;
        let client_tls =
            self.client_tls.as_ref().map(ClientTls::load).transpose().map_err(tls_error)?;
        if server_tls.is_some() && client_tls.is_none() {
            return Err(AgentError::Config(
                "an agent serving TLS needs its client TLS too (SWITCHBOARD_TLS_CA): it lists its own endpoint over it".into(),
            ));
        }
        if let Some(tls) = &client_tls {
            crate::dependency::use_tls(tls);
        }
        let allow_plaintext = self.insecure_allow_plaintext.clone().map_err(AgentError::Config)?;
        // The endpoint has no auth of its own yet.
        let protection = Protection { tls: server_tls.is_some(), auth: false };
        check_listener("agent", addr, protection, allow_plaintext)
            .map_err(|e| AgentError::Config(e.to_string()))?;
        let listener =
            TcpListener::bind(addr).await.map_err(|source| AgentError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        let scheme = if server_tls.is_some() { "https" } else { "http" };
        let endpoint =
            self.endpoint.clone().unwrap_or_else(|| format!("{scheme}://{local_addr}/mcp"));
        let uri: tonic::codegen::http::Uri = endpoint
            .parse()
            .map_err(|_| AgentError::Config(format!("endpoint {endpoint:?} is not a URL")))?;
        let hosts = server::allowed_hosts(uri.host().unwrap_or("127.0.0.1"), uri.port_u16());

        // Lazy: the agent must start even while the registry is away.
        let bearer = self.token.clone().map_err(AgentError::Config)?;
        let addrs = RegistryAddrs::parse(&self.registry)
            .map_err(|e| AgentError::Config(format!("registry: {e}")))?
            .with_tls(client_tls.clone());
        let registries =
            Registries::resolve(addrs).await.map_err(|e| AgentError::Config(e.to_string()))?;

        let stop = CancellationToken::new();
        let (health, _checking) = Health::start(self.health_checks.clone(), &stop);
        let (registered, registered_rx) = watch::channel(false);
        let settings = server::Settings {
            hosts,
            sessions: self.sessions,
            server_info: rmcp::model::Implementation::new(&self.name, &self.version),
            health: health.clone(),
            registered: registered_rx.clone(),
        };
        // Serving starts before registering: what gets registered is what the
        // endpoint answers, listed over loopback.
        let serving = tokio::spawn(server::serve(
            listener,
            server_tls,
            handler,
            settings,
            stop.child_token(),
        ));
        let first = async {
            let own = loopback_url(local_addr).replacen("http", scheme, 1);
            let served = introspect::served(&own, client_tls.as_ref()).await?;
            let request = self.registration(&endpoint, served)?;
            let wiring = Wiring::new(&self.tools);
            let mut mesh = Mesh::new(
                (registries.clone(), bearer.clone()),
                request,
                wiring,
                health,
                registered,
            );
            self.register_first(&mut mesh, require_registry).await.map(|()| mesh)
        };
        let mesh = match first.await {
            Ok(mesh) => mesh,
            Err(error) => {
                // Nothing is registered and no call was routed here yet.
                stop.cancel();
                serving.abort();
                return Err(error);
            }
        };
        let agent_id = mesh.agent_id().to_owned();

        // The heartbeat loop outlives `stop`: it ends only after the
        // deregistration, so the registry never sees a broken stream first.
        let leaving = stop.child_token();
        let mesh_stop = CancellationToken::new();
        let meshing = tokio::spawn(mesh.run(leaving, mesh_stop.clone()));
        let task = tokio::spawn(shut_down_later(
            stop.clone(),
            (registries, bearer),
            (agent_id.clone(), registered_rx.clone()),
            serving,
            (meshing, mesh_stop),
            self.drain_timeout,
        ));
        let registered = *registered_rx.borrow();
        tracing::info!(agent_id = %agent_id, %endpoint, registered, "agent serving");
        Ok(RunningAgent { agent_id, local_addr, endpoint, stop, registered: registered_rx, task })
    }

    /// The first registration attempt: an unreachable registry is waited
    /// for in the background unless the agent requires it.
    async fn register_first(&self, mesh: &mut Mesh, required: bool) -> Result<(), AgentError> {
        match mesh.register_first().await {
            Ok(()) => Ok(()),
            Err(FirstAttempt::Refused(error)) => Err(error),
            Err(FirstAttempt::Unreachable(status)) if required => {
                Err(AgentError::RegistryUnreachable(format!(
                    "registry at {} (require_registry): {status}",
                    self.registry
                )))
            }
            Err(FirstAttempt::Unreachable(status)) => {
                tracing::warn!(
                    registry = %self.registry,
                    status = %status.message(),
                    "waiting for the registry to register; serving meanwhile, dependencies unresolved"
                );
                Ok(())
            }
        }
    }

    /// The one registration: everything served, verbatim, with the mesh
    /// metadata layered on the tools.
    fn registration(
        &self,
        endpoint: &str,
        served: Served,
    ) -> Result<RegisterAgentRequest, AgentError> {
        let resources = served
            .resources
            .iter()
            .map(|r| Resource { uri: r.uri.clone(), mcp_definition: json(r).into() })
            .collect();
        let resource_templates = served
            .resource_templates
            .iter()
            .map(|t| ResourceTemplate {
                uri_template: t.uri_template.clone(),
                mcp_definition: json(t).into(),
            })
            .collect();
        let prompts = served
            .prompts
            .iter()
            .map(|p| Prompt { name: p.name.clone(), mcp_definition: json(p).into() })
            .collect();
        Ok(RegisterAgentRequest {
            agent_id: format!("{}-{}", self.name, &uuid::Uuid::new_v4().simple().to_string()[..8]),
            name: self.name.clone(),
            version: self.version.clone(),
            endpoint: endpoint.to_owned(),
            labels: self.labels.clone(),
            tools: self.registered_tools(served.tools)?,
            resources,
            resource_templates,
            prompts,
            mcp_capabilities: served.capabilities.as_ref().map(json).unwrap_or_default().into(),
            mcp_server_info: served.server_info.as_ref().map(json).unwrap_or_default().into(),
        })
    }

    /// The registration's tools: the handler's tool definitions with the
    /// mesh metadata layered on.
    fn registered_tools(&self, served: Vec<rmcp::model::Tool>) -> Result<Vec<Tool>, AgentError> {
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
                let definition = json(&tool);
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

/// A boolean setting from the environment (unset: false).
fn flag(key: &str, value: Option<String>) -> Result<bool, String> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(format!("{key} {other:?}: want true or false")),
    }
}

/// `value` as the JSON bytes the registry keeps and the gateway serves.
fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The URL of the agent's own endpoint over loopback (a wildcard listen
/// address is reached on the loopback address of its family).
fn loopback_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}/mcp", SocketAddr::new(ip, addr.port()))
}

impl RunningAgent {
    /// Prints `LISTEN agent-mcp <addr>` on stdout, then `REGISTERED <id>`
    /// once registered (the lines scripts wait for), runs until SIGTERM or
    /// ctrl-c, then shuts down.
    pub async fn serve_until_signal(self) -> Result<(), AgentError> {
        // Installed before announcing, so an early SIGTERM is never lost.
        let signal = shutdown_signal();
        tokio::pin!(signal);
        println!("LISTEN agent-mcp {}", self.local_addr);
        tokio::select! {
            () = &mut signal => return self.shutdown().await,
            () = self.registered() => println!("REGISTERED {}", self.agent_id),
        }
        signal.await;
        self.shutdown().await
    }

    /// Whether the agent is registered (it may still be waiting for the
    /// registry it started without).
    pub fn is_registered(&self) -> bool {
        *self.registered.borrow()
    }

    /// Completes once the agent is registered (at once if it is).
    pub async fn registered(&self) {
        let mut registered = self.registered.clone();
        if registered.wait_for(|registered| *registered).await.is_err() {
            // The mesh is gone (shutting down): it never will be.
            std::future::pending::<()>().await;
        }
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
/// and drain. An agent still waiting for the registry stops trying and has
/// nothing to deregister.
async fn shut_down_later(
    stop: CancellationToken,
    (registries, bearer): (Registries, switchboard_client::Bearer),
    (agent_id, registered): (String, watch::Receiver<bool>),
    serving: JoinHandle<std::io::Result<()>>,
    (meshing, mesh_stop): (JoinHandle<()>, CancellationToken),
    drain_timeout: Duration,
) -> Result<(), AgentError> {
    stop.cancelled().await;
    let mut meshing = Some(meshing);
    if !*registered.borrow() {
        // Stop the background registration first, so none starts after the
        // check below.
        mesh_stop.cancel();
        if let Some(meshing) = meshing.take() {
            let _ = meshing.await;
        }
    }
    if *registered.borrow() {
        let request = DeregisterAgentRequest { agent_id: agent_id.clone() };
        // Where the agent is registered now, which may not be where it
        // started (or, if that one is gone, a replica sharing its store).
        let deregistering = registries.call(|channel| {
            let request = request.clone();
            let channel = bearer.channel(channel);
            async move { RegistryServiceClient::new(channel).deregister_agent(request).await }
        });
        match tokio::time::timeout(DEREGISTER_TIMEOUT, deregistering).await {
            Ok(Ok(_)) => tracing::info!(%agent_id, "deregistered"),
            Ok(Err(status)) => tracing::warn!(%agent_id, %status, "deregistration failed"),
            Err(_) => tracing::warn!(%agent_id, "deregistration timed out"),
        }
    }
    mesh_stop.cancel();
    if let Some(meshing) = meshing {
        let _ = meshing.await;
    }
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
