//! Example agents (`date-service`, `hello`) as child processes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

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
        Self::spawn_exe(&workspace_bin(bin), &[], env)
    }

    /// Starts the SDK agent executable at `path` (integration tests pass
    /// `env!("CARGO_BIN_EXE_<name>")`) with `args` and extra environment, and
    /// waits until it registered.
    pub fn spawn_exe(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        switchboard_tls::ensure_crypto_provider();
        let bin = path.display().to_string();
        let mut command = Command::new(path);
        command.args(args).env("RUST_LOG", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        let (child, lines_rx) = crate::process::spawn_with_lines(command);
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
        crate::process::terminate(&mut self.child)
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
