//! Measured phases, shared by every scenario and by the peers' sides so that
//! a figure means the same thing whichever system it was measured on.
//!
//! A phase records operations into a [`Recorder`] while a [`Window`] brackets
//! it with `/proc` readings of the server and of this load generator; closing
//! the window gives its [`PhaseStats`] (count, seconds, percentiles, cores).
//! The load itself is a closed loop ([`closed_loop`]: each worker sends its
//! next request when the previous one answered), an open loop at a fixed rate
//! ([`open_loop`]), or long-lived streams that record by themselves ([`hold`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{BenchError, BenchResult};
use crate::procfs::ProcessStats;
use crate::progress::Progress;
use crate::stats::{Latency, SharedLatency};

/// Where the operations of one phase are counted and timed; shared by the
/// tasks that do them.
#[derive(Debug)]
pub struct Recorder {
    latency: SharedLatency,
    done: Arc<AtomicU64>,
    errors: AtomicU64,
    recording: AtomicBool,
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    /// Every successful operation's latency (its count is the phase's count).
    pub latency: Latency,
    /// Operations that failed.
    pub errors: u64,
    /// Length of the window.
    pub seconds: f64,
    /// Request numbers handed out by a closed loop (successes, failures and
    /// the ones in flight at the end).
    pub issued: u64,
    /// The server's figures when the window opened, when it can be seen.
    pub server_start: Option<ProcessStats>,
    /// The server's figures when the window closed.
    pub server_end: Option<ProcessStats>,
    /// Cores the server used on average over the window.
    pub server_cores: Option<f64>,
    /// Cores this load generator used on average over the window.
    pub loadgen_cores: Option<f64>,
}

/// A measured window: the `/proc` figures at its start.
#[derive(Debug)]
pub struct Window {
    started: Instant,
    server: Option<u32>,
    server_start: Option<ProcessStats>,
    loadgen_start: Option<ProcessStats>,
}

/// How a phase is shown and what it measures besides its operations.
#[derive(Debug, Clone, Copy)]
pub struct PhasePlan<'a> {
    /// Where progress lines go.
    pub progress: &'a Progress,
    /// Shown in progress lines (`saturate, 1000 agents`).
    pub label: &'a str,
    /// What an operation is called in progress lines (`acks`).
    pub unit: &'a str,
    /// How long the load runs.
    pub length: Duration,
    /// The server whose CPU and memory are read, when it runs here.
    pub server: Option<u32>,
}

// === impl Recorder ===

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency: SharedLatency::new(),
            done: Arc::new(AtomicU64::new(0)),
            errors: AtomicU64::new(0),
            recording: AtomicBool::new(true),
        }
    }
}

impl Recorder {
    /// A recorder that records.
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder that ignores everything until [`Recorder::start`]: for load
    /// that starts with a ramp that is not to be measured.
    pub fn paused() -> Self {
        let recorder = Self::default();
        recorder.recording.store(false, Ordering::Relaxed);
        recorder
    }

    /// Starts recording.
    pub fn start(&self) {
        self.recording.store(true, Ordering::Relaxed);
    }

    /// One operation succeeded after `took`; `key` spreads the recording
    /// over shards (the worker's or agent's index).
    pub fn ok(&self, key: usize, took: Duration) {
        if self.recording.load(Ordering::Relaxed) {
            self.latency.record(key, took);
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One operation failed.
    pub fn failed(&self) {
        if self.recording.load(Ordering::Relaxed) {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Successes so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The success counter, for progress lines.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }

    /// Waits (at most `timeout`) until `count` operations succeeded; returns
    /// whether they did.
    pub async fn reaches(&self, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.done() < count {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

// === impl PhaseStats ===

impl PhaseStats {
    /// Successful operations.
    pub fn count(&self) -> u64 {
        self.latency.len()
    }

    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.count() as f64 / self.seconds } else { 0.0 }
    }
}

// === impl Window ===

impl Window {
    /// Opens a window now; `server` is the pid whose CPU and memory are read.
    pub fn open(server: Option<u32>) -> Self {
        Self {
            started: Instant::now(),
            server,
            server_start: server.and_then(ProcessStats::read),
            loadgen_start: ProcessStats::read(std::process::id()),
        }
    }

    /// Closes it: what `recorder` holds and the `/proc` figures since opening.
    pub fn close(self, recorder: &Recorder) -> PhaseStats {
        let seconds = self.started.elapsed().as_secs_f64();
        let server_end = self.server.and_then(ProcessStats::read);
        let loadgen_end = ProcessStats::read(std::process::id());
        let cores = |start: &Option<ProcessStats>, end: &Option<ProcessStats>| {
            let used = end.as_ref()?.cores_since(start.as_ref()?, seconds)?;
            Some((used * 100.0).round() / 100.0)
        };
        PhaseStats {
            latency: recorder.latency.collect(),
            errors: recorder.errors.load(Ordering::Relaxed),
            seconds,
            issued: 0,
            server_cores: cores(&self.server_start, &server_end),
            loadgen_cores: cores(&self.loadgen_start, &loadgen_end),
            server_start: self.server_start,
            server_end,
        }
    }
}

/// Runs `workers` workers in a closed loop for `plan.length`: each sends a
/// request, waits for its answer, records it, and sends the next. `worker(i)`
/// builds worker `i`'s operation; the operation gets the phase-wide number of
/// the request (0, 1, 2… across workers) and returns the request as a future
/// answering "succeeded?", or `None` when it has nothing more to send. The
/// clock runs from the future's first poll to its answer, so building the
/// request is not part of its latency.
pub async fn closed_loop<W, Op, Fut>(
    plan: &PhasePlan<'_>,
    workers: usize,
    mut worker: W,
) -> PhaseStats
where
    W: FnMut(usize) -> Op,
    Op: FnMut(usize) -> Option<Fut> + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let recorder = Arc::new(Recorder::new());
    let issued = Arc::new(AtomicUsize::new(0));
    let window = Window::open(plan.server);
    let deadline = Instant::now() + plan.length;
    let tasks: Vec<_> = (0..workers)
        .map(|index| {
            let mut operation = worker(index);
            let (recorder, issued) = (recorder.clone(), issued.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let Some(request) = operation(issued.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let sent = Instant::now();
                    if request.await {
                        recorder.ok(index, sent.elapsed());
                    } else {
                        recorder.failed();
                    }
                }
            })
        })
        .collect();
    {
        let _shown =
            plan.progress.phase(plan.label, plan.unit, Some(plan.length), recorder.counter());
        for task in tasks {
            let _ = task.await;
        }
    }
    let mut stats = window.close(&recorder);
    stats.issued = issued.load(Ordering::Relaxed) as u64;
    stats
}

/// Calls `send(n)` for n = 0, 1, 2… at `rate` per second for `length` (a late
/// tick is not made up for); returns how many calls were made. Stops at the
/// first failure: an open loop that loses requests would measure nothing.
pub async fn open_loop<S, Fut>(rate: f64, length: Duration, mut send: S) -> BenchResult<u64>
where
    S: FnMut(u64) -> Fut,
    Fut: Future<Output = BenchResult<()>>,
{
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + length;
    let mut sent = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        send(sent).await?;
        sent += 1;
    }
    Ok(sent)
}

/// A phase whose load runs in other tasks (heartbeat streams) and records
/// into `recorder`: waits `warm_up` (a ramp, not measured), then starts the
/// recorder and shows its progress for `plan.length`.
pub async fn hold(plan: &PhasePlan<'_>, warm_up: Duration, recorder: &Recorder) -> PhaseStats {
    tokio::time::sleep(warm_up).await;
    recorder.start();
    let window = Window::open(plan.server);
    {
        let _shown =
            plan.progress.phase(plan.label, plan.unit, Some(plan.length), recorder.counter());
        tokio::time::sleep(plan.length).await;
    }
    window.close(recorder)
}

/// Waits (at most `timeout`) until `counter` reaches `count`, e.g. streams
/// that report themselves open.
pub async fn wait_until(
    what: &str,
    counter: &AtomicUsize,
    count: usize,
    timeout: Duration,
) -> BenchResult<()> {
    let deadline = Instant::now() + timeout;
    while counter.load(Ordering::Relaxed) < count {
        if Instant::now() > deadline {
            let reached = counter.load(Ordering::Relaxed);
            return Err(BenchError::timeout(format!("{count} {what} ({reached} did)"), timeout));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(progress: &Progress) -> PhasePlan<'_> {
        PhasePlan {
            progress,
            label: "test",
            unit: "calls",
            length: Duration::from_millis(200),
            server: None,
        }
    }

    #[tokio::test]
    async fn closed_loop_times_every_success_and_counts_failures() {
        let progress = Progress::new("test", true);
        let stats = closed_loop(&plan(&progress), 3, |_| {
            |n: usize| {
                Some(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    n.is_multiple_of(2)
                })
            }
        })
        .await;
        assert!(stats.count() > 0);
        assert!(stats.errors > 0);
        assert!(stats.issued >= stats.count() + stats.errors);
        assert!(stats.seconds >= 0.2);
        assert!(stats.loadgen_cores.is_some());
    }

    #[tokio::test]
    async fn closed_loop_worker_stops_when_it_runs_out_of_requests() {
        let progress = Progress::new("test", true);
        let stats =
            closed_loop(&plan(&progress), 2, |_| |n: usize| (n < 5).then_some(async { true }))
                .await;
        assert_eq!(stats.count(), 5);
    }

    #[tokio::test]
    async fn a_paused_recorder_ignores_the_ramp() {
        let recorder = Recorder::paused();
        recorder.ok(0, Duration::from_millis(1));
        recorder.failed();
        recorder.start();
        recorder.ok(0, Duration::from_millis(1));
        let stats = Window::open(None).close(&recorder);
        assert_eq!((stats.count(), stats.errors), (1, 0));
    }

    #[tokio::test]
    async fn open_loop_paces_and_stops_at_the_first_failure() {
        let sent = open_loop(1000.0, Duration::from_millis(50), |_| async { Ok(()) }).await;
        assert!(sent.unwrap() > 0);
        let failed = open_loop(1000.0, Duration::from_secs(10), |n| async move {
            if n == 3 { Err(BenchError::Option("stop".into())) } else { Ok(()) }
        })
        .await;
        assert!(failed.is_err());
    }
}
