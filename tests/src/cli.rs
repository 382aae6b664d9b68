//! The `switchboard` operator CLI as a child process: run a command, get its
//! exit code and output; probe whether the gateway is built.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

/// What one CLI run left behind.
#[derive(Debug)]
pub struct CliRun {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// stdout parsed as one JSON document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// stdout parsed as one JSON object per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line ({e}): {line}"))
            })
            .collect()
    }
}

/// A `switchboard` command, without any `SWITCHBOARD_*` setting inherited
/// from the test's environment.
pub fn cli_command(args: &[&str]) -> tokio::process::Command {
    switchboard_tls::ensure_crypto_provider();
    let mut command = tokio::process::Command::new(crate::switchboard_bin());
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SWITCHBOARD_") && key != "SWITCHBOARD_BIN" {
            command.env_remove(key);
        }
    }
    command.kill_on_drop(true);
    command
}

/// Runs `switchboard ARGS` to completion (30 s at most).
pub async fn cli(args: &[&str]) -> CliRun {
    let child = cli_command(args).spawn().expect("spawn switchboard");
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("switchboard {args:?} did not finish within 30 s"))
        .expect("wait for switchboard");
    CliRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Why the gateway cannot be tested yet, or `None` when it is built: only
/// when the binary itself says it is "not built yet" (in `gateway --help`,
/// or when `gateway` refuses to start).
pub async fn gateway_missing() -> Option<String> {
    let help = cli(&["gateway", "--help"]).await;
    if format!("{}{}", help.stdout, help.stderr).contains("not built yet") {
        return Some("`switchboard gateway --help` says the gateway is not built yet".into());
    }
    let mut probe =
        cli_command(&["gateway", "--gateway-addr", "127.0.0.1:0", "--registry", "127.0.0.1:1"])
            .spawn()
            .expect("spawn switchboard gateway");
    let stdout = probe.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let listening = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("LISTEN gateway ") {
                return true;
            }
        }
        false
    })
    .await;
    if listening != Ok(false) {
        // It announced its port, or is still running: it is built.
        let _ = probe.kill().await;
        return None;
    }
    let output = probe.wait_with_output().await.expect("wait for switchboard gateway");
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.contains("not built yet").then(|| format!("switchboard gateway: {}", stderr.trim()))
}
