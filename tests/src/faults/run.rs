//! One seeded run of a scenario, and what it amounted to.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::history::{Counts, History, Rule, Rules, Violation, findings};

/// Environment variable that fixes the seed of a run.
pub const SEED_VAR: &str = "SWITCHBOARD_FAULT_SEED";
/// The seed when none is given: runs in `tests/run` are reproducible.
pub const DEFAULT_SEED: u64 = 13;

/// The seed of this process's runs: `$SWITCHBOARD_FAULT_SEED`, else 13.
pub fn seed() -> u64 {
    std::env::var(SEED_VAR).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(DEFAULT_SEED)
}

/// A scenario being run: its seed, history and fault counts.
pub struct Run {
    /// The scenario's name.
    pub name: &'static str,
    /// The seed everything random derives from.
    pub seed: u64,
    /// The recorder.
    pub history: History,
    /// The schedule's random source.
    pub rng: StdRng,
    faults: BTreeMap<String, usize>,
    notes: Vec<String>,
    started: Instant,
}

/// What a run amounted to.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenario.
    pub name: &'static str,
    /// Its seed.
    pub seed: u64,
    /// Operations by category.
    pub ops: Counts,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, usize>,
    /// Broken guarantees (none expected).
    pub violations: Vec<Violation>,
    /// Checks made per rule.
    pub checked: BTreeMap<Rule, usize>,
    /// Things worth knowing that are not violations.
    pub notes: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

// === impl Run ===

impl Run {
    /// A run of `name` with `seed`.
    pub fn new(name: &'static str, seed: u64) -> Self {
        crate::init_logging();
        Self {
            name,
            seed,
            history: History::new(),
            rng: StdRng::seed_from_u64(seed),
            faults: BTreeMap::new(),
            notes: Vec::new(),
            started: Instant::now(),
        }
    }

    /// A seed for one part of the run (an agent, a link, a writer).
    pub fn sub_seed(&mut self) -> u64 {
        self.rng.random()
    }

    /// Counts one injected fault.
    pub fn injected(&mut self, what: &str) {
        *self.faults.entry(what.to_owned()).or_default() += 1;
    }

    /// Adds a note to the report.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// A random duration in `[low, high]`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        self.rng.random_range(low..=high)
    }

    /// Checks the history and reports.
    pub fn finish(self, rules: &Rules) -> Report {
        let ops = self.history.ops();
        let findings = findings(&ops, rules);
        Report {
            name: self.name,
            seed: self.seed,
            ops: self.history.counts(),
            faults: self.faults,
            violations: findings.violations,
            checked: findings.checked,
            notes: self.notes,
            elapsed: self.started.elapsed(),
        }
    }
}

// === impl Report ===

impl Report {
    /// Operations of a category.
    pub fn count(&self, category: &str) -> usize {
        self.ops.get(category).copied().unwrap_or(0)
    }

    /// Panics with every violation and the seed to reproduce them, if any.
    pub fn assert_clean(&self) {
        eprintln!("{}", self.summary());
        if self.violations.is_empty() {
            return;
        }
        let mut text = format!(
            "{}: {} violations (seed {}; rerun with {SEED_VAR}={}):\n",
            self.name,
            self.violations.len(),
            self.seed,
            self.seed
        );
        for violation in self.violations.iter().take(50) {
            let _ = writeln!(text, "  {violation}");
        }
        panic!("{text}");
    }

    /// A few lines: operations, faults, notes, violations.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} (seed {}, {:.1} s): {} violations\n",
            self.name,
            self.seed,
            self.elapsed.as_secs_f64(),
            self.violations.len()
        );
        let join = |map: &mut dyn Iterator<Item = (&str, usize)>| {
            map.map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        let _ = writeln!(text, "  ops: {}", join(&mut self.ops.iter().map(|(k, v)| (*k, *v))));
        let _ = writeln!(
            text,
            "  faults: {}",
            join(&mut self.faults.iter().map(|(k, v)| (k.as_str(), *v)))
        );
        let checked = self.checked.iter().map(|(rule, n)| format!("{rule:?} {n}"));
        let _ = writeln!(text, "  checked: {}", checked.collect::<Vec<_>>().join(", "));
        for note in &self.notes {
            let _ = writeln!(text, "  note: {note}");
        }
        text
    }
}

/// One scenario's runs, summed.
#[derive(Default)]
struct Row {
    runs: usize,
    ops: usize,
    writes: usize,
    faults: usize,
    checks: usize,
    violations: usize,
    elapsed: Duration,
}

/// The soak's table: one row per scenario, summed over its runs.
pub fn table(reports: &[Report]) -> String {
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for report in reports {
        let row = rows.entry(report.name).or_default();
        row.runs += 1;
        row.ops += report.ops.values().sum::<usize>();
        row.writes += report.count("register ok") + report.count("deregister ok");
        row.faults += report.faults.values().sum::<usize>();
        row.checks += report.checked.values().sum::<usize>();
        row.violations += report.violations.len();
        row.elapsed += report.elapsed;
    }
    let mut text = format!(
        "{:<16} {:>5} {:>10} {:>12} {:>8} {:>10} {:>10} {:>8}\n",
        "scenario",
        "runs",
        "operations",
        "acked writes",
        "faults",
        "checks",
        "violations",
        "seconds"
    );
    for (name, row) in rows {
        let _ = writeln!(
            text,
            "{name:<16} {:>5} {:>10} {:>12} {:>8} {:>10} {:>10} {:>8.0}",
            row.runs,
            row.ops,
            row.writes,
            row.faults,
            row.checks,
            row.violations,
            row.elapsed.as_secs_f64()
        );
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for report in reports {
        for (kind, n) in &report.faults {
            *kinds.entry(kind).or_default() += n;
        }
    }
    let _ = writeln!(text, "\nfaults injected:");
    for (kind, n) in kinds {
        let _ = writeln!(text, "  {kind:<28} {n:>8}");
    }
    text
}
