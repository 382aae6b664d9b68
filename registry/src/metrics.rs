//! Prometheus metrics of the registry, every name prefixed `switchboard_registry_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::Snapshot;

/// Label of the per-status agent gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// `healthy`, `degraded` or `expired`.
    pub status: &'static str,
}

/// Every metric the registry exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Agents by status.
    pub agents: Family<StatusLabel, Gauge>,
    /// Current store revision.
    pub revision: Gauge,
    /// Successful registrations.
    pub registrations: Counter,
    /// Heartbeats received (stream and unary).
    pub heartbeats: Counter,
    /// Open heartbeat streams.
    pub streams: Gauge,
    /// Liveness status transitions.
    pub transitions: Counter,
    /// Wiring updates pushed on heartbeat streams.
    pub pushes: Counter,
    /// 1 while the mass-expiry guard holds expirations back.
    pub guard_active: Gauge,
    /// 1 while this replica is the sweeper: it expires agents no replica
    /// owns (always 1 for a registry alone on its store).
    pub sweeper: Gauge,
    /// Durable commit latency (one per group commit).
    pub commit_seconds: Histogram,
    /// Open watch streams.
    pub watchers: Gauge,
    /// Watch messages sent.
    pub watch_events: Counter,
    /// Watches answered with RESYNC_REQUIRED.
    pub watch_resyncs: Counter,
    /// Watchers ended because they fell behind.
    pub watch_slow_disconnects: Counter,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard_registry");
        let agents = Family::<StatusLabel, Gauge>::default();
        let revision = Gauge::default();
        let registrations = Counter::default();
        let heartbeats = Counter::default();
        let streams = Gauge::default();
        let transitions = Counter::default();
        let pushes = Counter::default();
        let guard_active = Gauge::default();
        let sweeper = Gauge::default();
        sweeper.set(1);
        let commit_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let watchers = Gauge::default();
        let watch_events = Counter::default();
        let watch_resyncs = Counter::default();
        let watch_slow_disconnects = Counter::default();
        registry.register("agents", "Agents by liveness status", agents.clone());
        registry.register("revision", "Current store revision", revision.clone());
        registry.register("registrations", "Successful registrations", registrations.clone());
        registry.register("heartbeats", "Heartbeats received", heartbeats.clone());
        registry.register("heartbeat_streams", "Open heartbeat streams", streams.clone());
        registry.register("status_transitions", "Liveness status transitions", transitions.clone());
        registry.register("wiring_pushes", "Wiring updates pushed to agents", pushes.clone());
        registry.register(
            "expiry_guard_active",
            "1 while the mass-expiry guard holds expirations back",
            guard_active.clone(),
        );
        registry.register(
            "sweeper",
            "1 while this replica expires the agents no replica owns",
            sweeper.clone(),
        );
        registry.register(
            "commit_duration_seconds",
            "Durable group-commit latency",
            commit_seconds.clone(),
        );
        registry.register("watchers", "Open watch streams", watchers.clone());
        registry.register("watch_events_sent", "Watch messages sent", watch_events.clone());
        registry.register(
            "watch_resyncs",
            "Watches answered with RESYNC_REQUIRED",
            watch_resyncs.clone(),
        );
        registry.register(
            "watch_slow_disconnects",
            "Watchers ended because they fell behind",
            watch_slow_disconnects.clone(),
        );
        switchboard_telemetry::register_metrics(&mut registry);
        Self {
            registry,
            agents,
            revision,
            registrations,
            heartbeats,
            streams,
            transitions,
            pushes,
            guard_active,
            sweeper,
            commit_seconds,
            watchers,
            watch_events,
            watch_resyncs,
            watch_slow_disconnects,
        }
    }

    /// Updates the gauges derived from a snapshot.
    pub fn observe_snapshot(&self, snapshot: &Snapshot) {
        let (healthy, degraded, expired) = snapshot.status_counts();
        for (status, count) in [("healthy", healthy), ("degraded", degraded), ("expired", expired)]
        {
            self.agents.get_or_create(&StatusLabel { status }).set(count as i64);
        }
        self.revision.set(i64::try_from(snapshot.revision).unwrap_or(i64::MAX));
    }

    /// Prometheus text exposition of every metric (see `Registry::render_metrics`).
    pub(crate) fn render(&self) -> String {
        switchboard_telemetry::render_metrics(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
