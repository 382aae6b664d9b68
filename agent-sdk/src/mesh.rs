//! The agent's side of the mesh: registration, the heartbeat stream, and
//! applying pushed wiring to the dependency proxies.
//!
//! The agent serves before it registers. When the registry cannot be reached
//! at start, registration goes on in the background with backoff (unless the
//! author asked for `require_registry`), and until it succeeds the
//! dependencies stay unresolved: the tools answer, degraded.
//! Any stream error is followed by a reconnect with exponential backoff and
//! full jitter; the agent keeps serving and keeps its last wiring meanwhile.
//! A "re-register" control message (the registry lost us) re-registers
//! before the stream is reopened. Every heartbeat carries the verdict of the
//! agent's health checks, and a change of verdict is sent at once rather
//! than at the next tick.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_client::AuthChannel;
use switchboard_client::Backoff;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    ControlAction, RegisterAgentRequest, StreamHeartbeatsRequest, ToolResolution,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::{AgentError, Dependency, MeshTool};

/// Heartbeat interval until the registry says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Tool name → its dependency proxies, in declaration order.
pub struct Wiring {
    slots: HashMap<String, Vec<Dependency>>,
    applied: u64,
}

impl Wiring {
    /// The proxies of every tool's dependencies.
    pub fn new(tools: &HashMap<String, MeshTool>) -> Self {
        let slots =
            tools.iter().map(|(name, meta)| (name.clone(), meta.dependencies.clone())).collect();
        Self { slots, applied: 0 }
    }

    /// Applies a resolution newer than the last one applied.
    fn apply(&mut self, revision: u64, resolutions: &[ToolResolution]) {
        if revision <= self.applied && self.applied != 0 {
            return;
        }
        for tool in resolutions {
            let Some(slots) = self.slots.get(&tool.tool_name) else { continue };
            for (slot, resolution) in slots.iter().zip(&tool.dependencies) {
                slot.set_providers(resolution.providers.clone());
            }
        }
        self.applied = revision;
        tracing::debug!(revision, "wiring applied");
    }
}

/// How a stream ended.
enum End {
    /// The registry does not know us.
    Reregister,
    /// Broken or drained: reconnect.
    Reconnect(String),
}

/// The registration and heartbeat loop of one agent.
pub struct Mesh {
    channel: AuthChannel,
    request: RegisterAgentRequest,
    wiring: Wiring,
    health: Health,
    registered: watch::Sender<bool>,
    interval: Duration,
    sequence: u64,
}

/// Why the first registration attempt failed.
pub enum FirstAttempt {
    /// The registry is away or busy: retrying may help.
    Unreachable(tonic::Status),
    /// The registry refused it, or is not a registry: final.
    Refused(AgentError),
}

impl Mesh {
    /// The mesh of an agent that has not registered yet; `registered` turns
    /// true once it has.
    pub fn new(
        channel: AuthChannel,
        request: RegisterAgentRequest,
        wiring: Wiring,
        health: Health,
        registered: watch::Sender<bool>,
    ) -> Self {
        Self {
            channel,
            request,
            wiring,
            health,
            registered,
            interval: DEFAULT_INTERVAL,
            sequence: 0,
        }
    }

    /// The agent's id (chosen by the SDK, echoed by the registry).
    pub fn agent_id(&self) -> &str {
        &self.request.agent_id
    }

    /// The first registration attempt, at start.
    pub async fn register_first(&mut self) -> Result<(), FirstAttempt> {
        self.register_once().await.map_err(|status| match status.code() {
            code if is_retryable(code) => FirstAttempt::Unreachable(status),
            tonic::Code::InvalidArgument => FirstAttempt::Refused(AgentError::Rejected(
                name_the_tool(status.message(), &self.request),
            )),
            // A registry with auth refused the token or its scope: it will
            // not change by retrying, and the message says what to fix.
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                FirstAttempt::Refused(AgentError::Rejected(status.message().to_owned()))
            }
            _ => FirstAttempt::Refused(AgentError::RegistryUnreachable(status.to_string())),
        })
    }

    /// Registers (if the first attempt did not) and heartbeats until `stop`,
    /// reconnecting and re-registering as needed — except once `leaving` is
    /// cancelled: an agent on its way out must not come back because the
    /// registry, having processed its deregistration, asks it to re-register.
    pub async fn run(mut self, leaving: CancellationToken, stop: CancellationToken) {
        if !*self.registered.borrow() {
            tokio::select! {
                () = leaving.cancelled() => return,
                registered = self.register_until_done() => if !registered { return },
            }
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let end = tokio::select! {
                () = stop.cancelled() => return,
                end = self.stream_once(&mut backoff) => end,
            };
            match end {
                End::Reregister if leaving.is_cancelled() => return,
                End::Reregister => {
                    tracing::info!(agent_id = %self.request.agent_id, "registry asked to re-register");
                    if let Err(status) = self.register_once().await {
                        tracing::warn!(%status, "re-registration failed; retrying");
                    }
                }
                End::Reconnect(reason) => {
                    tracing::debug!(%reason, "heartbeat stream ended; reconnecting");
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Retries registering with backoff while the registry is unreachable;
    /// false when it refused (logged: the agent serves on, unregistered).
    async fn register_until_done(&mut self) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        loop {
            match self.register_once().await {
                Ok(()) => return true,
                Err(status) if is_retryable(status.code()) => {
                    tracing::debug!(%status, "registry still unreachable");
                }
                Err(status) => {
                    tracing::error!(%status, "registration refused; serving unregistered");
                    return false;
                }
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn register_once(&mut self) -> Result<(), tonic::Status> {
        let response = RegistryServiceClient::new(self.channel.clone())
            .register_agent(self.request.clone())
            .await?
            .into_inner();
        self.request.agent_id = response.agent_id;
        if let Some(interval) = response.heartbeat.and_then(|h| h.interval) {
            self.interval = Duration::try_from(interval).unwrap_or(DEFAULT_INTERVAL);
        }
        // A new registration's wiring is authoritative.
        self.wiring.applied = 0;
        self.wiring.apply(response.resolution_revision, &response.resolutions);
        self.registered.send_if_modified(|registered| {
            if *registered {
                return false;
            }
            tracing::info!(agent_id = %self.request.agent_id, "registered");
            *registered = true;
            true
        });
        Ok(())
    }

    async fn stream_once(&mut self, backoff: &mut Backoff) -> End {
        let (outgoing, requests) = mpsc::channel(4);
        if outgoing.send(self.heartbeat()).await.is_err() {
            return End::Reconnect("stream closed".into());
        }
        let mut client = HeartbeatServiceClient::new(self.channel.clone());
        let mut inbound = match client.stream_heartbeats(ReceiverStream::new(requests)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return End::Reconnect(status.to_string()),
        };
        let mut ticker = tokio::time::interval(self.interval);
        ticker.tick().await;
        let mut verdict = self.health.subscribe();
        verdict.mark_unchanged();
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if outgoing.send(self.heartbeat()).await.is_err() {
                        return End::Reconnect("stream closed".into());
                    }
                }
                // A new verdict goes out now, not a whole interval later.
                Ok(()) = verdict.changed() => {
                    verdict.mark_unchanged();
                    if outgoing.send(self.heartbeat()).await.is_err() {
                        return End::Reconnect("stream closed".into());
                    }
                }
                message = inbound.message() => match message {
                    Ok(Some(response)) => {
                        backoff.reset();
                        match response.message {
                            Some(Message::Resolution(update)) => {
                                self.wiring.apply(update.resolution_revision, &update.resolutions);
                            }
                            Some(Message::Control(control)) => {
                                return match ControlAction::try_from(control.action) {
                                    Ok(ControlAction::Reregister) => End::Reregister,
                                    _ => End::Reconnect(control.reason),
                                };
                            }
                            Some(Message::Ack(_)) | None => {}
                        }
                    }
                    Ok(None) => return End::Reconnect("registry closed the stream".into()),
                    Err(status) => return End::Reconnect(status.to_string()),
                },
            }
        }
    }

    fn heartbeat(&mut self) -> StreamHeartbeatsRequest {
        self.sequence += 1;
        StreamHeartbeatsRequest {
            agent_id: self.request.agent_id.clone(),
            sequence: self.sequence,
            labels: None,
            applied_resolution_revision: self.wiring.applied,
            health: self.health.heartbeat_field(),
        }
    }
}

/// Failures of RegisterAgent worth retrying: the registry is away or busy.
/// Anything else will not get better by itself.
fn is_retryable(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
    )
}

/// `tools[2].version: …` → `tool "greet": version: …`, for a person who
/// named tools rather than counted them.
fn name_the_tool(message: &str, request: &RegisterAgentRequest) -> String {
    let Some(rest) = message.strip_prefix("tools[") else { return message.to_owned() };
    let Some((index, field)) = rest.split_once(']') else { return message.to_owned() };
    match index.parse::<usize>().ok().and_then(|i| request.tools.get(i)) {
        Some(tool) => format!("tool {:?}: {}", tool.name, field.trim_start_matches('.')),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::v1::Tool;

    use super::*;

    #[test]
    fn rejections_name_the_tool_instead_of_its_index() {
        let request = RegisterAgentRequest {
            tools: vec![Tool { name: "greet".into(), ..Tool::default() }],
            ..RegisterAgentRequest::default()
        };
        assert_eq!(
            name_the_tool("tools[0].capability: bad name \"X\"", &request),
            "tool \"greet\": capability: bad name \"X\""
        );
        assert_eq!(name_the_tool("name: must not be empty", &request), "name: must not be empty");
    }
}
