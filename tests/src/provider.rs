//! An agent as a real child process (`sb-test-provider`), for tests where the
//! agent's crash matters: SIGKILL gives the registry a broken connection, not
//! a polite goodbye.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `sb-test-provider` and the id it registered under.
pub struct ProviderProcess {
    pub agent_id: String,
    child: Child,
}

impl ProviderProcess {
    /// Starts `bin` (integration tests pass `env!("CARGO_BIN_EXE_sb-test-provider")`)
    /// against `registry` and waits (at most 30 s) until it has registered.
    pub async fn spawn(
        bin: &Path,
        registry: &str,
        name: &str,
        capability: &str,
        version: &str,
        tags: &[&str],
    ) -> Self {
        let mut child = Command::new(bin)
            .args([registry, name, capability, version])
            .args(tags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sb-test-provider");
        let stdout = child.stdout.take().expect("stdout");
        let (id_tx, id_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut id_tx = Some(id_tx);
            // Keep reading until the process exits so it never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("REGISTERED ")
                    && let Some(tx) = id_tx.take()
                {
                    let _ = tx.send(id.trim().to_owned());
                }
            }
        });
        let agent_id = match tokio::time::timeout(Duration::from_secs(30), id_rx).await {
            Ok(Ok(id)) => id,
            _ => {
                let _ = child.kill();
                panic!("sb-test-provider {name} did not register within 30 s");
            }
        };
        Self { agent_id, child }
    }

    /// SIGKILL: the agent's connections die with it, no deregister.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
