//! The agent's own health checks: closures the author registers (disk space
//! of a directory, a database the tools need, ...), each run on its own
//! interval with a timeout.
//!
//! A failing check does not stop the agent: it keeps serving and
//! heartbeating, but its heartbeats say it is not ready (naming the failing
//! checks), and the registry makes it DEGRADED with cause "agent reports
//! unhealthy": unroutable while a healthy replica exists, a last resort
//! otherwise. The verdict goes out on the next heartbeat and at once when it
//! changes, so the mesh hears of it within one heartbeat at worst. `/readyz`
//! answers 503 meanwhile; `/healthz` and `/readyz` list every check.
//!
//! A check that has not finished its first run yet counts as passing: its
//! first run starts with the agent, and an agent should not flap to DEGRADED
//! while a slow first check is still on its way. A check that times out,
//! returns an error or panics fails, with that as its last error.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use switchboard_proto::v1::AgentHealth;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::AgentError;

#[cfg(test)]
mod tests;

/// How often a check runs unless told otherwise.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How long a run may take unless told otherwise.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One health check of an agent: a name, an async closure that returns
/// `Err` (anything `Display`) while something the agent needs is wrong, an
/// interval and a timeout.
///
/// ```
/// use std::time::Duration;
/// use switchboard_agent::{Agent, HealthCheck};
///
/// let data = std::path::PathBuf::from("/var/lib/forecasts");
/// let agent = Agent::new("weather").health_check(
///     HealthCheck::new("data-dir", move || {
///         let data = data.clone();
///         async move { tokio::fs::metadata(&data).await.map(|_| ()) }
///     })
///     .interval(Duration::from_secs(5))
///     .timeout(Duration::from_secs(1)),
/// );
/// ```
#[derive(Clone)]
pub struct HealthCheck {
    name: String,
    interval: Duration,
    timeout: Duration,
    check: CheckFn,
}

/// The verdict sent on heartbeats: the names of the failing checks (none:
/// ready).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) failing: Vec<String>,
}

/// The running checks of one agent, shared by the check tasks, the
/// heartbeat loop and the probes.
#[derive(Clone)]
pub(crate) struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    /// One entry per check, in registration order; locked only to copy or
    /// replace an entry, never across an await.
    states: Mutex<Vec<CheckState>>,
    verdict: watch::Sender<Verdict>,
}

/// What the probes show of one check.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CheckState {
    name: String,
    /// `None` until its first run finished.
    ok: Option<bool>,
    last_error: Option<String>,
    /// RFC 3339, UTC.
    last_run: Option<String>,
    interval_secs: f64,
    timeout_secs: f64,
}

// === impl HealthCheck ===

impl HealthCheck {
    /// A check named `name` (`[a-z0-9][a-z0-9_.-]{0,63}`) running `check`
    /// every [`DEFAULT_CHECK_INTERVAL`] with a [`DEFAULT_CHECK_TIMEOUT`].
    pub fn new<F, Fut, E>(name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let check: CheckFn =
            Arc::new(move || check().map(|result| result.map_err(|e| e.to_string())).boxed());
        Self {
            name: name.to_owned(),
            interval: DEFAULT_CHECK_INTERVAL,
            timeout: DEFAULT_CHECK_TIMEOUT,
            check,
        }
    }

    /// How often it runs (counted from the start of one run to the next).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long one run may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> Result<(), AgentError> {
        let bad =
            |what: &str| Err(AgentError::Config(format!("health check {:?}: {what}", self.name)));
        if !is_valid_name(&self.name) {
            return bad("bad name: want [a-z0-9][a-z0-9_.-]{0,63}");
        }
        if self.interval.is_zero() {
            return bad("interval must be above zero");
        }
        if self.timeout.is_zero() {
            return bad("timeout must be above zero");
        }
        Ok(())
    }

    /// One run: its error, a timeout or a panic fail it.
    async fn run_once(&self) -> Result<(), String> {
        let started = std::panic::catch_unwind(AssertUnwindSafe(|| (self.check)()));
        let Ok(future) = started else { return Err("check panicked".into()) };
        match tokio::time::timeout(self.timeout, AssertUnwindSafe(future).catch_unwind()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err("check panicked".into()),
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }
}

impl fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health").field("checks", &self.states()).finish()
    }
}

/// Checks every health check's settings and that no two share a name.
pub(crate) fn validate(checks: &[HealthCheck]) -> Result<(), AgentError> {
    for (i, check) in checks.iter().enumerate() {
        check.validate()?;
        if checks[..i].iter().any(|other| other.name == check.name) {
            return Err(AgentError::Config(format!(
                "health check {:?} is registered twice",
                check.name
            )));
        }
    }
    Ok(())
}

// === impl Health ===

impl Health {
    /// Starts one task per check, each stopping on `stop`.
    pub(crate) fn start(
        checks: Vec<HealthCheck>,
        stop: &CancellationToken,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let states = checks.iter().map(CheckState::pending).collect();
        let health = Self {
            inner: Arc::new(Inner {
                states: Mutex::new(states),
                verdict: watch::Sender::new(Verdict::default()),
            }),
        };
        let tasks = checks
            .into_iter()
            .enumerate()
            .map(|(index, check)| tokio::spawn(health.clone().run(index, check, stop.clone())))
            .collect();
        (health, tasks)
    }

    /// The verdict now, and each time it changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Verdict> {
        self.inner.verdict.subscribe()
    }

    /// The heartbeat field: absent for an agent without checks (as older
    /// SDKs send), else its verdict.
    pub(crate) fn heartbeat_field(&self) -> Option<AgentHealth> {
        if self.states().is_empty() {
            return None;
        }
        let verdict = self.inner.verdict.borrow().clone();
        Some(AgentHealth { ready: verdict.failing.is_empty(), failing_checks: verdict.failing })
    }

    /// Whether no check fails.
    pub(crate) fn is_ready(&self) -> bool {
        self.inner.verdict.borrow().failing.is_empty()
    }

    /// Every check as the probes show it.
    pub(crate) fn states(&self) -> Vec<CheckState> {
        self.inner.states.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn run(self, index: usize, check: HealthCheck, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(check.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let result = tokio::select! {
                () = stop.cancelled() => return,
                result = check.run_once() => result,
            };
            self.record(index, &check.name, result);
        }
    }

    fn record(&self, index: usize, name: &str, result: Result<(), String>) {
        let failing = {
            let mut states = self.inner.states.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(state) = states.get_mut(index) else { return };
            match (&result, state.ok) {
                (Err(error), Some(true) | None) => {
                    tracing::warn!(check = name, %error, "health check failing: agent not ready");
                }
                (Ok(()), Some(false)) => tracing::info!(check = name, "health check passes again"),
                _ => {}
            }
            state.ok = Some(result.is_ok());
            state.last_error = result.err();
            state.last_run = Some(prost_types::Timestamp::from(SystemTime::now()).to_string());
            states.iter().filter(|s| s.ok == Some(false)).map(|s| s.name.clone()).collect()
        };
        let verdict = Verdict { failing };
        self.inner.verdict.send_if_modified(|current| {
            let changed = *current != verdict;
            *current = verdict;
            changed
        });
    }
}

// === impl CheckState ===

impl CheckState {
    fn pending(check: &HealthCheck) -> Self {
        Self {
            name: check.name.clone(),
            ok: None,
            last_error: None,
            last_run: None,
            interval_secs: check.interval.as_secs_f64(),
            timeout_secs: check.timeout.as_secs_f64(),
        }
    }
}

/// `[a-z0-9][a-z0-9_.-]{0,63}`, the registry's rule for names.
fn is_valid_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= 64
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(b))
}
