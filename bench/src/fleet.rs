//! A fleet of simulated agents, each with its own bidirectional
//! `StreamHeartbeats` stream; the streams are multiplexed over a few HTTP/2
//! connections, as agents behind a sidecar or in one process would be.
//!
//! Each agent keeps one heartbeat in flight: it sends, waits for the ack of
//! that sequence (recording send → ack), then either sends again at once
//! ([`Mode::Saturate`]) or at its next tick ([`Mode::Every`], ticks spread
//! over the interval). Broken streams are reopened with jittered backoff on
//! the next connection (with registry replicas: the next replica, as an SDK
//! given several addresses moves on), so a fleet rides through a registry
//! restart or a replica's death like real agents do. Where each agent's
//! stream last got an ack, and when, is kept for scenarios that follow
//! agents between replicas.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{ControlAction, StreamHeartbeatsRequest};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::phase::{Recorder, wait_until};

/// An ack later than this breaks the stream (and it is reopened).
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How the agents heartbeat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Send the next heartbeat as soon as the previous one is acked.
    Saturate,
    /// Each agent heartbeats once per interval.
    Every(Duration),
}

/// A measurement phase: the mode and where its acks are recorded.
#[derive(Clone)]
pub struct Phase {
    mode: Mode,
    recorder: Arc<Recorder>,
}

/// Counters over the fleet's whole life.
#[derive(Debug, Default)]
pub struct FleetCounters {
    /// Streams reopened after a break.
    pub reconnects: AtomicU64,
    /// Resolution updates pushed to the agents.
    pub pushes: AtomicU64,
    /// Times the registry said "re-register" (it did not know the agent).
    pub reregister: AtomicU64,
    /// Streams that failed to open or broke.
    pub stream_errors: AtomicU64,
    /// Why streams failed or broke, with how often: the mechanism behind
    /// `stream_errors` (a keep-alive timeout reads differently from a reset).
    breaks: Mutex<BTreeMap<String, u64>>,
}

/// Running agents; stop them with [`Fleet::stop`].
pub struct Fleet {
    phase: watch::Sender<Phase>,
    stop: CancellationToken,
    ready: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
    seen: Arc<[Seen]>,
    started: Instant,
    /// Lifetime counters.
    pub counters: Arc<FleetCounters>,
}

/// Where an agent's stream last got an ack, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    /// The index of the connection (in the fleet's list) it acked on.
    pub connection: usize,
    /// When, since the fleet started (`None`: never acked).
    pub acked: Option<Duration>,
}

/// One agent's last ack, shared with the fleet's owner.
#[derive(Debug, Default)]
struct Seen {
    connection: AtomicUsize,
    /// Microseconds since the fleet started, plus one (0: never).
    acked_us: AtomicU64,
}

// === impl Phase ===

impl Phase {
    /// A phase in `mode` whose recorder is paused: the measurement starts it
    /// (send → ack of the same sequence, per acked heartbeat).
    pub fn new(mode: Mode) -> Self {
        Self { mode, recorder: Arc::new(Recorder::paused()) }
    }

    /// Where its acks go.
    pub fn recorder(&self) -> Arc<Recorder> {
        self.recorder.clone()
    }
}

// === impl FleetCounters ===

impl FleetCounters {
    /// Counts one failed or broken stream under `why`.
    fn broke(&self, why: String) {
        if let Ok(mut breaks) = self.breaks.lock() {
            *breaks.entry(why).or_default() += 1;
        }
    }

    /// Every reason streams failed or broke, most frequent first.
    pub fn break_reasons(&self) -> Vec<(String, u64)> {
        let mut reasons: Vec<_> = match self.breaks.lock() {
            Ok(breaks) => breaks.iter().map(|(why, n)| (why.clone(), *n)).collect(),
            Err(_) => Vec::new(),
        };
        reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        reasons
    }
}

// === impl Fleet ===

impl Fleet {
    /// Starts one stream per agent id, agent `i` on `channels[i % len]`,
    /// heartbeating in `mode`. Every agent sends its first heartbeat at once.
    pub fn start(ids: Vec<String>, channels: &[Channel], mode: Mode) -> BenchResult<Self> {
        if channels.is_empty() {
            return Err(BenchError::Option("a fleet needs at least one connection".into()));
        }
        let (phase, phases) = watch::channel(Phase::new(mode));
        let stop = CancellationToken::new();
        let ready = Arc::new(AtomicUsize::new(0));
        let counters = Arc::new(FleetCounters::default());
        let seen: Arc<[Seen]> = ids.iter().map(|_| Seen::default()).collect();
        let shared: Arc<[Channel]> = channels.into();
        let started = Instant::now();
        let tasks = ids
            .into_iter()
            .enumerate()
            .map(|(index, id)| {
                let agent = SimAgent {
                    index,
                    id,
                    channels: shared.clone(),
                    at: index % shared.len(),
                    phases: phases.clone(),
                    stop: stop.clone(),
                    ready: ready.clone(),
                    counters: counters.clone(),
                    seen: seen.clone(),
                    started,
                    sequence: 0,
                };
                tokio::spawn(agent.run())
            })
            .collect();
        Ok(Self { phase, stop, ready, tasks, seen, started, counters })
    }

    /// Time since the fleet started: the clock of [`Home::acked`].
    pub fn clock(&self) -> Duration {
        self.started.elapsed()
    }

    /// Where each agent (in the order of the ids given) last got an ack.
    pub fn homes(&self) -> Vec<Home> {
        self.seen
            .iter()
            .map(|seen| {
                let acked_us = seen.acked_us.load(Ordering::Acquire);
                Home {
                    connection: seen.connection.load(Ordering::Relaxed),
                    acked: acked_us.checked_sub(1).map(Duration::from_micros),
                }
            })
            .collect()
    }

    /// Waits until every agent had its first ack.
    pub async fn wait_ready(&self, timeout: Duration) -> BenchResult<()> {
        wait_until("heartbeat streams to open", &self.ready, self.tasks.len(), timeout).await
    }

    /// Switches every agent to `phase` (agents waiting for a tick re-plan).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Stops every agent (their streams close) and waits for them, bounded.
    pub async fn stop(self) {
        self.stop.cancel();
        let all = futures::future::join_all(self.tasks);
        let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
    }
}

/// One simulated agent.
struct SimAgent {
    index: usize,
    id: String,
    /// Every connection of the fleet; the agent streams on `channels[at]`.
    channels: Arc<[Channel]>,
    at: usize,
    phases: watch::Receiver<Phase>,
    stop: CancellationToken,
    ready: Arc<AtomicUsize>,
    counters: Arc<FleetCounters>,
    seen: Arc<[Seen]>,
    started: Instant,
    sequence: u64,
}

impl SimAgent {
    async fn run(mut self) {
        let mut first = true;
        let mut failures = 0u32;
        while !self.stop.is_cancelled() {
            let opened = self.stream_once(&mut first).await;
            if self.stop.is_cancelled() {
                return;
            }
            self.counters.stream_errors.fetch_add(1, Ordering::Relaxed);
            failures = if opened { 1 } else { failures.saturating_add(1) };
            // The next connection: with replicas, the next replica.
            self.at = (self.at + 1) % self.channels.len();
            // Full jitter, 50 ms doubling up to 1 s.
            let cap = Duration::from_millis(50u64 << failures.min(5)).min(Duration::from_secs(1));
            let delay = cap.mul_f64(rand::random::<f64>());
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One stream's life; returns whether it got at least one ack.
    async fn stream_once(&mut self, first: &mut bool) -> bool {
        let (outbox, requests) = mpsc::channel(4);
        let mut client = HeartbeatServiceClient::new(self.channels[self.at].clone());
        let opening = client.stream_heartbeats(ReceiverStream::new(requests));
        let mut inbound = tokio::select! {
            () = self.stop.cancelled() => return false,
            opened = opening => match opened {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    self.counters.broke(format!("open: {}", described(&status)));
                    return false;
                }
            },
        };
        let mut acked = false;
        let mut next_tick: Option<tokio::time::Instant> = None;
        // The first heartbeat of a stream goes out at once (binds the stream).
        let mut send_now = true;
        loop {
            let phase = self.phases.borrow_and_update().clone();
            if !send_now && let Mode::Every(interval) = phase.mode {
                let tick = *next_tick.get_or_insert_with(|| {
                    tokio::time::Instant::now() + interval.mul_f64(rand::random::<f64>())
                });
                tokio::select! {
                    () = self.stop.cancelled() => return acked,
                    changed = self.phases.changed() => {
                        if changed.is_err() { return acked; }
                        next_tick = None;
                        continue;
                    }
                    // A stream that breaks between heartbeats is reopened at
                    // once, as an SDK reading its stream would.
                    message = inbound.message() => {
                        if matches!(self.incoming(message), Incoming::Broken) { return acked; }
                        continue;
                    }
                    () = tokio::time::sleep_until(tick) => {}
                }
                let now = tokio::time::Instant::now();
                let mut next = tick + interval;
                if next < now {
                    next = now; // late: never burst to catch up
                }
                next_tick = Some(next);
            }
            send_now = false;
            self.sequence += 1;
            let heartbeat = StreamHeartbeatsRequest {
                agent_id: self.id.clone(),
                sequence: self.sequence,
                ..StreamHeartbeatsRequest::default()
            };
            let sent = Instant::now();
            if outbox.send(heartbeat).await.is_err() {
                return acked;
            }
            match self.wait_ack(&mut inbound).await {
                AckWait::Acked => {}
                AckWait::Broken => return acked,
                AckWait::Stopped => return acked,
            }
            phase.recorder.ok(self.index, sent.elapsed());
            if let Some(seen) = self.seen.get(self.index) {
                seen.connection.store(self.at, Ordering::Relaxed);
                let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
                seen.acked_us.store(micros.saturating_add(1), Ordering::Release);
            }
            acked = true;
            if *first {
                *first = false;
                self.ready.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn wait_ack(
        &self,
        inbound: &mut tonic::Streaming<switchboard_proto::v1::StreamHeartbeatsResponse>,
    ) -> AckWait {
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        loop {
            let message = tokio::select! {
                () = self.stop.cancelled() => return AckWait::Stopped,
                () = tokio::time::sleep_until(deadline) => {
                    self.counters.broke("no ack within the ack timeout".to_owned());
                    return AckWait::Broken;
                }
                message = inbound.message() => message,
            };
            match self.incoming(message) {
                Incoming::Ack(sequence) if sequence == self.sequence => return AckWait::Acked,
                Incoming::Ack(_) | Incoming::Other => {}
                Incoming::Broken => return AckWait::Broken,
            }
        }
    }

    /// What a message of the stream means to the agent (pushes are counted).
    fn incoming(
        &self,
        message: Result<Option<switchboard_proto::v1::StreamHeartbeatsResponse>, tonic::Status>,
    ) -> Incoming {
        match message {
            Ok(Some(response)) => match response.message {
                Some(Message::Ack(ack)) => Incoming::Ack(ack.sequence),
                Some(Message::Resolution(_)) => {
                    self.counters.pushes.fetch_add(1, Ordering::Relaxed);
                    Incoming::Other
                }
                Some(Message::Control(control))
                    if control.action == ControlAction::Reregister as i32 =>
                {
                    self.counters.reregister.fetch_add(1, Ordering::Relaxed);
                    self.counters.broke("told to re-register".to_owned());
                    Incoming::Broken
                }
                _ => Incoming::Other,
            },
            Ok(None) => {
                self.counters.broke("ended by the registry".to_owned());
                Incoming::Broken
            }
            Err(status) => {
                self.counters.broke(format!("broke: {}", described(&status)));
                Incoming::Broken
            }
        }
    }
}

/// A status as `code: message: source`, the source naming the transport's
/// reason (a keep-alive timeout, a reset, a closed connection).
fn described(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        text.push_str(&format!(": {error}"));
        source = error.source();
    }
    text
}

enum AckWait {
    Acked,
    Broken,
    Stopped,
}

/// A message of the stream, as the agent sees it.
enum Incoming {
    Ack(u64),
    Other,
    Broken,
}
