//! Example agents (`date-service`, `hello`) as child processes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Path of a binary built in this workspace (`target/debug/<name>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let switchboard = crate::switchboard_bin();
    let path = switchboard.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A running agent process and what it announced.
pub struct AgentProcess {
    pub child: Child,
    /// Where its MCP endpoint listens.
    pub mcp_addr: SocketAddr,
    /// Its registered agent id.
    pub agent_id: String,
}

impl AgentProcess {
    /// Starts `bin` registering at `registry`, and waits until it registered.
    pub fn spawn(bin: &str, registry: &str) -> Self {
        Self::spawn_with(bin, &[("SWITCHBOARD_REGISTRY", registry)])
    }

    /// Starts `bin` with extra environment and waits until it registered.
    pub fn spawn_with(bin: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(workspace_bin(bin));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        command.env("RUST_LOG", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn agent");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut mcp_addr, mut agent_id) = (None, None);
        while mcp_addr.is_none() || agent_id.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line =
                lines_rx.recv_timeout(left).unwrap_or_else(|_| panic!("{bin} did not register"));
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["LISTEN", "agent-mcp", addr] => mcp_addr = addr.parse().ok(),
                ["REGISTERED", id] => agent_id = Some((*id).to_owned()),
                _ => {}
            }
        }
        Self { child, mcp_addr: mcp_addr.expect("addr"), agent_id: agent_id.expect("id") }
    }

    /// The MCP endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}/mcp", self.mcp_addr)
    }

    /// SIGKILL, like a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status (20 s at most).
    pub fn terminate(mut self) -> ExitStatus {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        kill(pid, Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "agent did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
