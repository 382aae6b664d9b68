//! `switchboard.v1.HeartbeatService`: the bidirectional heartbeat stream that
//! also carries pushed wiring, and the unary heartbeat.
//!
//! A stream is bound to the agent id of its first heartbeat. From then on the
//! session task answers each heartbeat with an ack and forwards every wiring
//! change the writer publishes for that agent — the latest one only, so a
//! slow agent never queues stale wirings. When the stream ends without a
//! deregister, the agent is DEGRADED at once (unless a newer stream for the
//! same agent has taken over).
//!
//! A heartbeat is checked whole before it counts: a bad agent id, a label
//! update that would fail RegisterAgent's rules or a malformed health verdict
//! gets `INVALID_ARGUMENT` (on a stream, as the status that ends it: the
//! response has no message for an error) and changes nothing — not even the
//! agent's liveness.
//!
//! A heartbeat may carry the agent's verdict on itself (`health`): one that
//! says not ready makes the agent DEGRADED ("agent reports unhealthy") until
//! one says ready again; a heartbeat without it counts as ready, so agents
//! that predate the field keep working. The change is a status transition
//! like any other (written, pushed to dependents, in Watch); heartbeats that
//! repeat the verdict write nothing.
//!
//! With auth on, a stream is bound to the identity that opened it: every
//! heartbeat on it must be for an agent that identity owns (or the caller
//! is an admin), else the stream ends with `PERMISSION_DENIED`; and it ends
//! with `UNAUTHENTICATED` the moment its token is revoked or expires. The
//! unary heartbeat checks the same ownership on every call.
//!
//! An agent the registry has recorded as EXPIRED is not revived by a
//! heartbeat: its expiry was published, every dependent was rewired away and
//! every gateway dropped it, so it must register again (Consul and Eureka
//! work the same way). It gets what an unknown agent gets — the REREGISTER
//! control message on a stream, `NOT_FOUND` from the unary call — which the
//! SDKs already answer by registering again.

use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt as _};
use serde_json::json;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    AgentHealth, AgentStatus, ControlAction, ControlMessage, HeartbeatAck, LabelUpdate,
    SendHeartbeatRequest, SendHeartbeatResponse, StreamHeartbeatsRequest, StreamHeartbeatsResponse,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::access::{AgentAction, Caller};
use crate::audit::{self, Actor};
use crate::condition::to_status;
use crate::error::{RegistryError, decode_failure};
use crate::registry::{AgentReadiness, HeartbeatOutcome, Registry};
use crate::state::Wiring;
use crate::validate::{self, shown};

use super::heartbeat_parameters;

mod server;

use server::Outgoing;

pub use server::HeartbeatServer;

/// Messages queued towards one agent.
const SESSION_QUEUE: usize = 16;

type ResponseStream = Pin<Box<dyn Stream<Item = Result<Outgoing, Status>> + Send>>;

/// What a session queues towards its agent, boxed: tokio's channel allocates
/// its slots 32 at a time when it is created, so a 120-byte message would
/// cost ~4 KB per open stream with nothing queued; a box costs 256 bytes.
type Queued = Box<Result<Outgoing, Status>>;

/// The `HeartbeatService` RPCs over a [`Registry`]; serve them with
/// [`HeartbeatServer`].
#[derive(Clone)]
pub struct HeartbeatApi {
    registry: Registry,
}

impl HeartbeatApi {
    /// Serves `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    fn ack(&self, sequence: u64, outcome: HeartbeatOutcome, agent_id: &str) -> HeartbeatAck {
        let status = match outcome {
            HeartbeatOutcome::Alive(status) => to_status(status),
            HeartbeatOutcome::Unknown => switchboard_proto::v1::AgentStatus::Unspecified,
        };
        let resolution_revision =
            self.registry.snapshot().wiring.get(agent_id).map_or(0, |w| w.revision);
        HeartbeatAck {
            sequence,
            status: status as i32,
            server_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            heartbeat: Some(heartbeat_parameters(self.registry.config())),
            resolution_revision,
        }
    }

    /// Checks a heartbeat before anything of it counts: its agent id, its
    /// label update (by the rules of RegisterAgent) and its health verdict.
    fn check(
        &self,
        agent_id: &str,
        labels: Option<&LabelUpdate>,
        health: Option<&AgentHealth>,
    ) -> Result<(), RegistryError> {
        validate::agent_id("agent_id", agent_id)?;
        if let Some(update) = labels {
            validate::labels("labels.labels", &update.labels, &self.registry.config().limits)?;
        }
        if let Some(health) = health {
            validate::agent_health("health", health)?;
        }
        Ok(())
    }

    /// May `caller` heartbeat for (and change the labels of) `agent_id`?
    /// An agent the registry does not know passes: it gets told to register.
    fn authorize(&self, caller: &Caller, agent_id: &str) -> Result<(), RegistryError> {
        if caller.is_anonymous() {
            // Auth is off: nothing to check, and nothing to cost a heartbeat.
            return Ok(());
        }
        caller.check_agent_action(AgentAction::Heartbeat)?;
        match self.registry.snapshot().agents.get(agent_id) {
            Some(agent) => caller.check_owner(agent, AgentAction::Heartbeat),
            None => Ok(()),
        }
    }

    /// Records a heartbeat from a checked agent id, unless the registry has
    /// recorded the agent as EXPIRED: then, like an unknown agent, it must
    /// register again.
    fn heartbeat(
        &self,
        agent_id: &str,
        health: Option<&AgentHealth>,
    ) -> Result<HeartbeatOutcome, String> {
        let expired = self
            .registry
            .snapshot()
            .agents
            .get(agent_id)
            .is_some_and(|agent| agent.status() == AgentStatus::Expired);
        if expired {
            return Err(format!("agent {} expired", shown(agent_id)));
        }
        let readiness = match health {
            Some(health) if !health.ready => {
                AgentReadiness::NotReady { failing: health.failing_checks.clone() }
            }
            _ => AgentReadiness::Ready,
        };
        match self.registry.heartbeat_with(agent_id, &readiness) {
            HeartbeatOutcome::Unknown => {
                Err(format!("agent {} is not registered", shown(agent_id)))
            }
            alive => Ok(alive),
        }
    }

    /// [`heartbeat`](Self::heartbeat), tried once more when refused, after
    /// this replica caught up with the store: on a store several replicas
    /// share, the agent may have registered through another one a moment
    /// ago, and must not be told to register again for it.
    async fn heartbeat_caught_up(
        &self,
        agent_id: &str,
        health: Option<&AgentHealth>,
    ) -> Result<HeartbeatOutcome, String> {
        match self.heartbeat(agent_id, health) {
            Err(_) if self.registry.consistent_snapshot().await.is_ok() => {
                self.heartbeat(agent_id, health)
            }
            outcome => outcome,
        }
    }

    /// Applies a label update carried by a checked heartbeat; one that
    /// changes them is audited as `labels`.
    async fn update_labels(
        &self,
        (caller, actor): (&Caller, &Actor),
        agent_id: &str,
        labels: Option<LabelUpdate>,
    ) -> Result<(), Status> {
        let Some(update) = labels else { return Ok(()) };
        let claim = caller.claim(AgentAction::Heartbeat);
        let result = self.registry.set_labels_as(agent_id, update.labels, claim).await;
        // A heartbeat may repeat the labels it carries; only a change is one.
        if !matches!(result, Ok((_, false))) {
            audit::requested(
                self.registry.audit(),
                actor,
                "labels",
                agent_id,
                &result,
                |r| json!({ "revision": r.0 }),
            );
        }
        result?;
        Ok(())
    }
}

// === impl HeartbeatApi (RPCs) ===

impl HeartbeatApi {
    /// Opens a heartbeat stream: one session task reads it and answers.
    async fn stream_heartbeats(
        &self,
        request: Request<Streaming<StreamHeartbeatsRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        // `authenticate_fresh` by hand: a `Streaming` request is not `Sync`.
        let access = self.registry.access();
        let caller = match access.authenticate(&request) {
            Err(_) if access.fetch_unknown(request.metadata()).await => {
                access.authenticate(&request)?
            }
            outcome => outcome?,
        };
        caller.check_agent_action(AgentAction::Heartbeat)?;
        let (outbox, receiver) = mpsc::channel(SESSION_QUEUE);
        let actor = audit::actor(&request, &caller);
        let session = Session { api: self.clone(), outbox, bound: None, caller, actor };
        tokio::spawn(session.run(request.into_inner()));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver).map(|outgoing| *outgoing))))
    }

    /// Answers a unary heartbeat.
    #[tracing::instrument(name = "SendHeartbeat", skip_all, fields(agent_id = %request.get_ref().agent_id))]
    async fn send_heartbeat(
        &self,
        request: Request<SendHeartbeatRequest>,
    ) -> Result<Response<SendHeartbeatResponse>, Status> {
        let caller = self.registry.access().authenticate_fresh(&request).await?;
        let actor = audit::actor(&request, &caller);
        let request = request.into_inner();
        self.check(&request.agent_id, request.labels.as_ref(), request.health.as_ref())?;
        self.authorize(&caller, &request.agent_id)?;
        let outcome = self
            .heartbeat_caught_up(&request.agent_id, request.health.as_ref())
            .await
            .map_err(|why| Status::not_found(format!("{why}: call RegisterAgent again")))?;
        self.update_labels((&caller, &actor), &request.agent_id, request.labels).await?;
        Ok(Response::new(SendHeartbeatResponse {
            ack: Some(self.ack(request.sequence, outcome, &request.agent_id)),
        }))
    }
}

/// One agent's heartbeat stream.
struct Session {
    api: HeartbeatApi,
    outbox: mpsc::Sender<Queued>,
    /// Agent id, stream id and wiring channel, once the first heartbeat came.
    bound: Option<(String, u64, watch::Receiver<Arc<Wiring>>)>,
    /// The identity that opened the stream: every label update on it is theirs.
    caller: Caller,
    /// The same, as the audit log names it.
    actor: Actor,
}

/// Why a session loop stopped.
enum End {
    /// The agent closed or broke the stream, or stopped reading.
    Gone,
    /// The agent sent something that ends the stream with an error.
    Rejected(Status),
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<StreamHeartbeatsRequest>) {
        let closing = self.api.registry.closing();
        // Resolves when the caller's token is revoked or expires.
        let mut ended: BoxFuture<'static, Status> = if self.caller.can_end() {
            Box::pin(self.caller.ended())
        } else {
            Box::pin(std::future::pending())
        };
        let end = loop {
            let wiring_changed = async {
                match &mut self.bound {
                    Some((_, _, wiring)) => wiring.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(heartbeat)) => self.on_heartbeat(heartbeat).await,
                    Ok(None) => Err(End::Gone),
                    // A message tonic could not decode is the agent's
                    // mistake, answered as on unary calls; any other error
                    // is the connection going away.
                    Err(status) => Err(decode_failure(&status, self.max_message_bytes())
                        .map_or(End::Gone, End::Rejected)),
                },
                true = wiring_changed => self.push_wiring().await,
                status = &mut ended => Err(End::Rejected(status)),
                () = closing.cancelled() => {
                    let _ = self.send(Message::Control(ControlMessage {
                        action: ControlAction::Drain as i32,
                        reason: "registry is shutting down".into(),
                    })).await;
                    Err(End::Gone)
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Rejected(status) = end {
            let _ = self.outbox.send(Box::new(Err(status))).await;
        }
        if let Some((agent_id, stream_id, _)) = &self.bound {
            self.api.registry.stream_closed(agent_id, *stream_id);
        }
    }

    async fn on_heartbeat(&mut self, heartbeat: StreamHeartbeatsRequest) -> Result<(), End> {
        let agent_id = heartbeat.agent_id.as_str();
        self.api
            .check(agent_id, heartbeat.labels.as_ref(), heartbeat.health.as_ref())
            .map_err(|e| End::Rejected(Status::from(e)))?;
        self.api.authorize(&self.caller, agent_id).map_err(|e| End::Rejected(Status::from(e)))?;
        if let Some((bound, _, _)) = &self.bound
            && bound != agent_id
        {
            return Err(End::Rejected(Status::from(RegistryError::invalid(
                "agent_id",
                format!(
                    "this stream is bound to agent {}, got a heartbeat for {}",
                    shown(bound),
                    shown(agent_id)
                ),
            ))));
        }
        let outcome = match self.api.heartbeat_caught_up(agent_id, heartbeat.health.as_ref()).await
        {
            Ok(outcome) => outcome,
            Err(reason) => {
                let action = ControlAction::Reregister as i32;
                return self.send(Message::Control(ControlMessage { action, reason })).await;
            }
        };
        if let Err(status) =
            self.api.update_labels((&self.caller, &self.actor), agent_id, heartbeat.labels).await
        {
            return Err(End::Rejected(status));
        }
        let ack = self.api.ack(heartbeat.sequence, outcome, agent_id);
        self.send(Message::Ack(ack)).await?;
        // A deregister drops the agent's wiring channel; if the agent then
        // registered again while keeping this stream, bind a fresh channel, or
        // no wiring would ever reach it again.
        let stale = matches!(&self.bound, Some((_, _, wiring)) if wiring.has_changed().is_err());
        if self.bound.is_none() || stale {
            self.bind(agent_id, heartbeat.applied_resolution_revision).await?;
        }
        Ok(())
    }

    /// Binds the stream to its agent and sends the wiring the agent has not
    /// applied yet (it may have changed between registration and this stream).
    async fn bind(&mut self, agent_id: &str, applied: u64) -> Result<(), End> {
        let Some(mut wiring) = self.api.registry.subscribe_wiring(agent_id) else {
            return Ok(());
        };
        // A stream re-bound after a re-registration keeps its id: it is still
        // one open stream of this agent.
        let existing = self.bound.as_ref().map(|(_, id, _)| *id);
        let stream_id = self.api.registry.stream_opened(agent_id, existing);
        let current = wiring.borrow_and_update().clone();
        self.bound = Some((agent_id.to_owned(), stream_id, wiring));
        if current.revision > applied {
            self.send_encoded(current.encoded_push()).await?;
        }
        Ok(())
    }

    /// Sends the latest wiring, as the bytes every stream that gets the same
    /// wiring sends.
    async fn push_wiring(&mut self) -> Result<(), End> {
        let Some((_, _, wiring)) = &mut self.bound else { return Ok(()) };
        let push = wiring.borrow_and_update().encoded_push();
        self.send_encoded(push).await
    }

    fn max_message_bytes(&self) -> usize {
        self.api.registry.config().limits.max_message_bytes
    }

    async fn send(&self, message: Message) -> Result<(), End> {
        let response = StreamHeartbeatsResponse { message: Some(message) };
        self.outbox.send(Box::new(Ok(Outgoing::Message(response)))).await.map_err(|_| End::Gone)
    }

    async fn send_encoded(&self, push: bytes::Bytes) -> Result<(), End> {
        self.outbox.send(Box::new(Ok(Outgoing::Encoded(push)))).await.map_err(|_| End::Gone)
    }
}
