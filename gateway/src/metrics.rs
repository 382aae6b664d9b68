//! Prometheus metrics of the gateway, every name prefixed `switchboard_gateway_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a routed request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Exposed tool name (`-` for an unknown one, to bound cardinality).
    pub tool: String,
    /// `ok`, `tool_error`, or a failure's [`crate::CallError::metric_label`].
    pub outcome: &'static str,
}

/// Label of per-endpoint series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// The agent's MCP URL.
    pub endpoint: String,
}

/// Label of per-tool histograms.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabel {
    /// Exposed tool name.
    pub tool: String,
}

/// Label of auth failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    /// Why authentication failed ([`crate::access::AuthFailure::cause`]).
    pub cause: &'static str,
}

/// Label of policy denials.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    /// The denying rule (`default`, `insufficient_scope`, or a rule's name).
    pub rule: String,
}

/// Labels of rate-limited calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitedLabels {
    /// The caller.
    pub principal: String,
    /// The exposed tool.
    pub tool: String,
}

/// Label of policy reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `ok` or `invalid`.
    pub outcome: &'static str,
}

/// Every metric the gateway exports.
///
/// ```
/// use switchboard_gateway::GatewayMetrics;
///
/// let metrics = GatewayMetrics::new();
/// metrics.request("get_date", "ok");
/// let text = metrics.render();
/// assert!(text.contains(r#"switchboard_gateway_requests_total{tool="get_date",outcome="ok"} 1"#), "{text}");
/// ```
#[derive(Debug)]
pub struct GatewayMetrics {
    registry: Registry,
    /// `tools/call` requests by tool and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Upstream call latency by tool (one observation per attempt).
    pub upstream_seconds: Family<ToolLabel, Histogram>,
    /// Whole `tools/call` latency by tool, failovers included.
    pub request_seconds: Family<ToolLabel, Histogram>,
    /// Breaker state per endpoint: 0 closed, 1 open, 2 half-open.
    pub breaker_state: Family<EndpointLabel, Gauge>,
    /// Failovers to another replica.
    pub failovers: Counter,
    /// Registry revision of the routing table.
    pub table_revision: Gauge,
    /// Tools in the routing table.
    pub tools: Gauge,
    /// Connected MCP sessions (legacy sessions plus 2026 subscriptions).
    pub sessions: Gauge,
    /// Requests refused for want of valid credentials, by cause.
    pub auth_failures: Family<CauseLabel, Counter>,
    /// Calls refused by a scope or a policy rule, by rule.
    pub denials: Family<RuleLabel, Counter>,
    /// Calls refused by a rate limit, by principal and tool.
    pub rate_limited: Family<LimitedLabels, Counter>,
    /// Policy file reloads by outcome.
    pub policy_reloads: Family<OutcomeLabel, Counter>,
}

/// 50 µs … ~26 s, doubling: the gateway's sub-millisecond overhead up to
/// the 30 s default call timeout.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 20))
}

// === impl GatewayMetrics ===

impl GatewayMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let upstream_seconds =
            Family::<ToolLabel, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let request_seconds =
            Family::<ToolLabel, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let breaker_state = Family::<EndpointLabel, Gauge>::default();
        let failovers = Counter::default();
        let table_revision = Gauge::default();
        let tools = Gauge::default();
        let sessions = Gauge::default();
        let auth_failures = Family::<CauseLabel, Counter>::default();
        let denials = Family::<RuleLabel, Counter>::default();
        let rate_limited = Family::<LimitedLabels, Counter>::default();
        let policy_reloads = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused for want of valid credentials, by cause",
            auth_failures.clone(),
        );
        registry.register("denials", "Calls refused by scope or policy, by rule", denials.clone());
        registry.register(
            "rate_limited",
            "Calls refused by a rate limit, by principal and tool",
            rate_limited.clone(),
        );
        registry.register(
            "policy_reloads",
            "Policy file reloads by outcome",
            policy_reloads.clone(),
        );
        registry.register("requests", "tools/call requests by tool and outcome", requests.clone());
        registry.register(
            "upstream_duration_seconds",
            "Latency of calls to agents, by tool",
            upstream_seconds.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Latency of routed tools/call requests, failovers included, by tool",
            request_seconds.clone(),
        );
        registry.register(
            "breaker_state",
            "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        registry.register("failovers", "Calls retried on another replica", failovers.clone());
        registry.register(
            "table_revision",
            "Registry revision of the routing table",
            table_revision.clone(),
        );
        registry.register("tools", "Tools in the routing table", tools.clone());
        registry.register("sessions", "Connected MCP sessions", sessions.clone());
        switchboard_telemetry::register_metrics(&mut registry);
        Self {
            registry,
            requests,
            upstream_seconds,
            request_seconds,
            breaker_state,
            failovers,
            table_revision,
            tools,
            sessions,
            auth_failures,
            denials,
            rate_limited,
            policy_reloads,
        }
    }

    /// Counts one authentication failure.
    pub fn auth_failure(&self, cause: &'static str) {
        self.auth_failures.get_or_create(&CauseLabel { cause }).inc();
    }

    /// Counts one denial by `rule`.
    pub fn denial(&self, rule: &str) {
        self.denials.get_or_create(&RuleLabel { rule: rule.to_owned() }).inc();
    }

    /// Counts one rate-limited call.
    pub fn rate_limited(&self, principal: &str, tool: &str) {
        let labels = LimitedLabels { principal: principal.to_owned(), tool: tool.to_owned() };
        self.rate_limited.get_or_create(&labels).inc();
    }

    /// Counts one request.
    pub fn request(&self, tool: &str, outcome: &'static str) {
        self.requests.get_or_create(&RequestLabels { tool: tool.to_owned(), outcome }).inc();
    }

    /// Times one routed request.
    pub fn request_duration(&self, tool: &str, elapsed: std::time::Duration) {
        self.request_seconds
            .get_or_create(&ToolLabel { tool: tool.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        switchboard_telemetry::render_metrics(&self.registry)
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}
