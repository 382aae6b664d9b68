//! The agent's own metrics, served at `/metrics` on its MCP port:
//! tool calls it served and dependency calls it made, by outcome, with
//! latency histograms (50 µs to ~26 s). Names follow Prometheus conventions
//! (`_total`, `_seconds`) under the `switchboard_agent_` prefix; the
//! exporter's own counters (`switchboard_agent_otel_*`) are included, and
//! the process metrics under their standard names (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a served tool call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    /// Tool name.
    pub tool: String,
    /// `ok`, `tool_error` (isError) or `error` (protocol error).
    pub outcome: &'static str,
}

/// Labels of a dependency call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DependencyLabels {
    /// Capability called.
    pub capability: String,
    /// `ok`, or a failure's [`crate::DependencyError::metric_label`]:
    /// `unresolved`, `unreachable`, `tool_error`, `timeout`, `failed`.
    pub outcome: &'static str,
}

/// Label of the tool latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabel {
    /// Tool name.
    pub tool: String,
}

/// Label of the dependency latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CapabilityLabel {
    /// Capability called.
    pub capability: String,
}

/// Every metric of the SDK.
pub struct AgentMetrics {
    registry: Registry,
    pub(crate) tool_calls: Family<ToolLabels, Counter>,
    pub(crate) tool_seconds: Family<ToolLabel, Histogram>,
    pub(crate) dependency_calls: Family<DependencyLabels, Counter>,
    pub(crate) dependency_seconds: Family<CapabilityLabel, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~26 s, doubling: sub-millisecond tools to the 30 s call timeout.
    Histogram::new(exponential_buckets(0.00005, 2.0, 20))
}

/// The process-wide metrics.
pub static METRICS: LazyLock<AgentMetrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("switchboard_agent");
    let tool_calls = Family::<ToolLabels, Counter>::default();
    let tool_seconds = Family::<ToolLabel, Histogram>::new_with_constructor(
        latency_histogram as fn() -> Histogram,
    );
    let dependency_calls = Family::<DependencyLabels, Counter>::default();
    let dependency_seconds = Family::<CapabilityLabel, Histogram>::new_with_constructor(
        latency_histogram as fn() -> Histogram,
    );
    registry.register("tool_calls", "Tool calls served, by tool and outcome", tool_calls.clone());
    registry.register(
        "tool_call_duration_seconds",
        "Time to serve a tool call, by tool",
        tool_seconds.clone(),
    );
    registry.register(
        "dependency_calls",
        "Calls made through dependency proxies, by capability and outcome",
        dependency_calls.clone(),
    );
    registry.register(
        "dependency_call_duration_seconds",
        "Time of a dependency call (failover included), by capability",
        dependency_seconds.clone(),
    );
    switchboard_telemetry::register_metrics(&mut registry);
    AgentMetrics { registry, tool_calls, tool_seconds, dependency_calls, dependency_seconds }
});

impl AgentMetrics {
    /// Records one served tool call.
    pub fn tool_call(&self, tool: &str, outcome: &'static str, elapsed: Duration) {
        self.tool_calls.get_or_create(&ToolLabels { tool: tool.to_owned(), outcome }).inc();
        self.tool_seconds
            .get_or_create(&ToolLabel { tool: tool.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one dependency call.
    pub fn dependency_call(&self, capability: &str, outcome: &'static str, elapsed: Duration) {
        let labels = DependencyLabels { capability: capability.to_owned(), outcome };
        self.dependency_calls.get_or_create(&labels).inc();
        self.dependency_seconds
            .get_or_create(&CapabilityLabel { capability: capability.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        switchboard_telemetry::render_metrics(&self.registry)
    }
}
