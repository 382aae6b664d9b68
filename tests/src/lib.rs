//! Harness for end-to-end tests: real registries on `127.0.0.1:0`, in
//! process or as child processes of the real `switchboard` binary, and
//! deadline-bounded polling instead of sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod agent_process;
pub mod bridge;
pub mod etcd;
pub mod mcp;
mod metrics;
mod process;
mod provider;
mod raw_stream;
mod recording_upstream;
mod registry;
mod session;

use std::future::Future;
use std::time::Duration;

pub use agent_process::{AgentProcess, workspace_bin};
pub use metrics::metric_value;
pub use process::{SwitchboardProcess, switchboard_bin};
pub use provider::ProviderProcess;
pub use raw_stream::RawHeartbeatStream;
pub use recording_upstream::{RecordingUpstream, Records};
pub use registry::{Backend, TestRegistry, TestRegistryBuilder, UnservedRegistry};
pub use session::HeartbeatSession;

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Logs of the code under test, once per test binary (`SWITCHBOARD_LOG`).
pub fn init_logging() {
    // Before any HTTP client of the test is built (reqwest and rmcp take
    // rustls' process default).
    switchboard_tls::ensure_crypto_provider();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHBOARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

mod watch_check;

pub use watch_check::{
    Checked, Started, View, WatchRecorder, check_stream, kind, list_agents, normalized,
    resume_revision,
};

mod cli;

pub use cli::{CliRun, cli, cli_command, gateway_missing};

mod echo_agent;
pub mod gateway;

pub use echo_agent::{Echo, Relay, echo, identity_provider, relay, start_echo};
pub use gateway::{InProcessGateway, McpClient};

pub mod oauth;
mod otlp_receiver;
mod telemetry_mesh;

pub use otlp_receiver::{OtlpReceiver, ReceivedSpan, span_kind};
pub use telemetry_mesh::TracedMesh;

pub mod faults;
pub mod history;
