//! Live dependency proxies.
//!
//! A [`Dependency`] is declared once, attached to the tools that need it, and
//! cloned into the tool handler. The registry's wiring (at registration and
//! on every push) swaps its provider list atomically; a call picks the next
//! top-ranked provider round-robin and calls its tool over a pooled MCP
//! session. When nothing is resolved the call fails fast with
//! [`DependencyError::Unresolved`], so the tool can still answer, degraded.
//!
//! Failover follows the gateway's rule: the next provider is tried only when
//! the request certainly never reached the previous one (connection refused,
//! no session: [`McpCallError::is_retryable_elsewhere`]). A provider whose
//! connection broke mid-call may have run the tool, so that call ends with
//! [`DependencyError::Failed`] rather than running it a second time
//! elsewhere; a provider that timed out may still be running it.
//!
//! A call takes at most the dependency's timeout ([`Dependency::with_timeout`],
//! default [`DEFAULT_DEPENDENCY_TIMEOUT`]), and less when the call the tool
//! serves has a caller deadline: it then gives up a margin before that
//! deadline, so the tool answers degraded before its caller gives up on it.
//!
//! Each attempt is a CLIENT span `tools/call <tool>` whose trace context is
//! written into the request's `params._meta`: called from a tool, it
//! continues the trace of the call that tool is serving. (From a task the
//! tool spawns, instrument that task with `tracing::Instrument::in_current_span`
//! to keep the trace.)

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use switchboard_client::{McpCallError, McpPool, McpPoolConfig};
use switchboard_proto::v1::{DependencySpec, Provider};

/// How long a dependency call may take unless set otherwise.
pub const DEFAULT_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(30);

/// The pool shared by every dependency of this process.
static POOL: LazyLock<McpPool> = LazyLock::new(|| {
    McpPool::new(McpPoolConfig { tls: TLS.get().cloned(), ..McpPoolConfig::default() })
});

/// The client TLS of the first agent of the process that has one: the pool
/// is process-wide, and agents of one process share a mesh (and its CA).
static TLS: OnceLock<switchboard_tls::ClientTls> = OnceLock::new();

/// Dependency calls use `tls` unless a configuration was set already.
pub(crate) fn use_tls(tls: &switchboard_tls::ClientTls) {
    let _ = TLS.set(tls.clone());
}

/// Why a dependency call failed.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// No provider is wired right now.
    #[error("dependency {capability:?} is unresolved")]
    Unresolved {
        /// The capability needed.
        capability: String,
    },
    /// Every provider tried was unreachable.
    #[error("dependency {capability:?}: no provider reachable: {message}")]
    Unreachable {
        /// The capability needed.
        capability: String,
        /// The last failure.
        message: String,
    },
    /// The provider's tool reported a failure (`isError`) or an MCP error.
    #[error("dependency {capability:?}: provider tool failed: {message}")]
    ToolError {
        /// The capability needed.
        capability: String,
        /// What the provider said.
        message: String,
    },
    /// The provider did not answer in time (it may still be running the call).
    #[error("dependency {capability:?}: provider timed out")]
    Timeout {
        /// The capability needed.
        capability: String,
    },
    /// The provider's connection broke mid-call: the tool may have run, so
    /// no other provider was tried.
    #[error(
        "dependency {capability:?}: provider connection failed mid-call (it may have run): {message}"
    )]
    Failed {
        /// The capability needed.
        capability: String,
        /// What failed.
        message: String,
    },
}

// === impl DependencyError ===

impl DependencyError {
    /// The `outcome` label of `switchboard_agent_dependency_calls_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DependencyError::Unresolved { .. } => "unresolved",
            DependencyError::Unreachable { .. } => "unreachable",
            DependencyError::ToolError { .. } => "tool_error",
            DependencyError::Timeout { .. } => "timeout",
            DependencyError::Failed { .. } => "failed",
        }
    }
}

/// A handle on one dependency: capability, version constraint and tags, and
/// the providers the registry currently wires to it.
#[derive(Clone)]
pub struct Dependency {
    inner: Arc<Inner>,
}

struct Inner {
    spec: DependencySpec,
    providers: ArcSwap<Vec<Provider>>,
    next: AtomicUsize,
    /// The call timeout in milliseconds: atomic, so setting it reaches every
    /// clone already attached to tools.
    timeout_ms: AtomicU64,
}

// === impl Dependency ===

impl Dependency {
    /// A dependency on `capability` at versions matching `version`
    /// (`>=1.0`, `^1.2`, `1.x || 2.x`; empty for any).
    pub fn new(capability: &str, version: &str) -> Self {
        Self::with_tags(capability, version, &[])
    }

    /// Same, with tag constraints: `tag` required, `+tag` preferred, `-tag` excluded.
    pub fn with_tags(capability: &str, version: &str, tags: &[&str]) -> Self {
        let spec = DependencySpec {
            capability: capability.to_owned(),
            version: version.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        };
        Self {
            inner: Arc::new(Inner {
                spec,
                providers: ArcSwap::from_pointee(Vec::new()),
                next: AtomicUsize::new(0),
                timeout_ms: AtomicU64::new(millis(DEFAULT_DEPENDENCY_TIMEOUT)),
            }),
        }
    }

    /// Sets how long one call may take in all (every provider tried);
    /// a caller deadline shortens it further.
    pub fn with_timeout(self, limit: Duration) -> Self {
        self.inner.timeout_ms.store(millis(limit), Ordering::Relaxed);
        self
    }

    /// How long one call may take, before any caller deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.load(Ordering::Relaxed))
    }

    /// The spec sent to the registry.
    pub fn spec(&self) -> &DependencySpec {
        &self.inner.spec
    }

    /// The capability needed.
    pub fn capability(&self) -> &str {
        &self.inner.spec.capability
    }

    /// True when at least one provider is wired.
    pub fn is_resolved(&self) -> bool {
        !self.inner.providers.load().is_empty()
    }

    /// The providers wired now (all top-ranked).
    pub fn providers(&self) -> Arc<Vec<Provider>> {
        self.inner.providers.load_full()
    }

    /// Replaces the wiring (called by the agent runtime).
    ///
    /// The registry already ranks providers; the SDK applies the same
    /// routability rule on top ([`Provider::routability`]), so a provider the
    /// rule excludes is never called even if an older registry wired it, and
    /// last-resort (degraded) providers are called only when no healthy one
    /// is wired.
    pub(crate) fn set_providers(&self, providers: Vec<Provider>) {
        self.inner.providers.store(Arc::new(routable(providers)));
    }

    /// Calls the provider's tool with `arguments` (a JSON object), balancing
    /// across providers and failing over only when one is unreachable (the
    /// request never reached it).
    pub async fn call(
        &self,
        arguments: serde_json::Value,
    ) -> Result<CallToolResult, DependencyError> {
        let started = std::time::Instant::now();
        let budget = crate::deadline::budget(self.timeout());
        let result = match tokio::time::timeout(budget, self.call_providers(arguments)).await {
            Ok(result) => result,
            Err(_) => Err(DependencyError::Timeout { capability: self.capability().to_owned() }),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.metric_label(),
        };
        crate::metrics::METRICS.dependency_call(self.capability(), outcome, started.elapsed());
        result
    }

    async fn call_providers(
        &self,
        arguments: serde_json::Value,
    ) -> Result<CallToolResult, DependencyError> {
        let providers = self.providers();
        if providers.is_empty() {
            return Err(DependencyError::Unresolved { capability: self.capability().to_owned() });
        }
        let arguments = match arguments {
            serde_json::Value::Object(map) => Some(map),
            serde_json::Value::Null => None,
            other => Some(JsonObject::from_iter([("value".to_owned(), other)])),
        };
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for offset in 0..providers.len() {
            let provider = &providers[(start + offset) % providers.len()];
            let mut params = CallToolRequestParams::new(provider.tool_name.clone());
            params.arguments = arguments.clone();
            match POOL.call_tool_traced(&provider.endpoint, &provider.agent_id, params).await {
                Ok(result) if result.is_error == Some(true) => {
                    return Err(self.tool_error(text_of(&result)));
                }
                Ok(result) => return Ok(result),
                Err(error) if error.is_retryable_elsewhere() => {
                    tracing::debug!(%error, agent_id = %provider.agent_id, "provider unreachable; trying the next");
                    last = error.to_string();
                }
                Err(error) => return Err(self.failure(error)),
            }
        }
        Err(DependencyError::Unreachable {
            capability: self.capability().to_owned(),
            message: last,
        })
    }

    /// [`Dependency::call`], returning the text content of the result.
    pub async fn call_text(&self, arguments: serde_json::Value) -> Result<String, DependencyError> {
        self.call(arguments).await.map(|result| text_of(&result))
    }

    fn tool_error(&self, message: String) -> DependencyError {
        DependencyError::ToolError { capability: self.capability().to_owned(), message }
    }

    /// A failure after which no other provider may be tried.
    fn failure(&self, error: McpCallError) -> DependencyError {
        let capability = self.capability().to_owned();
        match error {
            McpCallError::Mcp { error, .. } => self.tool_error(error.message.to_string()),
            McpCallError::Timeout { .. } => DependencyError::Timeout { capability },
            other => DependencyError::Failed { capability, message: other.to_string() },
        }
    }
}

impl std::fmt::Debug for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependency")
            .field("spec", &self.inner.spec)
            .field("providers", &self.inner.providers.load().len())
            .finish()
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The text blocks of a result, joined by newlines.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The providers the routability rule lets serve, best class only.
fn routable(mut providers: Vec<Provider>) -> Vec<Provider> {
    providers.retain(|provider| provider.routability().may_serve());
    let best = providers.iter().map(Provider::routability).min();
    providers.retain(|provider| Some(provider.routability()) == best);
    providers
}

#[cfg(test)]
mod tests {
    use switchboard_proto::v1::{AgentStatus, StatusReason};

    use super::*;

    fn provider(id: &str, status: AgentStatus, cause: StatusReason) -> Provider {
        Provider {
            agent_id: id.into(),
            status: status as i32,
            status_cause: cause as i32,
            ..Provider::default()
        }
    }

    #[test]
    fn only_the_best_routable_providers_are_called() {
        let ids = |providers: Vec<Provider>| -> Vec<String> {
            routable(providers).into_iter().map(|p| p.agent_id).collect()
        };
        let healthy = provider("a", AgentStatus::Healthy, StatusReason::Unspecified);
        let late = provider("b", AgentStatus::Degraded, StatusReason::HeartbeatLate);
        let broke = provider("c", AgentStatus::Degraded, StatusReason::StreamBroke);
        assert_eq!(ids(vec![late.clone(), healthy, broke.clone()]), ["a"]);
        assert_eq!(ids(vec![broke.clone(), late]), ["b"], "a late one is a last resort");
        assert!(ids(vec![broke]).is_empty(), "a crashed one is never called");
    }
}
