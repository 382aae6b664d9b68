//! A pool of reused MCP client sessions, one per agent endpoint.
//!
//! A handshake per call would cost a round trip or two; instead each endpoint
//! gets one long-lived rmcp client whose peer multiplexes concurrent calls.
//! The lifecycle mode is `Auto`: the stateless 2026-07-28 revision when the
//! agent speaks it (no handshake at all), the `initialize` handshake otherwise.
//! A session that fails at the transport level is dropped and rebuilt on the
//! next call.
//!
//! Errors say whether the request may have reached the agent: only calls that
//! certainly did not (no session could be made, or no connection could be
//! opened for the request) are [`McpCallError::is_retryable_elsewhere`], so a
//! caller never runs a tool twice because of a failover.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion, Tool};
use rmcp::service::{RunningService, ServiceError};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{DynamicTransportError, StreamableHttpClientTransport};
use rmcp::{ClientLifecycleMode, ClientServiceExt as _, RoleClient, ServiceExt as _};
use switchboard_telemetry::mcp::{self, Outcome};
use tokio::sync::OnceCell;
use tracing::Instrument as _;

use crate::McpCallError;

/// Pool settings.
///
/// ```
/// use std::time::Duration;
/// use switchboard_client::{McpPool, McpPoolConfig};
///
/// let config = McpPoolConfig { call_timeout: Duration::from_secs(5), ..McpPoolConfig::default() };
/// let pool = McpPool::new(config);
/// assert!(pool.is_empty(), "sessions open on first use");
/// ```
#[derive(Debug, Clone)]
pub struct McpPoolConfig {
    /// Longest wait for one call (handshake included).
    pub call_timeout: Duration,
    /// Longest wait for a new session.
    pub connect_timeout: Duration,
    /// Concurrent calls one session may carry.
    pub max_concurrent_requests: usize,
    /// Use only the legacy `initialize` handshake (for old agents).
    pub legacy_only: bool,
    /// TLS for `https://` agents (their CA, and a client certificate when
    /// they require one); `None`: the system's trusted roots.
    pub tls: Option<switchboard_tls::ClientTls>,
}

// === impl McpPoolConfig ===

impl Default for McpPoolConfig {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_concurrent_requests: 256,
            legacy_only: false,
            tls: None,
        }
    }
}

type Session = RunningService<RoleClient, ()>;

/// Shared MCP client sessions, by endpoint.
///
/// ```no_run
/// use rmcp::model::CallToolRequestParams;
/// use switchboard_client::{McpCallError, McpPool, McpPoolConfig};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), McpCallError> {
/// let pool = McpPool::new(McpPoolConfig::default());
/// let agent = "http://127.0.0.1:8080/mcp";
/// match pool.call_tool(agent, CallToolRequestParams::new("get_date")).await {
///     Ok(result) => println!("{:?}", result.content),
///     // Safe to try another replica: the request never reached this one.
///     Err(error) if error.is_retryable_elsewhere() => eprintln!("{error}; trying another"),
///     Err(error) => return Err(error),
/// }
/// # Ok(())
/// # }
/// ```
pub struct McpPool {
    config: McpPoolConfig,
    http: reqwest::Client,
    sessions: Mutex<HashMap<String, Arc<OnceCell<Arc<Session>>>>>,
}

// === impl McpPool ===

impl Default for McpPool {
    fn default() -> Self {
        Self::new(McpPoolConfig::default())
    }
}

impl McpPool {
    /// An empty pool.
    pub fn new(config: McpPoolConfig) -> Self {
        // As rmcp's default client: no idle connections kept (see `connect`),
        // and agents never redirect.
        let builder = switchboard_tls::http_client_builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none());
        let builder = match &config.tls {
            Some(tls) => tls.http_client(builder),
            None => builder,
        };
        let http = builder.build().unwrap_or_else(|error| {
            tracing::warn!(%error, "mcp pool: cannot build the configured http client; using the default");
            reqwest::Client::new()
        });
        Self { config, http, sessions: Mutex::new(HashMap::new()) }
    }

    /// Calls `tool` on the agent at `endpoint`.
    pub async fn call_tool(
        &self,
        endpoint: &str,
        params: CallToolRequestParams,
    ) -> Result<CallToolResult, McpCallError> {
        let session = self.session(endpoint).await?;
        let timeout = self.config.call_timeout;
        match tokio::time::timeout(timeout, session.call_tool(params)).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(self.classify(endpoint, &session, error)),
            Err(_) => Err(McpCallError::Timeout { endpoint: endpoint.to_owned(), timeout }),
        }
    }

    /// [`McpPool::call_tool`] as an OpenTelemetry CLIENT span that carries the
    /// caller's trace into the agent (`params._meta.traceparent`) and records
    /// the outcome. `agent_id` names the agent on the span.
    pub async fn call_tool_traced(
        &self,
        endpoint: &str,
        agent_id: &str,
        mut params: CallToolRequestParams,
    ) -> Result<CallToolResult, McpCallError> {
        let span = mcp::client_span(&params.name, endpoint);
        span.record("switchboard.agent.id", agent_id);
        let call = async {
            mcp::inject(&mut params);
            self.call_tool(endpoint, params).await
        };
        let result = call.instrument(span.clone()).await;
        let outcome = match &result {
            Ok(result) if result.is_error == Some(true) => Outcome::ToolError,
            Ok(_) => Outcome::Ok,
            Err(McpCallError::Mcp { error, .. }) => Outcome::RpcError(error.code.0),
            Err(other) => Outcome::Failed(other.class().label()),
        };
        mcp::record_outcome(&span, outcome);
        result
    }

    /// Lists the tools of the agent at `endpoint`.
    pub async fn list_tools(&self, endpoint: &str) -> Result<Vec<Tool>, McpCallError> {
        let session = self.session(endpoint).await?;
        let timeout = self.config.call_timeout;
        match tokio::time::timeout(timeout, session.list_all_tools()).await {
            Ok(Ok(tools)) => Ok(tools),
            Ok(Err(error)) => Err(self.classify(endpoint, &session, error)),
            Err(_) => Err(McpCallError::Timeout { endpoint: endpoint.to_owned(), timeout }),
        }
    }

    /// Forgets the session of `endpoint` (the agent left).
    pub fn forget(&self, endpoint: &str) {
        self.sessions.lock().remove(endpoint);
    }

    /// Endpoints with an open or opening session.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn session(&self, endpoint: &str) -> Result<Arc<Session>, McpCallError> {
        let cell = self.sessions.lock().entry(endpoint.to_owned()).or_default().clone();
        let made = cell.get_or_try_init(|| self.connect(endpoint)).await;
        if made.is_err() {
            self.drop_cell(endpoint, &cell);
        }
        made.cloned()
    }

    async fn connect(&self, endpoint: &str) -> Result<Arc<Session>, McpCallError> {
        let unreachable =
            |message: String| McpCallError::Unreachable { endpoint: endpoint.to_owned(), message };
        let mut config = StreamableHttpClientTransportConfig::with_uri(endpoint.to_owned());
        config.max_concurrent_requests = self.config.max_concurrent_requests;
        // rmcp's default HTTP client opens a fresh connection per request.
        // That costs a loopback handshake per call, but it is what makes a
        // dead agent's failure unambiguous: "connection refused" means the
        // request never left, so failover can never run a tool twice. Over a
        // kept-alive connection the first request after a crash fails as
        // "connection closed mid-request", which may have run (measured: the
        // gateway's failover test then fails under load).
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let legacy_only = self.config.legacy_only;
        let connecting = async move {
            if legacy_only {
                ().serve(transport).await
            } else {
                let lifecycle = ClientLifecycleMode::Auto {
                    preferred_versions: vec![ProtocolVersion::LATEST],
                    legacy_version: None,
                };
                ().serve_with_lifecycle(transport, lifecycle).await
            }
        };
        // rmcp's session tasks keep the span current when they start for as
        // long as the session lives: started from a call's span, they would
        // hold it open (never ended, never exported). A task of its own
        // starts them outside any span.
        let mut connecting = tokio::spawn(connecting);
        match tokio::time::timeout(self.config.connect_timeout, &mut connecting).await {
            Ok(Ok(Ok(session))) => Ok(Arc::new(session)),
            Ok(Ok(Err(error))) => Err(unreachable(error.to_string())),
            Ok(Err(join)) => Err(unreachable(join.to_string())),
            Err(_) => {
                connecting.abort();
                Err(unreachable(format!("no handshake within {:?}", self.config.connect_timeout)))
            }
        }
    }

    /// Maps an rmcp error; a transport failure also retires the session.
    fn classify(
        &self,
        endpoint: &str,
        session: &Arc<Session>,
        error: ServiceError,
    ) -> McpCallError {
        match error {
            ServiceError::McpError(error) => {
                McpCallError::Mcp { endpoint: endpoint.to_owned(), error }
            }
            ServiceError::Timeout { timeout } => {
                McpCallError::Timeout { endpoint: endpoint.to_owned(), timeout }
            }
            other => {
                self.retire(endpoint, session);
                let message = other.to_string();
                match other {
                    ServiceError::TransportSend(error) if never_sent(&error) => {
                        McpCallError::Unreachable { endpoint: endpoint.to_owned(), message }
                    }
                    _ => McpCallError::Transport { endpoint: endpoint.to_owned(), message },
                }
            }
        }
    }

    /// Drops `session` from the pool unless it was already replaced.
    fn retire(&self, endpoint: &str, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock();
        let current = sessions.get(endpoint).and_then(|cell| cell.get().cloned());
        if current.is_some_and(|current| Arc::ptr_eq(&current, session)) {
            sessions.remove(endpoint);
        }
    }

    fn drop_cell(&self, endpoint: &str, cell: &Arc<OnceCell<Arc<Session>>>) {
        let mut sessions = self.sessions.lock();
        if sessions.get(endpoint).is_some_and(|current| Arc::ptr_eq(current, cell)) {
            sessions.remove(endpoint);
        }
    }
}

/// True when a failed send certainly never reached the agent: no TCP
/// connection could be made (connection refused, no route…). rmcp reports
/// every failed POST as `TransportSend`, including a connection that broke
/// after the request was written (the agent may have run the tool), so only
/// a connect failure anywhere in the error chain counts. A pooled keep-alive
/// connection to a process that died is not one of those: hyper notices the
/// peer's close and retries the request on a new connection, whose connect
/// is then refused.
fn never_sent(error: &DynamicTransportError) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error.error.as_ref());
    while let Some(error) = current {
        if let Some(StreamableHttpError::Client(client)) =
            error.downcast_ref::<StreamableHttpError<reqwest::Error>>()
            && client.is_connect()
        {
            return true;
        }
        if error.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect)
            || error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        current = error.source();
    }
    false
}
