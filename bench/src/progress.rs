//! A plain progress indicator on stderr: one line per second while a phase
//! runs (`[heartbeat] saturate, 1000 agents: 3/10 s, 123456 acks, 41.2k/s`),
//! so a long run shows it is alive without any terminal trickery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::report::format_rate;

/// Prints progress lines unless quiet.
#[derive(Debug, Clone)]
pub struct Progress {
    scenario: String,
    quiet: bool,
}

/// A phase being shown; stops printing when dropped.
pub struct PhaseProgress {
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Progress of `scenario`; `quiet` prints nothing.
    pub fn new(scenario: &str, quiet: bool) -> Self {
        Self { scenario: scenario.to_owned(), quiet }
    }

    /// Prints one line now.
    pub fn say(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("[{}] {}", self.scenario, message.as_ref());
        }
    }

    /// Shows `counter` (named `unit`) once a second until the guard drops;
    /// `total` is the phase's planned length, when it has one.
    pub fn phase(
        &self,
        label: &str,
        unit: &str,
        total: Option<Duration>,
        counter: Arc<AtomicU64>,
    ) -> PhaseProgress {
        if self.quiet {
            return PhaseProgress { ticker: None };
        }
        let prefix = format!("[{}] {label}", self.scenario);
        let unit = unit.to_owned();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut last = (started, counter.load(Ordering::Relaxed));
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let now = Instant::now();
                let count = counter.load(Ordering::Relaxed);
                let rate = (count - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                last = (now, count);
                let elapsed = started.elapsed().as_secs();
                let of = total.map_or_else(String::new, |t| format!("/{}", t.as_secs()));
                eprintln!("{prefix}: {elapsed}{of} s, {count} {unit}, {}/s", format_rate(rate));
            }
        });
        PhaseProgress { ticker: Some(ticker) }
    }
}

impl Drop for PhaseProgress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}
