//! The MCP gateway served in this process on `127.0.0.1:0`, a pooled MCP
//! client pointed at it, and raw HTTP helpers for its probes and metrics.

use std::net::SocketAddr;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use switchboard_client::{McpCallError, McpPool, McpPoolConfig};
use switchboard_gateway::{GatewayConfig, GatewayError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest wait for one HTTP request in tests: every answer must come within it.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running in-process gateway.
pub struct InProcessGateway {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), GatewayError>>>,
}

impl InProcessGateway {
    /// A gateway with default settings fed by the registry at `registry`,
    /// returned once it has its first routing table.
    pub async fn start(registry: &str) -> Self {
        Self::start_with(GatewayConfig {
            registry: registry.to_owned(),
            ..GatewayConfig::default()
        })
        .await
    }

    /// A gateway fed by `registry` that may not be reachable yet: returned
    /// at once, before any routing table.
    pub async fn start_unready(registry: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
        let config = GatewayConfig { registry: registry.to_owned(), ..GatewayConfig::default() };
        Self::start_on(listener, config)
    }

    /// A gateway with `config`, returned once it has its first routing table
    /// (when it serves plain HTTP, where `/readyz` can be asked): until then
    /// every MCP request would be refused, and a test would race the Watch.
    pub async fn start_with(config: GatewayConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
        let plain_http = config.tls.is_none();
        let gateway = Self::start_on(listener, config);
        if plain_http {
            gateway.ready().await;
        }
        gateway
    }

    /// Waits until `/readyz` answers 200: the first routing snapshot is in.
    pub async fn ready(&self) {
        crate::eventually("gateway /readyz 200", Duration::from_secs(30), || async {
            (self.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }

    /// A gateway with `config` on `listener` (bound first when the config
    /// must name the gateway's own URL, as an OAuth resource does).
    pub fn start_on(listener: TcpListener, config: GatewayConfig) -> Self {
        crate::init_logging();
        let addr = listener.local_addr().expect("gateway addr");
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(switchboard_gateway::serve(config, listener, async move {
            stopped.cancelled().await;
        }));
        Self { addr, stop, task: Some(task) }
    }

    /// The MCP endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// `GET path` on the gateway's port: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(&format!("http://{}{path}", self.addr)).await
    }

    /// The Prometheus text at `/metrics`.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "gateway /metrics: {body}");
        body
    }

    /// Waits until the routing table reflects registry revision `revision`.
    pub async fn caught_up(&self, revision: u64) {
        let what = format!("gateway table at revision {revision}");
        crate::eventually(&what, Duration::from_secs(30), || async {
            let metrics = self.metrics().await;
            let at = crate::metric_value(&metrics, "switchboard_gateway_table_revision")?;
            (at >= revision as f64).then_some(())
        })
        .await;
    }

    /// Stops serving and returns how serving ended.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        self.stop.cancel();
        let task = self.task.take().expect("running");
        tokio::time::timeout(HTTP_TIMEOUT, task)
            .await
            .expect("gateway stops within the deadline")
            .expect("gateway task")
    }
}

impl Drop for InProcessGateway {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A reqwest client that never waits longer than [`HTTP_TIMEOUT`].
pub fn http_client() -> reqwest::Client {
    switchboard_tls::http_client_builder().timeout(HTTP_TIMEOUT).build().expect("reqwest client")
}

/// `GET url`: status and body (panics if no answer within [`HTTP_TIMEOUT`]).
pub async fn http_get(url: &str) -> (u16, String) {
    let response = http_client().get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The value of the sample `name{labels}` written exactly as exposed, e.g.
/// `switchboard_gateway_breaker_state{endpoint="http://127.0.0.1:1/mcp"}`.
pub fn sample(text: &str, sample: &str) -> Option<f64> {
    crate::metric_value(text, sample)
}

/// A real MCP client (rmcp through the pool, 2026-07-28 when the server
/// speaks it) with one reused session to `url`.
pub struct McpClient {
    pub url: String,
    pool: McpPool,
}

impl McpClient {
    pub fn new(url: &str) -> Self {
        Self::with_config(url, McpPoolConfig::default())
    }

    /// Only the legacy `initialize` handshake.
    pub fn legacy(url: &str) -> Self {
        Self::with_config(url, McpPoolConfig { legacy_only: true, ..McpPoolConfig::default() })
    }

    fn with_config(url: &str, config: McpPoolConfig) -> Self {
        Self { url: url.to_owned(), pool: McpPool::new(config) }
    }

    /// Names in `tools/list`, sorted.
    pub async fn tool_names(&self) -> Result<Vec<String>, McpCallError> {
        let mut names: Vec<String> = self
            .pool
            .list_tools(&self.url)
            .await?
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    /// `tools/call`.
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Value,
    ) -> Result<CallToolResult, McpCallError> {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments.as_object().cloned();
        self.pool.call_tool(&self.url, params).await
    }

    /// The text of a successful, non-error `tools/call`; panics otherwise.
    pub async fn call_text(&self, tool: &str, arguments: serde_json::Value) -> String {
        let result = self
            .call(tool, arguments)
            .await
            .unwrap_or_else(|e| panic!("tools/call {tool} through {}: {e}", self.url));
        let text = crate::mcp::text(&result);
        assert_ne!(result.is_error, Some(true), "tools/call {tool} answered a tool error: {text}");
        text
    }
}

/// The JSON-RPC error code of a failed call, when the server answered one.
pub fn error_code(error: &McpCallError) -> Option<i32> {
    match error {
        McpCallError::Mcp { error, .. } => Some(error.code.0),
        _ => None,
    }
}

/// A loopback address with nothing listening (the port was free a moment ago).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Registers agent `name` serving `tool` at `endpoint` (nothing need listen
/// there) and keeps it HEALTHY with a heartbeat stream until the session is
/// aborted.
pub async fn register_fake(
    channel: tonic::transport::Channel,
    name: &str,
    tool: &str,
    endpoint: &str,
) -> crate::HeartbeatSession {
    use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
    use switchboard_proto::v1::{RegisterAgentRequest, Tool};
    let request = RegisterAgentRequest {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        endpoint: endpoint.to_owned(),
        tools: vec![Tool {
            name: tool.to_owned(),
            version: "1.0.0".to_owned(),
            description: format!("{tool} of a fake {name}"),
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    };
    let mut client = RegistryServiceClient::new(channel.clone());
    let agent_id =
        client.register_agent(request).await.expect("register fake").into_inner().agent_id;
    crate::HeartbeatSession::open(channel, &agent_id, Duration::from_millis(500)).await
}
