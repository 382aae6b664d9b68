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
        }
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
