//! Gateway configuration.

use std::time::Duration;

use crate::access::AccessConfig;
use crate::breaker::BreakerConfig;

/// Where the gateway serves HTTP (`/mcp`, `/healthz`, `/readyz`, `/metrics`)
/// unless told otherwise: loopback only, so a gateway started without flags
/// is never reachable from the network.
///
/// ```
/// assert_eq!(switchboard_gateway::DEFAULT_GATEWAY_ADDR, "127.0.0.1:7700");
/// ```
pub const DEFAULT_GATEWAY_ADDR: &str = "127.0.0.1:7700";

/// Everything the gateway needs to know.
///
/// ```
/// use std::time::Duration;
/// use switchboard_gateway::GatewayConfig;
///
/// let config = GatewayConfig {
///     registry: "10.0.0.5:7600".into(),
///     call_timeout: Duration::from_secs(5),
///     allowed_hosts: vec!["gateway.internal".into()],
///     ..GatewayConfig::default()
/// };
/// assert_eq!(config.validate(), Ok(()));
///
/// let broken = GatewayConfig { call_timeout: Duration::ZERO, ..GatewayConfig::default() };
/// assert!(broken.validate().unwrap_err().contains("call_timeout"));
/// ```
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The registry's gRPC address (default [`switchboard_client::DEFAULT_REGISTRY_ADDR`]),
    /// or several replicas' separated by commas (`a:7600,b:7600`), or a DNS
    /// name that resolves to several: the gateway watches one and moves to
    /// the next when its stream breaks.
    pub registry: String,
    /// The token the gateway's Watch presents to a registry with auth (a
    /// viewer token is enough).
    pub registry_token: switchboard_client::Bearer,
    /// Longest wait for one upstream call.
    pub call_timeout: Duration,
    /// Per-endpoint circuit breaker.
    pub breaker: BreakerConfig,
    /// Most replicas tried for one call when the first ones are unreachable.
    pub max_attempts: usize,
    /// `tools/list` page size.
    pub page_size: usize,
    /// Extra `Host` values accepted at `/mcp` (loopback always is; `*` accepts any).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted at `/mcp` (loopback origins always are).
    pub allowed_origins: Vec<String>,
    /// Serve the read-only dashboard at `/ui` on the gateway's port.
    pub ui: bool,
    /// Who may call which tool: authentication, policy, rate limits,
    /// identity to agents, call audit (all off by default).
    pub access: AccessConfig,
    /// Serve HTTPS with this certificate (`None`: plaintext).
    pub tls: Option<switchboard_tls::ServerTls>,
    /// TLS for the gateway's own connections, to the registry (its Watch)
    /// and to `https://` agents: their CA and, for mTLS, the gateway's
    /// certificate. `None`: plaintext to a `host:port` registry, the
    /// system's roots for `https://` addresses.
    pub client_tls: Option<switchboard_tls::ClientTls>,
}

// === impl GatewayConfig ===

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            registry: switchboard_client::DEFAULT_REGISTRY_ADDR.into(),
            registry_token: switchboard_client::Bearer::default(),
            call_timeout: Duration::from_secs(30),
            breaker: BreakerConfig::default(),
            max_attempts: 3,
            page_size: 100,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            ui: true,
            access: AccessConfig::default(),
            tls: None,
            client_tls: None,
        }
    }
}

impl GatewayConfig {
    /// Checks every setting; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.registry.is_empty() {
            return Err("registry: must not be empty".into());
        }
        if let Err(error) = switchboard_client::RegistryAddrs::parse(&self.registry) {
            return Err(format!("registry: {error}"));
        }
        if self.call_timeout.is_zero() {
            return Err("call_timeout must be greater than 0".into());
        }
        if self.max_attempts == 0 || self.page_size == 0 || self.breaker.threshold == 0 {
            return Err(
                "max_attempts, page_size and breaker threshold must be greater than 0".into()
            );
        }
        self.access.validate()
    }
}
