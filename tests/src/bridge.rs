//! Bridged third-party MCP servers: where `tests/run` installs them, the
//! bridge run in this process, and plain MCP clients to compare what the
//! gateway serves with what the server answers directly over stdio.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt as _};
use switchboard_bridge::{BridgeConfig, BridgeError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A plain MCP client session.
pub type Client = RunningService<RoleClient, rmcp::model::ClientConfig>;

/// The npm-installed program `name` (`mcp-server-everything`), installed by
/// `tests/run` under `~/.cache/switchboard/mcp-servers`.
pub fn npm_server(name: &str) -> String {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let path = home.join(".cache/switchboard/mcp-servers/node_modules/.bin").join(name);
    assert!(path.exists(), "{} is missing: run tests/run (its setup installs it)", path.display());
    path.display().to_string()
}

/// The test venv's Python (it has `mcp-server-time`, from requirements.txt).
pub fn venv_python() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/python");
    assert!(path.exists(), "{} is missing: run tests/run (its setup makes it)", path.display());
    path.display().to_string()
}

/// A bridge running in this process.
pub struct BridgeRun {
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), BridgeError>>>,
}

impl BridgeRun {
    /// Bridges `config` into the mesh of `registry`.
    pub fn start(config: BridgeConfig, registry: &str) -> Self {
        crate::init_logging();
        let stop = CancellationToken::new();
        let task = tokio::spawn(switchboard_bridge::run(config, registry.to_owned(), stop.clone()));
        Self { stop, task: Some(task) }
    }

    /// Stops (deregisters, stops the programs) and returns how it ended.
    pub async fn stop(mut self) -> Result<(), BridgeError> {
        self.stop.cancel();
        self.task.take().expect("running").await.expect("bridge task")
    }
}

impl Drop for BridgeRun {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The client identity of the comparison clients: every capability a
/// client may offer, as the bridge offers them to the server.
fn client_info() -> rmcp::model::ClientConfig {
    let capabilities = serde_json::from_value(serde_json::json!({
        "roots": {"listChanged": true}, "sampling": {}, "elicitation": {}
    }))
    .unwrap();
    rmcp::model::ClientConfig::new(capabilities, rmcp::model::Implementation::new("tests", "1.0.0"))
}

/// An MCP client of `program` over stdio, started directly (no bridge).
pub async fn direct(program: &str, args: &[&str]) -> Client {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    // The child lives as long as the session's transport.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    client_info()
        .serve((stdout, stdin))
        .await
        .unwrap_or_else(|e| panic!("initialize {program}: {e}"))
}

/// An MCP client of the Streamable HTTP endpoint `url` (the 2025 handshake).
pub async fn http(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    client_info().serve(transport).await.unwrap_or_else(|e| panic!("initialize {url}: {e}"))
}

/// `value` as JSON, for comparing definitions field by field.
pub fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap()
}
