//! Agents for fault runs: in-process heartbeat clients that record every
//! registration, ack and wiring push, each on its own faulty link; and the
//! example `date-service` as real processes, for crashes and freezes that
//! only a process can have.
//!
//! The in-process agent behaves like the SDK: it heartbeats on the
//! bidirectional stream, registers again when told, and on any failure —
//! a broken stream, or no ack for a few intervals (a half-open link) — drops
//! the connection and reconnects with full-jitter backoff on a fresh one.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    AgentStatus, ControlAction, DependencySpec, RegisterAgentRequest, StreamHeartbeatsRequest,
    Tool, ToolResolution,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::FaultProxy;
use crate::AgentProcess;
use crate::history::{History, OpKind, Outcome};

/// Longest wait for one registry call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Backoff cap between reconnections.
const BACKOFF_CAP: Duration = Duration::from_millis(500);

/// What an in-process agent registers.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Its id (`<name>-<8 hex>`).
    pub agent_id: String,
    /// The capability its tool provides.
    pub provides: String,
    /// A capability its tool depends on.
    pub depends_on: Option<String>,
    /// Heartbeat interval.
    pub every: Duration,
}

/// A running in-process agent and its link to the registry.
pub struct RecordedAgent {
    /// Its id.
    pub agent_id: String,
    link: FaultProxy,
    history: History,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The example `date-service` agent as a child process, behind its own link.
pub struct AgentChild {
    /// Its id.
    pub agent_id: String,
    /// Its link to the registry.
    pub link: FaultProxy,
    /// The process.
    pub process: AgentProcess,
}

/// One agent's loop state.
struct Session {
    spec: AgentSpec,
    history: History,
    addr: String,
    rng: StdRng,
    generation: u64,
    registered: bool,
    applied: u64,
    sequence: u64,
}

/// Why a stream ended.
enum Ended {
    Stopped,
    Retry,
    Reregister,
}

// === impl AgentSpec ===

impl AgentSpec {
    /// Its registration; `generation` goes into a label so that no two
    /// registrations are the same (each is a real write with its own revision).
    pub fn registration(&self, generation: u64) -> RegisterAgentRequest {
        let name = self.agent_id.rsplit_once('-').map_or("agent", |(name, _)| name);
        let mut tools = vec![Tool {
            name: "serve".into(),
            capability: self.provides.clone(),
            version: "1.0.0".into(),
            ..Tool::default()
        }];
        if let Some(capability) = &self.depends_on {
            tools.push(Tool {
                name: "use_it".into(),
                dependencies: vec![DependencySpec {
                    capability: capability.clone(),
                    version: ">=1.0".into(),
                    tags: Vec::new(),
                }],
                ..Tool::default()
            });
        }
        RegisterAgentRequest {
            agent_id: self.agent_id.clone(),
            name: name.to_owned(),
            endpoint: format!("http://127.0.0.1:9/{}/mcp", self.agent_id),
            labels: HashMap::from([("gen".to_owned(), generation.to_string())]),
            tools,
            ..RegisterAgentRequest::default()
        }
    }
}

// === impl RecordedAgent ===

impl RecordedAgent {
    /// Starts the agent against `registry` through a new link of its own.
    pub async fn start(spec: AgentSpec, registry: &str, history: &History, seed: u64) -> Self {
        let upstream = registry.parse().expect("registry address");
        let link = FaultProxy::start(upstream, seed).await.expect("start the agent's link");
        let stop = CancellationToken::new();
        let session = Session {
            history: history.clone(),
            addr: link.addr().to_string(),
            rng: StdRng::seed_from_u64(seed),
            generation: 0,
            registered: false,
            applied: 0,
            sequence: 0,
            spec: spec.clone(),
        };
        let task = tokio::spawn(session.run(stop.clone()));
        Self { agent_id: spec.agent_id, link, history: history.clone(), stop, task }
    }

    /// Its link to the registry.
    pub fn link(&self) -> &FaultProxy {
        &self.link
    }

    /// A crash: the agent stops at once and its connections are reset, with
    /// no deregistration.
    pub fn crash(self) {
        let started = SystemTime::now();
        self.task.abort();
        self.link.cut();
        let kind = OpKind::Crash { agent_id: self.agent_id.clone() };
        self.history.record("driver", kind, started, Outcome::Ok);
    }

    /// Stops heartbeating (the registry sees the stream end).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

// === impl AgentChild ===

impl AgentChild {
    /// Starts `date-service` against `registry` through a new link, and
    /// records its registration (whose revision the process does not tell).
    pub async fn start(registry: &str, history: &History, seed: u64) -> Self {
        let upstream = registry.parse().expect("registry address");
        let link = FaultProxy::start(upstream, seed).await.expect("start the agent's link");
        let through = link.addr().to_string();
        let started = SystemTime::now();
        let process = tokio::task::spawn_blocking(move || {
            AgentProcess::spawn_with("date-service", &[("SWITCHBOARD_REGISTRY", &through)])
        })
        .await
        .expect("start date-service");
        let agent_id = process.agent_id.clone();
        let kind = OpKind::Register { agent_id: agent_id.clone() };
        history.record(
            "date-service",
            kind,
            started,
            Outcome::Written { revision: 0, epoch: "".into() },
        );
        Self { agent_id, link, process }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(i32::try_from(self.process.child.id()).expect("pid"))
    }

    /// SIGKILL, recorded as a crash.
    pub async fn crash(self, history: &History) {
        let started = SystemTime::now();
        let process = self.process;
        tokio::task::spawn_blocking(move || process.kill()).await.expect("kill");
        let kind = OpKind::Crash { agent_id: self.agent_id };
        history.record("driver", kind, started, Outcome::Ok);
    }
}

// === impl Session ===

impl Session {
    async fn run(mut self, stop: CancellationToken) {
        let mut attempt = 0u32;
        loop {
            let channel = match switchboard_client::connect_lazy(&self.addr) {
                Ok(channel) => channel,
                Err(_) => return,
            };
            if !self.registered {
                self.register(channel.clone()).await;
            }
            if self.registered {
                match self.heartbeat(channel, &stop, &mut attempt).await {
                    Ended::Stopped => return,
                    Ended::Reregister => self.registered = false,
                    Ended::Retry => {}
                }
            }
            let cap = BACKOFF_CAP.min(Duration::from_millis(20) * 2u32.pow(attempt.min(5)));
            attempt += 1;
            let pause = self.rng.random_range(Duration::ZERO..=cap);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    async fn register(&mut self, channel: Channel) {
        self.generation += 1;
        let request = self.spec.registration(self.generation);
        let mut client = RegistryServiceClient::new(channel);
        let invoked = SystemTime::now();
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.register_agent(request)).await;
        let kind = OpKind::Register { agent_id: self.spec.agent_id.clone() };
        let client_name = self.spec.agent_id.clone();
        match answer {
            Ok(Ok(response)) => {
                let response = response.into_inner();
                let result =
                    Outcome::Written { revision: response.revision, epoch: response.store_epoch };
                let op = self.history.record(&client_name, kind, invoked, result);
                self.registered = true;
                self.applied = response.resolution_revision;
                self.push(&response.resolutions, response.resolution_revision, op.completed_at);
            }
            Ok(Err(status)) => {
                self.history.record(&client_name, kind, invoked, Outcome::failed(&status));
            }
            Err(_) => {
                let status = tonic::Status::deadline_exceeded("no answer in time");
                self.history.record(&client_name, kind, invoked, Outcome::failed(&status));
            }
        }
    }

    /// Heartbeats on one stream until it fails, stalls, or the registry
    /// asks for a registration.
    async fn heartbeat(
        &mut self,
        channel: Channel,
        stop: &CancellationToken,
        attempt: &mut u32,
    ) -> Ended {
        let (outgoing, requests) = mpsc::channel(16);
        let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
        let mut client = HeartbeatServiceClient::new(channel);
        let mut sent: BTreeMap<u64, SystemTime> = BTreeMap::new();
        let opened = tokio::time::timeout(CALL_TIMEOUT, client.stream_heartbeats(stream)).await;
        let Ok(Ok(response)) = opened else { return Ended::Retry };
        let mut inbound = response.into_inner();
        let stall = (self.spec.every * 5).max(Duration::from_millis(1000));
        let mut last_heard = Instant::now();
        let mut ticks = tokio::time::interval(self.spec.every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let heartbeat = self.next_heartbeat();
                    sent.insert(heartbeat.sequence, SystemTime::now());
                    // Forget heartbeats that will never be answered.
                    while sent.len() > 64 {
                        sent.pop_first();
                    }
                    if outgoing.try_send(heartbeat).is_err() {
                        return Ended::Retry;
                    }
                }
                message = inbound.message() => {
                    let message = match message {
                        Ok(Some(response)) => response.message,
                        Ok(None) | Err(_) => return Ended::Retry,
                    };
                    last_heard = Instant::now();
                    match message {
                        Some(Message::Ack(ack)) => {
                            *attempt = 0;
                            if let Some(invoked) = sent.remove(&ack.sequence) {
                                let kind = OpKind::HeartbeatAck {
                                    agent_id: self.spec.agent_id.clone(),
                                    sequence: ack.sequence,
                                    status: ack.status(),
                                };
                                self.history.record(&self.spec.agent_id, kind, invoked, Outcome::Ok);
                            }
                        }
                        Some(Message::Resolution(update)) => {
                            self.applied = update.resolution_revision;
                            self.push(&update.resolutions, update.resolution_revision, SystemTime::now());
                        }
                        Some(Message::Control(control)) => {
                            if control.action() == ControlAction::Reregister {
                                return Ended::Reregister;
                            }
                            return Ended::Retry;
                        }
                        None => {}
                    }
                }
                () = tokio::time::sleep_until(last_heard + stall) => return Ended::Retry,
                () = stop.cancelled() => return Ended::Stopped,
            }
        }
    }

    fn next_heartbeat(&mut self) -> StreamHeartbeatsRequest {
        self.sequence += 1;
        StreamHeartbeatsRequest {
            agent_id: self.spec.agent_id.clone(),
            sequence: self.sequence,
            applied_resolution_revision: self.applied,
            ..StreamHeartbeatsRequest::default()
        }
    }

    /// Records wiring the agent received, if it has dependencies.
    fn push(&self, resolutions: &[ToolResolution], revision: u64, at: SystemTime) {
        if self.spec.depends_on.is_none() {
            return;
        }
        let providers = resolutions
            .iter()
            .flat_map(|tool| &tool.dependencies)
            .flat_map(|dependency| &dependency.providers)
            .map(|p| (p.agent_id.clone(), AgentStatus::try_from(p.status).unwrap_or_default()))
            .collect();
        let kind = OpKind::Push {
            agent_id: self.spec.agent_id.clone(),
            resolution_revision: revision,
            providers,
        };
        self.history.record(&self.spec.agent_id, kind, at, Outcome::Ok);
    }
}
