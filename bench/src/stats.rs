//! Latency histograms (HdrHistogram, microsecond resolution) and their
//! summaries.
//!
//! Thousands of tasks record at once, so recording goes through a
//! [`SharedLatency`]: a few mutex-guarded shards, picked by the caller (its
//! agent or watcher index), merged once at the end of a phase.

use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

/// Highest latency recorded (longer ones are clamped): 10 minutes.
const MAX_MICROS: u64 = 600_000_000;
/// Shards of a [`SharedLatency`].
const SHARDS: usize = 16;

/// One latency histogram.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

/// The figures reported for one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// A histogram many tasks record into.
#[derive(Debug)]
pub struct SharedLatency {
    shards: Vec<Mutex<Latency>>,
}

// === impl Latency ===

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// An empty histogram (1 µs to 10 min, 3 significant digits).
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_histogram()));
        Self { hist }
    }

    /// Records one sample (clamped to the histogram's range).
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS).clamp(1, MAX_MICROS);
        self.hist.saturating_record(micros);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latency) {
        // Both have the same bounds, so adding cannot fail; a failure would
        // only lose samples, never invent them.
        let _ = self.hist.add(&other.hist);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The summary, or `None` without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(LatencySummary {
            count: self.hist.len(),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            max_ms: ms(self.hist.max()),
            mean_ms: self.hist.mean() / 1000.0,
        })
    }
}

/// `Histogram::new(3)` only fails for a precision above 5.
fn unreachable_histogram() -> Histogram<u64> {
    match Histogram::new(2) {
        Ok(hist) => hist,
        Err(error) => panic!("hdrhistogram rejects precision 2: {error}"),
    }
}

// === impl SharedLatency ===

impl Default for SharedLatency {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedLatency {
    /// Empty shards.
    pub fn new() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(Latency::new())).collect() }
    }

    /// Records a sample into the shard of `key` (any number: agent index…).
    pub fn record(&self, key: usize, latency: Duration) {
        self.shards[key % SHARDS].lock().record(latency);
    }

    /// All shards merged.
    pub fn collect(&self) -> Latency {
        let mut all = Latency::new();
        for shard in &self.shards {
            all.merge(&shard.lock());
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_orders_percentiles_and_counts_samples() {
        let mut latency = Latency::new();
        assert!(latency.summary().is_none());
        for micros in 1..=1000u64 {
            latency.record(Duration::from_micros(micros * 10));
        }
        let summary = latency.summary().unwrap();
        assert_eq!(summary.count, 1000);
        assert!(summary.p50_ms <= summary.p99_ms && summary.p99_ms <= summary.max_ms);
        assert!((summary.p50_ms - 5.0).abs() < 0.05, "{summary:?}");
        assert!((summary.max_ms - 10.0).abs() < 0.05, "{summary:?}");
    }

    #[test]
    fn shards_merge_into_one() {
        let shared = SharedLatency::new();
        for key in 0..100 {
            shared.record(key, Duration::from_millis(1));
        }
        assert_eq!(shared.collect().len(), 100);
    }
}
