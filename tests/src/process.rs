//! The real `switchboard` binary as a child process, for tests where a crash
//! (SIGKILL), a restart or the command line itself matters.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Path of the built binary: `$SWITCHBOARD_BIN`, else `target/debug/switchboard`
/// next to this workspace (tests/run builds it before the tests).
pub fn switchboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/switchboard");
    assert!(path.exists(), "{} is missing: run `cargo build --bins` first", path.display());
    path
}

/// A running `switchboard` child process (`up`, `gateway`, or a registry
/// started by [`crate::TestRegistry`]) and the addresses it announced.
pub struct SwitchboardProcess {
    pub child: Child,
    /// `LISTEN <name> <addr>` lines, by name.
    pub listeners: Vec<(String, SocketAddr)>,
    /// Where its stderr goes when the test reads it ([`Self::spawn_logged`]).
    log: Option<tempfile::NamedTempFile>,
}

impl SwitchboardProcess {
    /// Runs the binary with `args` and waits for the named listeners.
    pub fn spawn(args: &[&str], wait_for: &[&str]) -> Self {
        Self::spawn_with_env(args, &[], wait_for)
    }

    /// `switchboard up` on `data_dir`, every port chosen by the OS.
    pub fn up(data_dir: &Path) -> Self {
        let data = data_dir.to_str().expect("utf-8 path");
        let args = [
            "up",
            "--data-dir",
            data,
            "--registry-addr",
            "127.0.0.1:0",
            "--registry-admin-addr",
            "127.0.0.1:0",
            "--gateway-addr",
            "127.0.0.1:0",
        ];
        Self::spawn(&args, &["registry-grpc", "registry-admin", "gateway"])
    }

    /// Runs the binary with `args` and extra environment, and waits for the
    /// named listeners.
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)], wait_for: &[&str]) -> Self {
        Self::start(args, env, wait_for, None)
    }

    /// [`Self::spawn_with_env`] with stderr kept for [`Self::logged`]
    /// instead of passed through.
    pub fn spawn_logged(args: &[&str], env: &[(&str, &str)], wait_for: &[&str]) -> Self {
        let log = tempfile::NamedTempFile::new().expect("stderr file");
        Self::start(args, env, wait_for, Some(log))
    }

    /// What it has written to stderr so far (empty unless [`Self::spawn_logged`]).
    pub fn logged(&self) -> String {
        self.log
            .as_ref()
            .map(|log| std::fs::read_to_string(log.path()).unwrap_or_default())
            .unwrap_or_default()
    }

    fn start(
        args: &[&str],
        env: &[(&str, &str)],
        wait_for: &[&str],
        log: Option<tempfile::NamedTempFile>,
    ) -> Self {
        switchboard_tls::ensure_crypto_provider();
        let mut command = Command::new(switchboard_bin());
        command.args(args).envs(env.iter().copied());
        if let Some(log) = &log {
            command.stderr(log.reopen().expect("stderr file"));
        }
        let (child, lines_rx) = spawn_with_lines(command);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut listeners = Vec::new();
        while !wait_for.iter().all(|name| listeners.iter().any(|(n, _)| n == name)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines_rx.recv_timeout(left) else {
                let logged = log.as_ref().map(|l| std::fs::read_to_string(l.path()));
                panic!("switchboard {args:?} did not announce {wait_for:?}: {logged:?}");
            };
            let mut words = line.split_whitespace();
            if let (Some("LISTEN"), Some(name), Some(addr)) =
                (words.next(), words.next(), words.next())
            {
                listeners.push((name.to_owned(), addr.parse().expect("listen address")));
            }
        }
        Self { child, listeners, log }
    }

    /// The address announced for `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (at most 20 s) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        terminate(&mut self.child)
    }
}

/// Starts `command` with stdout piped; its lines arrive on the receiver.
/// stderr is passed through unless the command already redirects it.
pub(crate) fn spawn_with_lines(mut command: Command) -> (Child, Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines_rx)
}

/// SIGTERM, then waits (at most 20 s) for the exit status; SIGKILL and panic
/// after that.
pub(crate) fn terminate(child: &mut Child) -> ExitStatus {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for SwitchboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
