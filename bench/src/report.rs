//! What a scenario reports: one row per measured case, rendered as a
//! markdown table for people or as JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::phase::PhaseStats;
use crate::procfs::ProcessStats;
use crate::stats::{Latency, LatencySummary};

/// The outcome of one `switchboard-bench <scenario>` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was measured: `switchboard`, or the peer (`etcd 3.4`…).
    pub system: String,
    /// Scenario name (`heartbeat`, `register`…).
    pub scenario: String,
    /// True for a `--smoke` run (tiny sizes: figures mean nothing).
    pub smoke: bool,
    /// One row per measured case.
    pub rows: Vec<Row>,
    /// Remarks: targets, caveats, what could not be measured.
    pub notes: Vec<String>,
    /// Set when the scenario could not run here (why).
    pub skipped: Option<String>,
    /// The machine the run happened on.
    pub machine: Machine,
}

/// One measured case.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured, e.g. `heartbeat saturate, 10000 agents`.
    pub case: String,
    /// Operations completed (acks, registrations, deliveries, samples).
    pub count: u64,
    /// Length of the measured phase, in seconds.
    pub seconds: f64,
    /// `count / seconds`.
    pub throughput_per_s: f64,
    /// Latency of the operations, when measured.
    pub latency: Option<LatencySummary>,
    /// Registry memory and I/O at the end of the case, when known.
    pub registry: Option<ProcessStats>,
    /// Scenario-specific figures (`expected`, `missing`, `ratio`…).
    pub extra: BTreeMap<String, Value>,
}

/// Where the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// `release` or `debug` (of the registry binary when spawned, else of this one).
    pub build: String,
}

// === impl Report ===

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str, smoke: bool) -> Self {
        Self {
            system: "switchboard".to_owned(),
            scenario: scenario.to_owned(),
            smoke,
            rows: Vec::new(),
            notes: Vec::new(),
            skipped: None,
            machine: Machine::detect(),
        }
    }

    /// Adds a remark.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Gives every row without process figures those of `pid` now (a peer
    /// server found by its port).
    pub fn attach_process(&mut self, pid: Option<u32>) {
        let stats = pid.and_then(ProcessStats::read);
        for row in self.rows.iter_mut().filter(|r| r.registry.is_none()) {
            row.registry = stats;
        }
    }

    /// The rows as a markdown table, then the notes.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {}{} — {} cores, {}, {} build",
            self.system,
            self.scenario,
            if self.smoke { " (smoke: sizes too small to mean anything)" } else { "" },
            self.machine.cores,
            self.machine.cpu,
            self.machine.build
        );
        if let Some(reason) = &self.skipped {
            let _ = writeln!(out, "SKIPPED: {reason}");
        }
        if !self.rows.is_empty() {
            let header = ["case", "count", "per s", "p50 ms", "p99 ms", "max ms", "RSS MB", "more"];
            let mut lines: Vec<Vec<String>> =
                vec![header.iter().map(|h| (*h).to_owned()).collect()];
            for row in &self.rows {
                lines.push(row.cells());
            }
            let widths: Vec<usize> = (0..header.len())
                .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
                .collect();
            for (n, line) in lines.iter().enumerate() {
                let cells: Vec<String> =
                    line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
                if n == 0 {
                    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                    let _ = writeln!(out, "| {} |", rule.join(" | "));
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

// === impl Row ===

impl Row {
    /// A row of `count` operations over `seconds`, with their latencies.
    pub fn new(case: impl Into<String>, count: u64, seconds: f64, latency: &Latency) -> Self {
        let throughput_per_s = if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
        Self {
            case: case.into(),
            count,
            seconds,
            throughput_per_s,
            latency: latency.summary(),
            registry: None,
            extra: BTreeMap::new(),
        }
    }

    /// A row of a measured phase: its successes, window, latencies, the
    /// server's figures at its end and the cores both sides used; failures
    /// only when there were some.
    pub fn phase(case: impl Into<String>, stats: &PhaseStats) -> Self {
        let mut row = Self::new(case, stats.count(), stats.seconds, &stats.latency)
            .with_registry(stats.server_end);
        if stats.errors > 0 {
            row = row.with("errors", stats.errors);
        }
        if let Some(cores) = stats.server_cores {
            row = row.with("registry_cores", cores);
        }
        if let Some(cores) = stats.loadgen_cores {
            row = row.with("loadgen_cores", cores);
        }
        row
    }

    /// A row of one-at-a-time samples (no throughput: each waits for the last).
    pub fn samples(case: impl Into<String>, latency: &Latency) -> Self {
        Self::new(case, latency.len(), 0.0, latency)
    }

    /// Adds a scenario-specific figure.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Attaches the registry's memory and I/O figures.
    pub fn with_registry(mut self, stats: Option<ProcessStats>) -> Self {
        self.registry = stats;
        self
    }

    fn cells(&self) -> Vec<String> {
        let ms = |f: fn(&LatencySummary) -> f64| {
            self.latency.as_ref().map_or_else(|| "-".to_owned(), |l| format_ms(f(l)))
        };
        let rss = self
            .registry
            .as_ref()
            .and_then(|r| r.rss_kb)
            .map_or_else(|| "-".to_owned(), |kb| format!("{:.0}", kb as f64 / 1024.0));
        let more: Vec<String> =
            self.extra.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
        vec![
            self.case.clone(),
            self.count.to_string(),
            if self.seconds > 0.0 { format_rate(self.throughput_per_s) } else { "-".to_owned() },
            ms(|l| l.p50_ms),
            ms(|l| l.p99_ms),
            ms(|l| l.max_ms),
            rss,
            more.join(" "),
        ]
    }
}

// === impl Machine ===

impl Machine {
    /// This machine; `build` says whether this binary is optimised.
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let build = if cfg!(debug_assertions) { "debug" } else { "release" }.to_owned();
        Self { cores, cpu, build }
    }
}

/// Milliseconds with precision that suits their size.
pub fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// A rate with thousands shown as `k`.
pub fn format_rate(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.1}k", rate / 1000.0)
    } else if rate >= 100.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.2}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}
