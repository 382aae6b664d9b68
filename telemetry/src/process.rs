//! Process metrics under Prometheus' standard names, on every `/metrics` of
//! Switchboard (registry, gateway, every SDK agent):
//! `process_cpu_seconds_total`, `process_resident_memory_bytes` and
//! `process_open_fds`.
//!
//! They are read from `/proc/self` at each scrape, so they cost nothing
//! between scrapes. Their names carry no `switchboard_` prefix: dashboards
//! and alerts written for any Prometheus client library work unchanged, so
//! they are encoded from a registry of their own, after the component's
//! prefixed one. Where `/proc` is missing (not Linux) they are left out
//! rather than reported as zero.

use std::sync::LazyLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

#[cfg(test)]
mod tests;

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat`: the
/// kernel reports them in `USER_HZ`, which is 100 on every Linux
/// architecture (what Prometheus' own `procfs` assumes too).
const USER_HZ: f64 = 100.0;

/// The unprefixed registry holding the process collector.
static PROCESS: LazyLock<Registry> = LazyLock::new(|| {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProcessCollector));
    registry.register(
        "switchboard_insecure_listener",
        "1 for each listener on a non-loopback address without TLS and auth \
         (started with --insecure-allow-plaintext)",
        crate::exposure::INSECURE_LISTENERS.clone(),
    );
    registry
});

/// Reads `/proc/self` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

/// One reading of the process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// User plus system CPU time, in seconds.
    pub(crate) cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub(crate) resident_bytes: Option<i64>,
    /// Open file descriptors.
    pub(crate) open_fds: Option<i64>,
}

/// Prometheus text exposition of `registry` followed by the process metrics:
/// what every Switchboard `/metrics` serves.
///
/// ```
/// let registry = prometheus_client::registry::Registry::with_prefix("switchboard_example");
/// let text = switchboard_telemetry::render_metrics(&registry);
/// assert!(text.ends_with("# EOF\n"));
/// # #[cfg(target_os = "linux")]
/// assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
/// ```
pub fn render_metrics(registry: &Registry) -> String {
    use prometheus_client::encoding::text;
    let mut out = String::new();
    let encoded = text::encode_registry(&mut out, registry)
        .and_then(|()| text::encode_registry(&mut out, &PROCESS))
        .and_then(|()| text::encode_eof(&mut out));
    if let Err(error) = encoded {
        tracing::error!(%error, "metrics encoding failed");
    }
    out
}

// === impl ProcessCollector ===

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let sample = Sample::read();
        if let Some(seconds) = sample.cpu_seconds {
            let help = "Total user and system CPU time spent in seconds";
            encode(&mut encoder, "process_cpu_seconds", help, &ConstCounter::new(seconds))?;
        }
        if let Some(bytes) = sample.resident_bytes {
            let help = "Resident memory size in bytes";
            encode(&mut encoder, "process_resident_memory_bytes", help, &ConstGauge::new(bytes))?;
        }
        if let Some(fds) = sample.open_fds {
            let help = "Number of open file descriptors";
            encode(&mut encoder, "process_open_fds", help, &ConstGauge::new(fds))?;
        }
        Ok(())
    }
}

/// One metric with its descriptor.
fn encode(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

// === impl Sample ===

impl Sample {
    /// This process now.
    pub(crate) fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let status = std::fs::read_to_string("/proc/self/status").ok();
        // The listing holds a descriptor of its own while it runs.
        let fds = std::fs::read_dir("/proc/self/fd").ok().map(|dir| dir.count() as i64 - 1);
        Self {
            cpu_seconds: stat.as_deref().and_then(cpu_seconds),
            resident_bytes: status.as_deref().and_then(resident_bytes),
            open_fds: fds.map(|n| n.max(0)),
        }
    }
}

/// User plus system time from `/proc/<pid>/stat` (fields 14 and 15). The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
pub(crate) fn cpu_seconds(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes.
pub(crate) fn resident_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: i64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}
