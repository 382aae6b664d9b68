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
//!
//! Given several registry addresses, the agent stays on one while it answers
//! and moves to the next when it fails (unreachable, `UNAVAILABLE`, the
//! stream broken or drained), with the same backoff. A replica that does not
//! know the agent asks it to re-register, and it does, under the same id.
//! Its dependency proxies keep the providers they had until the new registry
//! pushes wiring, for at most [`WIRING_HOLD`]: right after a replica fails,
//! the new one may not have seen the providers come over yet, and dropping
//! them would fail calls that still work.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_client::{Backoff, Bearer, Current, Registries};
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    ControlAction, RegisterAgentRequest, StreamHeartbeatsRequest, ToolResolution,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::{AgentError, Dependency, MeshTool};

/// Heartbeat interval until the registry says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Longest time the proxies keep their providers after a move to another
/// registry that has none for them yet: enough for the other agents of a
/// failed replica to come over (their reconnect backoff is at most 5 s).
pub const WIRING_HOLD: Duration = Duration::from_secs(15);

/// Tool name → its dependency proxies, in declaration order.
pub struct Wiring {
    slots: HashMap<String, Vec<Dependency>>,
    applied: u64,
    /// A new registry's first answer, not applied in full yet.
    held: Option<Held>,
}

/// Wiring applied only where it names providers, until a push replaces it
/// or `until`.
struct Held {
    resolutions: Vec<ToolResolution>,
    until: Instant,
}

impl Wiring {
    /// The proxies of every tool's dependencies.
    pub fn new(tools: &HashMap<String, MeshTool>) -> Self {
        let slots =
            tools.iter().map(|(name, meta)| (name.clone(), meta.dependencies.clone())).collect();
        Self { slots, applied: 0, held: None }
    }

    /// Applies a resolution newer than the last one applied.
    fn apply(&mut self, revision: u64, resolutions: &[ToolResolution]) {
        if revision <= self.applied && self.applied != 0 {
            return;
        }
        self.held = None;
        self.set(resolutions, false);
        self.applied = revision;
        tracing::debug!(revision, "wiring applied");
    }

    /// Applies the first wiring of a registry the agent moved to, keeping
    /// the current providers of every dependency it has none for, until the
    /// registry pushes or [`WIRING_HOLD`] has passed.
    fn hold(&mut self, revision: u64, resolutions: Vec<ToolResolution>) {
        self.set(&resolutions, true);
        self.applied = revision;
        self.held = Some(Held { resolutions, until: Instant::now() + WIRING_HOLD });
        tracing::debug!(revision, "wiring of the new registry applied where it has providers");
    }

    /// Applies held wiring in full once its time is up.
    fn release_due(&mut self) {
        if self.held.as_ref().is_some_and(|held| held.until <= Instant::now())
            && let Some(held) = self.held.take()
        {
            tracing::info!(
                revision = self.applied,
                "no wiring pushed by the new registry; applying its own"
            );
            self.set(&held.resolutions, false);
        }
    }

    fn set(&self, resolutions: &[ToolResolution], keep_known: bool) {
        for tool in resolutions {
            let Some(slots) = self.slots.get(&tool.tool_name) else { continue };
            for (slot, resolution) in slots.iter().zip(&tool.dependencies) {
                if keep_known && resolution.providers.is_empty() {
                    continue;
                }
                slot.set_providers(resolution.providers.clone());
            }
        }
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
    registries: Registries,
    /// The registry in use.
    current: Current,
    /// Where the agent last registered.
    registered_at: Option<String>,
    /// The token sent with every registry call and stream.
    bearer: Bearer,
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
        (registries, bearer): (Registries, Bearer),
        request: RegisterAgentRequest,
        wiring: Wiring,
        health: Health,
        registered: watch::Sender<bool>,
    ) -> Self {
        Self {
            current: registries.current(),
            registries,
            registered_at: None,
            bearer,
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

    /// The first registration attempt, at start: once at each registry
    /// while they are unreachable.
    pub async fn register_first(&mut self) -> Result<(), FirstAttempt> {
        let mut attempts = self.registries.len().max(1);
        loop {
            let status = match self.register_once().await {
                Ok(()) => return Ok(()),
                Err(status) => status,
            };
            attempts -= 1;
            match status.code() {
                code if is_retryable(code) && attempts > 0 => self.move_on().await,
                code if is_retryable(code) => return Err(FirstAttempt::Unreachable(status)),
                tonic::Code::InvalidArgument => {
                    return Err(FirstAttempt::Refused(AgentError::Rejected(name_the_tool(
                        status.message(),
                        &self.request,
                    ))));
                }
                // A registry with auth refused the token or its scope: it will
                // not change by retrying, and the message says what to fix.
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                    return Err(FirstAttempt::Refused(AgentError::Rejected(
                        status.message().to_owned(),
                    )));
                }
                _ => {
                    return Err(FirstAttempt::Refused(AgentError::RegistryUnreachable(
                        status.to_string(),
                    )));
                }
            }
        }
    }

    /// The registry in use, sending the agent's token.
    fn channel(&self) -> switchboard_client::AuthChannel {
        self.bearer.channel(self.current.channel.clone())
    }

    /// Moves to the next registry after the current one failed.
    async fn move_on(&mut self) {
        self.current = self.registries.failed(&self.current).await;
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
                        if is_retryable(status.code()) {
                            self.move_on().await;
                        }
                    }
                }
                End::Reconnect(reason) => {
                    tracing::debug!(%reason, registry = %self.current.address, "heartbeat stream ended; reconnecting");
                    self.move_on().await;
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
                    tracing::debug!(%status, registry = %self.current.address, "registry still unreachable");
                    self.move_on().await;
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
        let response = RegistryServiceClient::new(self.channel())
            .register_agent(self.request.clone())
            .await?
            .into_inner();
        self.request.agent_id = response.agent_id;
        if let Some(interval) = response.heartbeat.and_then(|h| h.interval) {
            self.interval = Duration::try_from(interval).unwrap_or(DEFAULT_INTERVAL);
        }
        let moved = self.registered_at.as_ref().is_some_and(|at| *at != self.current.address);
        if moved {
            tracing::info!(agent_id = %self.request.agent_id, registry = %self.current.address, "registered at another registry");
        }
        self.registered_at = Some(self.current.address.clone());
        // A new registration's wiring is authoritative (its revisions may
        // be another registry's), but a registry the agent just moved to may
        // lack providers that still answer.
        self.wiring.applied = 0;
        if moved {
            self.wiring.hold(response.resolution_revision, response.resolutions);
        } else {
            self.wiring.apply(response.resolution_revision, &response.resolutions);
        }
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
        let mut client = HeartbeatServiceClient::new(self.channel());
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
                    self.wiring.release_due();
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
