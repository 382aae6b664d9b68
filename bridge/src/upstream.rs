//! One session with the bridged server: a stdio program the bridge spawns,
//! or a remote Streamable HTTP server.
//!
//! The bridge spawns the program itself (tokio's process, rmcp's async
//! read/write transport over its stdin/stdout) rather than through rmcp's
//! child-process transport: owning the process is what lets it see the exit
//! status at once, log stderr line by line under the server's name, and stop
//! it the way the MCP stdio transport asks — close stdin, wait, SIGTERM,
//! wait, SIGKILL. The program runs in its own process group so a ctrl-c in
//! the terminal reaches the bridge, which then stops it in that order.

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::{ClientRequest, PaginatedRequestParams, ServerConfig, ServerResult, Tool};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{Peer, RoleClient, ServiceExt as _};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::config::{CommandSpec, ServerConfig as Server, Source};
use crate::relay::Relay;
use crate::{BridgeError, env};

/// Longest wait for the server's `initialize` answer (a launcher such as
/// `npx` may download the package first).
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a program may take to exit after its stdin closed, and again
/// after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A live session with the server.
pub struct Session {
    peer: Peer<RoleClient>,
    info: ServerConfig,
    cancel: rmcp::service::RunningServiceCancellationToken,
    closed: Option<oneshot::Receiver<String>>,
    child: Option<Child>,
    probe: Option<Duration>,
}

/// Opens a session with `server`. Errors are the reason, for the log.
pub async fn connect(server: &Server, relay: Relay) -> Result<Session, BridgeError> {
    let failed = |reason: String| BridgeError::Upstream { server: server.name.clone(), reason };
    let (service, child, probe): (RunningService<RoleClient, Relay>, _, _) = match &server.source {
        Source::Command(spec) => {
            let mut child = spawn(spec, &server.name)?;
            let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                return Err(failed("no stdio pipes to the program".into()));
            };
            if let Some(stderr) = child.stderr.take() {
                tokio::spawn(log_stderr(server.name.clone(), stderr));
            }
            let service = initialize(relay.serve((stdout, stdin))).await.map_err(failed)?;
            (service, Some(child), None)
        }
        Source::Url(url) => {
            let config = StreamableHttpClientTransportConfig::with_uri(url.clone());
            let transport = StreamableHttpClientTransport::from_config(config);
            let service = initialize(relay.serve(transport)).await.map_err(failed)?;
            (service, None, Some(server.probe_interval))
        }
    };
    let Some(peer_info) = service.peer_info() else {
        return Err(failed("no initialize answer".into()));
    };
    // What the bridge announces downstream: the server's own answer (the
    // protocol version is negotiated per downstream client).
    let mut info = ServerConfig::new(peer_info.capabilities.clone());
    if let Some(server_info) = &peer_info.server_info {
        info = info.with_server_info(server_info.clone());
    }
    if let Some(instructions) = &peer_info.instructions {
        info = info.with_instructions(instructions.clone());
    }
    let peer = service.peer().clone();
    let cancel = service.cancellation_token();
    let (closed_tx, closed) = oneshot::channel();
    tokio::spawn(async move {
        let reason = match service.waiting().await {
            Ok(reason) => format!("session ended ({reason:?})"),
            Err(error) => format!("session task failed: {error}"),
        };
        let _ = closed_tx.send(reason);
    });
    Ok(Session { peer, info, cancel, closed: Some(closed), child, probe })
}

async fn initialize<F, E>(serving: F) -> Result<RunningService<RoleClient, Relay>, String>
where
    F: std::future::Future<Output = Result<RunningService<RoleClient, Relay>, E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(INITIALIZE_TIMEOUT, serving).await {
        Ok(Ok(service)) => Ok(service),
        Ok(Err(error)) => Err(format!("initialize failed: {error}")),
        Err(_) => Err(format!("no initialize answer within {INITIALIZE_TIMEOUT:?}")),
    }
}

fn spawn(spec: &CommandSpec, server: &str) -> Result<Child, BridgeError> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(env::child_env(&spec.env, server)?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command.spawn().map_err(|error| BridgeError::Upstream {
        server: server.to_owned(),
        reason: format!("cannot start {:?}: {error}", spec.program),
    })
}

/// The program's stderr, line by line, in our log under its name.
async fn log_stderr(server: String, stderr: tokio::process::ChildStderr) {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "switchboard_bridge::stderr", server = %server, "{line}");
    }
}

// === impl Session ===

impl Session {
    /// The client side of the session.
    pub fn peer(&self) -> &Peer<RoleClient> {
        &self.peer
    }

    /// The server's `initialize` answer.
    pub fn info(&self) -> &ServerConfig {
        &self.info
    }

    /// Every tool the server serves now (paginated, never cached).
    pub async fn tools(&self) -> Result<Vec<Tool>, String> {
        let mut tools = Vec::new();
        let mut cursor = None;
        loop {
            let params =
                cursor.map(|cursor| PaginatedRequestParams::default().with_cursor(Some(cursor)));
            let request = rmcp::model::ListToolsRequest {
                method: Default::default(),
                params,
                extensions: Default::default(),
            };
            match self.peer.send_request(ClientRequest::ListToolsRequest(request)).await {
                Ok(ServerResult::ListToolsResult(page)) => {
                    tools.extend(page.tools);
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => return Ok(tools),
                    }
                }
                Ok(_) => return Err("tools/list answered with another kind of result".into()),
                Err(error) => return Err(format!("tools/list failed: {error}")),
            }
        }
    }

    /// Waits until the server is gone: the program exited, the session
    /// closed, or (remote servers) a probe went unanswered. Returns why.
    pub async fn ended(&mut self) -> String {
        let closed = async {
            match self.closed.as_mut() {
                Some(closed) => closed.await.unwrap_or_else(|_| "session ended".into()),
                None => std::future::pending().await,
            }
        };
        let exited = async {
            match self.child.as_mut() {
                Some(child) => match child.wait().await {
                    Ok(status) => format!("the program exited ({status})"),
                    Err(error) => format!("cannot wait for the program: {error}"),
                },
                None => std::future::pending().await,
            }
        };
        let probed = probe(&self.peer, self.probe);
        tokio::select! {
            reason = exited => reason,
            reason = closed => { self.closed = None; reason }
            reason = probed => reason,
        }
    }

    /// Ends the session; a program gets stdin closed, then SIGTERM, then
    /// SIGKILL, each after a grace period.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let Some(mut child) = self.child.take() else { return };
        if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
            return;
        }
        #[cfg(unix)]
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok()
                && tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok()
            {
                return;
            }
        }
        tracing::warn!("bridged program did not stop within {:?}; killing it", STOP_GRACE * 2);
        if let Err(error) = child.kill().await {
            tracing::warn!(%error, "cannot kill the bridged program");
        }
    }
}

/// Pings every `interval` (forever when `None`); returns when a ping fails.
async fn probe(peer: &Peer<RoleClient>, interval: Option<Duration>) -> String {
    let Some(interval) = interval else { return std::future::pending().await };
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let ping =
            rmcp::model::PingRequest { method: Default::default(), extensions: Default::default() };
        match tokio::time::timeout(interval, peer.send_request(ClientRequest::PingRequest(ping)))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return format!("probe failed: {error}"),
            Err(_) => return format!("probe unanswered within {interval:?}"),
        }
    }
}
