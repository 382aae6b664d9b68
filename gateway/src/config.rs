//! Gateway configuration.

use std::time::Duration;

use crate::breaker::BreakerConfig;

/// Everything the gateway needs to know.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The registry's gRPC address.
    pub registry: String,
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
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            registry: "127.0.0.1:7600".into(),
            call_timeout: Duration::from_secs(30),
            breaker: BreakerConfig::default(),
            max_attempts: 3,
            page_size: 100,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

impl GatewayConfig {
    /// Checks every setting; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.registry.is_empty() {
            return Err("registry: must not be empty".into());
        }
        if self.call_timeout.is_zero() {
            return Err("call_timeout must be greater than 0".into());
        }
        if self.max_attempts == 0 || self.page_size == 0 || self.breaker.threshold == 0 {
            return Err(
                "max_attempts, page_size and breaker threshold must be greater than 0".into()
            );
        }
        Ok(())
    }
}
