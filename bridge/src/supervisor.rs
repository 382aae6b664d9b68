//! Keeps one bridged server in the mesh, like a service manager.
//!
//! Each run: open a session with the server, serve it on the bridge's MCP
//! endpoint and register everything it offers (one call, full definitions,
//! mesh metadata from the config). When the server goes away the agent is
//! deregistered at once — deregistration is what the registry tells
//! dependents and the gateway about immediately, where a silent agent would
//! only degrade and expire — and the server is started again after an
//! exponential backoff with full jitter. More than `max_restarts` restarts
//! of a program within `window` and the bridge gives up with an error (the
//! process exits non-zero); a remote server is retried until it answers.
//! When the server says its tools, resources or prompts changed, the agent
//! registers again with the new lists: a new registration of the
//! same endpoint, made before the previous one deregisters, so the gateway
//! sees the two as replicas for a moment and never an empty list, and the
//! endpoint (with every client session) stays.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use switchboard_agent::{Agent, AgentError, Dependency, RunningAgent};
use switchboard_client::Backoff;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clients::Pool;
use crate::config::{ServerConfig, SessionMode, Source, ToolMeta};
use crate::endpoint::Endpoint;
use crate::forward::Forward;
use crate::relay::{Downstream, Relay};
use crate::upstream::{self, Session};
use crate::{BridgeError, Result};

/// How long in-flight calls may take when a registration is replaced.
const DRAIN: Duration = Duration::from_secs(2);
/// How long a burst of list changes may last before registering again.
const SETTLE: Duration = Duration::from_millis(100);

/// What ended a run.
enum Ended {
    /// The bridge is stopping.
    Stopped,
    /// The server went away (or never came up): why.
    Failed(String),
}

/// Supervises `server`, registering with `registry`, until `stop`.
pub async fn supervise(
    server: ServerConfig,
    registry: String,
    stop: CancellationToken,
) -> Result<()> {
    let policy = server.restart;
    let mut backoff = Backoff::new(policy.backoff_base, policy.backoff_max);
    let mut restarts: VecDeque<Instant> = VecDeque::new();
    loop {
        let started = Instant::now();
        let reason = match run_once(&server, &registry, &stop).await? {
            Ended::Stopped => return Ok(()),
            Ended::Failed(reason) => reason,
        };
        let now = Instant::now();
        if now.duration_since(started) >= policy.window {
            backoff.reset();
        }
        restarts.retain(|at| now.duration_since(*at) < policy.window);
        // A remote server being down is not a crash loop of ours: it is
        // probed again (with backoff) until it answers.
        let supervised = matches!(server.source, Source::Command(_));
        if supervised && restarts.len() >= policy.max_restarts {
            tracing::error!(
                server = %server.name,
                restarts = restarts.len(),
                window = ?policy.window,
                %reason,
                "bridged server keeps failing; giving up"
            );
            return Err(BridgeError::GaveUp {
                server: server.name.clone(),
                restarts: restarts.len(),
                window: policy.window,
                last: reason,
            });
        }
        restarts.push_back(now);
        let delay = backoff.next_delay();
        tracing::warn!(server = %server.name, %reason, ?delay, "bridged server is down; restarting");
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One life of the server. Errors are final (the configuration is wrong);
/// everything else is a reason to restart.
async fn run_once(
    server: &ServerConfig,
    registry: &str,
    stop: &CancellationToken,
) -> Result<Ended> {
    let (changes, mut changed) = mpsc::channel(1);
    let downstream = Arc::new(Downstream::default());
    let relay = Relay::new(&server.name, downstream.clone(), changes);
    let connecting = tokio::select! {
        () = stop.cancelled() => return Ok(Ended::Stopped),
        connecting = upstream::connect(server, relay) => connecting,
    };
    let mut session = match connecting {
        Ok(session) => session,
        Err(error @ BridgeError::Config(_)) => return Err(error),
        Err(error) => return Ok(Ended::Failed(error.to_string())),
    };
    tracing::info!(server = %server.name, "bridged server is up");
    let forward =
        Forward::new(&server.name, session.peer().clone(), session.info().clone(), downstream);
    // A stdio server is served here; a remote one is registered at its own
    // URL and the gateway calls it directly.
    let endpoint = match &server.source {
        Source::Command(_) => {
            // The registration lists what this first program serves; in
            // per-client mode the sessions of the endpoint get their own.
            let served = match server.session {
                SessionMode::Shared => forward.clone(),
                SessionMode::PerClient => forward.clone().per_client(Pool::new(server)),
            };
            match Endpoint::start(&server.listen, served, &server.name).await {
                Ok(endpoint) => Some(endpoint),
                Err(reason) => {
                    session.stop().await;
                    return Ok(Ended::Failed(reason));
                }
            }
        }
        Source::Url(_) => None,
    };
    let advertised = match (&endpoint, &server.source) {
        (Some(endpoint), _) => endpoint.url.clone(),
        (None, Source::Url(url)) => url.clone(),
        (None, Source::Command(_)) => String::new(),
    };
    let mut agent = match register(server, registry, &session, &forward, &advertised).await {
        Ok(Ok(agent)) => agent,
        Ok(Err(reason)) => return finish(endpoint, session, Ended::Failed(reason)).await,
        Err(error) => {
            finish(endpoint, session, Ended::Stopped).await?;
            return Err(error);
        }
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                leave(agent).await;
                return finish(endpoint, session, Ended::Stopped).await;
            }
            reason = session.ended() => {
                // Out of routing first: the gateway and dependents are told now.
                leave(agent).await;
                return finish(endpoint, session, Ended::Failed(reason)).await;
            }
            Some(_) = changed.recv() => {
                // Changes come in bursts (a server registering tools one by
                // one): settle, then register everything once.
                tokio::time::sleep(SETTLE).await;
                while changed.try_recv().is_ok() {}
                tracing::info!(server = %server.name, "the server's lists changed; registering again");
                // Make before break, at the same endpoint: the tools never
                // leave routing and client sessions are kept.
                match register(server, registry, &session, &forward, &advertised).await {
                    Ok(Ok(next)) => leave(std::mem::replace(&mut agent, next)).await,
                    Ok(Err(reason)) => {
                        tracing::warn!(server = %server.name, %reason, "cannot register the changed lists; keeping the previous registration");
                    }
                    Err(error) => {
                        leave(agent).await;
                        finish(endpoint, session, Ended::Stopped).await?;
                        return Err(error);
                    }
                }
            }
        }
    }
}

/// Stops serving and ends the session (after the agent left).
async fn finish(endpoint: Option<Endpoint>, session: Session, ended: Ended) -> Result<Ended> {
    if let Some(endpoint) = endpoint {
        endpoint.stop().await;
    }
    session.stop().await;
    Ok(ended)
}

async fn leave(agent: RunningAgent) {
    let agent_id = agent.agent_id.clone();
    if let Err(error) = agent.shutdown().await {
        tracing::warn!(%agent_id, %error, "agent did not shut down cleanly");
    }
}

/// Serves the session on an endpoint of ours and registers it. The outer
/// error is final (the registry refused the metadata); the inner one is a
/// reason to retry.
async fn register(
    server: &ServerConfig,
    registry: &str,
    session: &Session,
    forward: &Forward,
    advertised: &str,
) -> Result<std::result::Result<RunningAgent, String>> {
    let tools = match session.tools().await {
        Ok(tools) => tools,
        Err(reason) => return Ok(Err(reason)),
    };
    let info = session.info();
    let server_version = info
        .server_info
        .version
        .parse::<semver::Version>()
        .map_or_else(|_| "1.0.0".to_owned(), |v| v.to_string());
    // The agent's own listener only answers its introspection: what is
    // registered is `advertised` (the bridge's endpoint, or the remote URL).
    let mut agent = Agent::new(&server.name)
        .registry(registry)
        .version(&server_version)
        .listen("127.0.0.1:0")
        .endpoint(advertised)
        .sessions(true)
        .drain_timeout(DRAIN);
    for name in server.tools.keys().filter(|name| !tools.iter().any(|t| t.name == name.as_str())) {
        tracing::warn!(server = %server.name, tool = %name, "config has metadata for a tool the server does not serve");
    }
    for tool in &tools {
        let meta = server.tools.get(tool.name.as_ref()).cloned().unwrap_or_default();
        agent = agent.tool(&tool.name, |t| mesh_tool(t, &tool.name, &meta, &server_version));
    }
    match agent.start_handler(forward.clone()).await {
        Ok(running) => {
            tracing::info!(server = %server.name, agent_id = %running.agent_id, endpoint = %running.endpoint, tools = tools.len(), "bridged server registered");
            Ok(Ok(running))
        }
        Err(AgentError::Rejected(reason)) => Err(BridgeError::Config(format!(
            "server {:?}: the registry refused the registration: {reason}",
            server.name
        ))),
        Err(AgentError::Config(reason)) => {
            Err(BridgeError::Config(format!("server {:?}: {reason}", server.name)))
        }
        Err(other) => Ok(Err(other.to_string())),
    }
}

/// The mesh metadata of one tool: the config's, with defaults.
fn mesh_tool(
    mut tool: switchboard_agent::MeshTool,
    name: &str,
    meta: &ToolMeta,
    server_version: &str,
) -> switchboard_agent::MeshTool {
    let capability = meta.capability.clone().unwrap_or_else(|| default_capability(name));
    if !capability.is_empty() {
        tool = tool.capability(&capability);
    }
    tool = tool.version(meta.version.as_deref().unwrap_or(server_version));
    for tag in &meta.tags {
        tool = tool.tag(tag);
    }
    for dependency in &meta.dependencies {
        let tags: Vec<&str> = dependency.tags.iter().map(String::as_str).collect();
        tool = tool.depends_on(&Dependency::with_tags(
            &dependency.capability,
            &dependency.version,
            &tags,
        ));
    }
    tool
}

/// The tool's name as a capability (`[a-z0-9][a-z0-9_.-]{0,63}`): lowercased,
/// other characters as `_`; empty (no capability) when nothing is left.
fn default_capability(name: &str) -> String {
    crate::config::as_name(name, '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_become_valid_capabilities() {
        assert_eq!(default_capability("read_text_file"), "read_text_file");
        assert_eq!(default_capability("get-Sum"), "get-sum");
        assert_eq!(default_capability("ns/tool"), "ns_tool");
        assert_eq!(default_capability("__x"), "x");
        assert_eq!(default_capability("ééé"), "");
    }
}
