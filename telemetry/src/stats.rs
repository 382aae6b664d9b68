//! The exporter's own health, counted so operators (and tests) can see that
//! a dead collector costs spans, never requests.
//!
//! The counters are process-wide (one exporter per process) and registered
//! into each component's Prometheus registry by [`register_metrics`], so they
//! appear on its `/metrics` as `<prefix>_otel_*`.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The process-wide export counters.
#[derive(Debug, Default)]
pub(crate) struct ExportStats {
    /// Spans handed to the exporter and acknowledged by the collector.
    pub(crate) exported: Counter,
    /// Spans dropped because the export queue was full.
    pub(crate) dropped: Counter,
    /// Export attempts (batches) that failed or timed out.
    pub(crate) failures: Counter,
    /// Spans waiting for export or being exported now.
    pub(crate) queued: Gauge,
}

pub(crate) static STATS: LazyLock<ExportStats> = LazyLock::new(ExportStats::default);

/// A snapshot of the export counters of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportCounts {
    /// Spans the collector acknowledged.
    pub exported: u64,
    /// Spans dropped because the queue was full.
    pub dropped: u64,
    /// Failed or timed-out export attempts.
    pub failures: u64,
    /// Spans queued or in an export right now.
    pub queued: u64,
}

/// The export counters now.
pub fn export_counts() -> ExportCounts {
    ExportCounts {
        exported: STATS.exported.get(),
        dropped: STATS.dropped.get(),
        failures: STATS.failures.get(),
        queued: u64::try_from(STATS.queued.get()).unwrap_or(0),
    }
}

/// Registers the export counters in `registry` under `otel_*`:
/// `otel_spans_exported_total`, `otel_spans_dropped_total`,
/// `otel_export_failures_total` and `otel_span_queue_size` (after the
/// registry's own prefix, e.g. `switchboard_gateway_otel_spans_dropped_total`).
pub fn register_metrics(registry: &mut Registry) {
    let stats = &*STATS;
    registry.register(
        "otel_spans_exported",
        "Spans acknowledged by the OTLP collector",
        stats.exported.clone(),
    );
    registry.register(
        "otel_spans_dropped",
        "Spans dropped because the export queue was full",
        stats.dropped.clone(),
    );
    registry.register(
        "otel_export_failures",
        "Span export attempts that failed or timed out",
        stats.failures.clone(),
    );
    registry.register(
        "otel_span_queue_size",
        "Spans waiting for export or being exported",
        stats.queued.clone(),
    );
}
