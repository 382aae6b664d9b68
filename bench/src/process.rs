//! Child processes of a benchmark (a registry, a gateway, a provider that
//! gets SIGKILLed): their announced lines on stdout, the tail of their
//! stderr for error messages, signals, and `/proc` figures.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::error::{BenchError, BenchResult};
use crate::procfs::ProcessStats;

/// Lines of stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// A running child; killed when dropped.
pub struct ChildProcess {
    program: String,
    child: Child,
    pid: u32,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl ChildProcess {
    /// Starts `program args…` with extra environment; stdout and stderr are
    /// read in the background.
    pub fn spawn(program: &Path, args: &[String], env: &[(&str, &str)]) -> BenchResult<Self> {
        let name = program.display().to_string();
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().map_err(|e| BenchError::Process {
            program: name.clone(),
            message: format!("cannot start: {e}"),
        })?;
        let pid = child.id().unwrap_or(0);
        let (sink, lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                // Read to the end so the child never blocks on a full pipe.
                while let Ok(Some(line)) = reader.next_line().await {
                    let _ = sink.send(line);
                }
            });
        }
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let tail = stderr.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(err).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let mut tail = tail.lock();
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        Ok(Self { program: name, child, pid, lines, stderr })
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its memory and write figures now.
    pub fn stats(&self) -> Option<ProcessStats> {
        ProcessStats::read(self.pid)
    }

    /// The last lines it wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.lock().iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Waits (at most `timeout`) for a stdout line that `matcher` accepts.
    /// Fails when the process closes stdout (exits) first.
    pub async fn wait_for_line<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut matcher: impl FnMut(&str) -> Option<T>,
    ) -> BenchResult<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if let Some(found) = matcher(&line) {
                        return Ok(found);
                    }
                }
                Ok(None) => {
                    // Give stderr's reader a moment to catch the last words.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let status = self.child.try_wait().ok().flatten();
                    return Err(self.failure(format!(
                        "exited ({}) before printing {what}",
                        status.map_or_else(|| "still running".to_owned(), |s| s.to_string())
                    )));
                }
                Err(_) => {
                    return Err(self.failure(format!("did not print {what} within {timeout:?}")));
                }
            }
        }
    }

    /// Waits for `LISTEN <name> <addr>` and returns the address.
    pub async fn wait_listen(&mut self, name: &str, timeout: Duration) -> BenchResult<SocketAddr> {
        let what = format!("LISTEN {name}");
        self.wait_for_line(&what, timeout, |line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("LISTEN"), Some(n), Some(addr)) if n == name => addr.parse().ok(),
                _ => None,
            }
        })
        .await
    }

    /// SIGTERM, then waits for the exit (SIGKILL after `timeout`); returns
    /// how long the process took to exit.
    pub async fn terminate(&mut self, timeout: Duration) -> BenchResult<Duration> {
        let started = Instant::now();
        self.signal(Signal::SIGTERM)?;
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(_) => Ok(started.elapsed()),
            Err(_) => {
                self.kill().await;
                Err(self.failure(format!("did not exit within {timeout:?} of SIGTERM")))
            }
        }
    }

    /// SIGKILL and reap.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) -> BenchResult<()> {
        let pid = i32::try_from(self.pid)
            .map_err(|_| BenchError::Option(format!("pid {} out of range", self.pid)))?;
        kill(Pid::from_raw(pid), signal).map_err(|e| BenchError::Process {
            program: self.program.clone(),
            message: format!("cannot send {signal}: {e}"),
        })
    }

    fn failure(&self, message: String) -> BenchError {
        let tail = self.stderr_tail();
        let message = if tail.is_empty() {
            message
        } else {
            format!("{message}; its stderr ends with:\n{tail}")
        };
        BenchError::Process { program: self.program.clone(), message }
    }
}
