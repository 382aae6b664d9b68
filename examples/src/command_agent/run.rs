//! Running one allowed program: no shell, a cleared environment, a
//! confined working directory, a timeout and capped output.
//!
//! The program starts in its own process group so that on a timeout (or
//! when the call is abandoned) the whole group is killed, children it
//! forked included. Output beyond the cap is read and thrown away rather
//! than left in the pipe, so a chatty program finishes instead of blocking;
//! one that never stops writing runs until the timeout.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Result, ToolError};

/// How a program ran.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunOutput {
    /// The program that ran (its absolute path).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The exit code, when it exited (not killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Whether it was killed for running past the timeout.
    pub timed_out: bool,
    /// Standard output (invalid UTF-8 replaced), at most the cap.
    pub stdout: String,
    /// Standard error (invalid UTF-8 replaced), at most the cap.
    pub stderr: String,
    /// Bytes the program wrote to standard output in all.
    pub stdout_bytes: u64,
    /// Bytes the program wrote to standard error in all.
    pub stderr_bytes: u64,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
}

/// The limits every run gets.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Longest run.
    pub timeout: Duration,
    /// Most bytes kept of each of stdout and stderr.
    pub max_output_bytes: usize,
    /// The whole environment a program sees.
    pub env: Vec<(OsString, OsString)>,
}

/// At most `cap` bytes of a stream, and how many it carried.
struct Capture {
    kept: Vec<u8>,
    total: u64,
    cap: usize,
}

/// Kills a process group when dropped, unless the program finished.
struct GroupGuard {
    group: Option<Pid>,
}

// === impl Runner ===

impl Runner {
    /// Runs `program` with `args` in `work_dir`.
    pub async fn run(&self, program: &Path, args: &[String], work_dir: &Path) -> Result<RunOutput> {
        let shown = program.display().to_string();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ToolError::Spawn { program: shown.clone(), source })?;
        let mut guard = GroupGuard {
            group: child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw),
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(ToolError::Spawn {
                program: shown,
                source: std::io::Error::other("no pipes"),
            });
        };
        let mut out = Capture::new(self.max_output_bytes);
        let mut err = Capture::new(self.max_output_bytes);
        let finished = tokio::time::timeout(self.timeout, async {
            let (_, _, status) = tokio::join!(out.drain(stdout), err.drain(stderr), child.wait());
            status
        })
        .await;
        let timed_out = finished.is_err();
        let status = match finished {
            Ok(status) => {
                guard.group = None;
                status.map_err(|source| ToolError::Spawn { program: shown.clone(), source })?
            }
            Err(_) => {
                drop(guard);
                // Reap it; SIGKILL cannot be ignored, so this returns.
                child
                    .wait()
                    .await
                    .map_err(|source| ToolError::Spawn { program: shown.clone(), source })?
            }
        };
        Ok(RunOutput {
            program: shown,
            args: args.to_vec(),
            exit_code: status.code(),
            signal: status.signal(),
            timed_out,
            truncated: out.truncated() || err.truncated(),
            stdout_bytes: out.total,
            stderr_bytes: err.total,
            stdout: String::from_utf8_lossy(&out.kept).into_owned(),
            stderr: String::from_utf8_lossy(&err.kept).into_owned(),
        })
    }
}

// === impl Capture ===

impl Capture {
    fn new(cap: usize) -> Self {
        Self { kept: Vec::new(), total: 0, cap }
    }

    /// Reads `pipe` to its end, keeping the first `cap` bytes. Whatever was
    /// read stays in `self` if the future is dropped (on a timeout).
    async fn drain(&mut self, mut pipe: impl AsyncRead + Unpin) {
        let mut buffer = [0u8; 8192];
        loop {
            let n = match pipe.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let room = self.cap.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&buffer[..n.min(room)]);
            self.total += n as u64;
        }
    }

    fn truncated(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}

// === impl GroupGuard ===

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            // ESRCH: the group is already gone.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}
