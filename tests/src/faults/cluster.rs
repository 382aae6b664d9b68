//! The registry under test, behind a relay with a stable address, and the
//! faults that hit the registry itself: `kill -9` and restart on the same
//! data directory, SIGSTOP/SIGCONT, graceful restarts.
//!
//! This is the only file of the fault suite that starts registries, so a
//! change of the start-up harness is adapted here alone. Clients always
//! connect to the relay: a restarted registry listens on a new port, and the
//! relay sends new connections there, so clients reconnect to the same
//! address the way they would to a supervised service.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use switchboard_health::LivenessConfig;
use switchboard_registry::RegistryConfig;
use tempfile::TempDir;

use super::FaultProxy;
use crate::history::{History, OpKind, Outcome};
use crate::{TestRegistry, TestRegistryBuilder};

/// Liveness and history settings of the registry under test.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Heartbeat interval the agents are told.
    pub interval: Duration,
    /// Silence before DEGRADED.
    pub degraded_after: Duration,
    /// Silence before EXPIRED.
    pub expired_after: Duration,
    /// How long EXPIRED records stay: longer than any run, so that every
    /// agent ever written is still there to check at the end.
    pub retention: Duration,
    /// Events kept for watch replay.
    pub history_max_events: usize,
}

/// The registry under test.
pub struct Cluster {
    front: FaultProxy,
    settings: Settings,
    history: History,
    dir: Arc<TempDir>,
    /// Set for a registry in this process (watch queue sizes and timeouts
    /// that the binary does not expose); a child process otherwise.
    in_process: Option<RegistryConfig>,
    running: Option<TestRegistry>,
}

// === impl Settings ===

impl Settings {
    /// Short timings so that runs take seconds: 200 ms heartbeats, DEGRADED
    /// after 1 s, EXPIRED after 2 s, kept an hour.
    pub fn short() -> Self {
        Self {
            interval: Duration::from_millis(200),
            degraded_after: Duration::from_secs(1),
            expired_after: Duration::from_secs(2),
            retention: Duration::from_secs(3600),
            history_max_events: 10_000,
        }
    }

    /// The `switchboard registry` flags for these settings.
    fn flags(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        vec![
            "--heartbeat-interval".into(),
            ms(self.interval),
            "--degraded-after".into(),
            ms(self.degraded_after),
            "--expired-after".into(),
            ms(self.expired_after),
            "--retention".into(),
            ms(self.retention),
            "--history-max-events".into(),
            self.history_max_events.to_string(),
        ]
    }

    /// An in-process registry's configuration with these settings.
    pub fn registry_config(&self) -> RegistryConfig {
        RegistryConfig {
            liveness: LivenessConfig {
                interval: self.interval,
                degraded_after: self.degraded_after,
                expired_after: self.expired_after,
                retention: self.retention,
                ..LivenessConfig::default()
            },
            history_max_events: self.history_max_events,
            ..RegistryConfig::default()
        }
    }
}

// === impl Cluster ===

impl Cluster {
    /// A `switchboard registry` child process on a fresh data directory.
    pub async fn start(settings: Settings, history: &History, seed: u64) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        Self::launch(dir, None, settings, history, seed).await
    }

    /// A `switchboard registry` child process on `dir`.
    pub async fn start_in(
        dir: Arc<TempDir>,
        settings: Settings,
        history: &History,
        seed: u64,
    ) -> Self {
        Self::launch(dir, None, settings, history, seed).await
    }

    /// A registry in this process, with `config`.
    pub async fn start_in_process(config: RegistryConfig, history: &History, seed: u64) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp dir"));
        let settings = Settings {
            interval: config.liveness.interval,
            degraded_after: config.liveness.degraded_after,
            expired_after: config.liveness.expired_after,
            retention: config.liveness.retention,
            history_max_events: config.history_max_events,
        };
        Self::launch(dir, Some(config), settings, history, seed).await
    }

    async fn launch(
        dir: Arc<TempDir>,
        in_process: Option<RegistryConfig>,
        settings: Settings,
        history: &History,
        seed: u64,
    ) -> Self {
        let placeholder: SocketAddr = "127.0.0.1:9".parse().expect("address");
        let front = FaultProxy::start(placeholder, seed).await.expect("start the front relay");
        let history = history.clone();
        let mut cluster = Self { front, settings, history, dir, in_process, running: None };
        cluster.boot().await;
        cluster
    }

    /// Where clients connect (stable across restarts).
    pub fn addr(&self) -> String {
        self.front.addr().to_string()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether a registry is running (a process may have stopped itself).
    pub fn is_running(&mut self) -> bool {
        self.running.as_mut().is_some_and(|running| running.exited().is_none())
    }

    /// Waits (at most `timeout`) for the registry process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.running.as_mut().and_then(TestRegistry::exited) {
                self.running = None;
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9` of the registry, `down` of downtime, and a restart on the
    /// same data directory (in process: a graceful stop and a start).
    pub async fn crash_and_restart(&mut self, down: Duration) {
        let started = SystemTime::now();
        self.kill().await;
        tokio::time::sleep(down).await;
        self.boot().await;
        self.history.fault("registry", "kill", started);
    }

    /// `kill -9` of the registry process (in process: a graceful stop).
    pub async fn kill(&mut self) {
        match self.running.take() {
            Some(running) if running.pid().is_some() => {
                tokio::task::spawn_blocking(move || running.kill()).await.expect("kill");
            }
            Some(running) => {
                running.stop().await;
            }
            None => {}
        }
    }

    /// SIGTERM (or a graceful stop in process), then a restart.
    pub async fn graceful_restart(&mut self) {
        let started = SystemTime::now();
        self.stop().await;
        self.boot().await;
        self.history.fault("registry", "restart", started);
    }

    /// SIGSTOP for `frozen`, then SIGCONT. A no-op in process.
    pub async fn freeze(&mut self, frozen: Duration) {
        let Some(pid) = self.running.as_ref().and_then(TestRegistry::pid) else { return };
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid"));
        let started = SystemTime::now();
        if kill(pid, Signal::SIGSTOP).is_err() {
            return;
        }
        tokio::time::sleep(frozen).await;
        let _ = kill(pid, Signal::SIGCONT);
        self.history.fault("registry", "freeze", started);
    }

    /// Moves the data to a fresh directory on the ordinary disk (after a
    /// full one) and starts there; the old registry must have stopped. An
    /// error says why the registry would not start on that data.
    pub async fn restart_elsewhere(&mut self) -> Result<(), String> {
        self.kill().await;
        let dir = Arc::new(TempDir::new().map_err(|e| format!("temp dir: {e}"))?);
        copy_dir(self.dir.path(), dir.path()).map_err(|e| format!("copying the data: {e}"))?;
        self.dir = dir;
        // The harness panics when the registry does not come up; say so
        // instead, since that is what this restart is checking.
        let started = SystemTime::now();
        let booting = tokio::spawn(self.builder().start()).await;
        let running = booting.map_err(|error| match error.try_into_panic() {
            Ok(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "the registry did not start".into()),
            Err(error) => error.to_string(),
        })?;
        self.serving(running, started);
        Ok(())
    }

    /// Stops the registry gracefully (if one runs and has not exited).
    pub async fn stop(&mut self) {
        if let Some(mut running) = self.running.take()
            && running.exited().is_none()
        {
            running.stop().await;
        }
    }

    /// Starts a registry on the data directory and points the relay at it.
    async fn boot(&mut self) {
        let started = SystemTime::now();
        let running = self.builder().start().await;
        self.serving(running, started);
    }

    /// How to start the registry on the data directory.
    fn builder(&self) -> TestRegistryBuilder {
        let builder = TestRegistry::builder().data_dir(self.dir.clone());
        match &self.in_process {
            Some(config) => builder.config(config.clone()),
            None => {
                let flags = self.settings.flags();
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                builder.child_process(&flags)
            }
        }
    }

    /// Records a registry that serves since `started`.
    fn serving(&mut self, running: TestRegistry, started: SystemTime) {
        self.front.set_upstream(running.addr);
        self.running = Some(running);
        self.history.record("registry", OpKind::Restart, started, Outcome::Ok);
    }
}

/// Copies a directory tree (sled's files: no links, no special files).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
