//! `rewire --dependents N`: one more provider of a capability that N
//! dependents share (one spec, one tool each), one join at a time.
//!
//! Each round registers a provider and records two figures: the writer's
//! acknowledgement (RegisterAgent sent → answered) and the time until every
//! one of the N dependents has received, on its own heartbeat stream, the
//! pushed wiring naming that provider (RegisterAgent sent → the last
//! dependent's push received). The provider then deregisters and the round
//! ends once every dependent was pushed the wiring without it, so rounds
//! never overlap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{DeregisterAgentRequest, ResolutionUpdate, StreamHeartbeatsRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::error::{BenchError, BenchResult};
use crate::fixture::{register_all, run_tag};
use crate::helpers::{dependent_request, provider_request, providers};
use crate::phase::wait_until;
use crate::report::{Report, Row};
use crate::stats::Latency;
use crate::target::RegistryTarget;

use super::super::Ctx;

/// Longest wait for every dependent's push of one change.
const PUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for every dependent's stream to be bound.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a dependent heartbeats: well inside the default liveness
/// timeout, rare enough that heartbeats are not the load being measured.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// Registrations in flight while the dependents register.
const REGISTER_CONCURRENCY: usize = 64;

/// What the dependents wait for in the current round.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// A wiring that names this provider.
    Joined(String),
    /// A wiring without any provider.
    Left,
}

/// The round every dependent stream watches, and where it reports.
struct Round {
    /// Round number and what ends it.
    expect: Mutex<(u64, Expect)>,
    /// Dependents that received the round's push.
    received: AtomicUsize,
    /// When the last of them did, as nanoseconds after `epoch`.
    last_nanos: AtomicU64,
    epoch: Instant,
    /// Streams that got their first ack.
    ready: AtomicUsize,
}

/// Runs the fan-out rounds for each dependent count.
pub(crate) async fn run(ctx: &Ctx<'_>, report: &mut Report, counts: &[usize]) -> BenchResult<()> {
    let options = ctx.options;
    let rounds = options.iterations.unwrap_or(if options.smoke { 3 } else { 20 });
    for &count in counts {
        let target = ctx.target(&[]).await?;
        let (ack, pushed) = fan_out(ctx, &target, count, rounds).await?;
        let stats = target.stats();
        report.rows.push(
            Row::samples(format!("provider joins, {count} dependents → acknowledged"), &ack)
                .with("dependents", count as u64),
        );
        if count > 0 {
            report.rows.push(
                Row::samples(
                    format!("provider joins, {count} dependents → every one pushed"),
                    &pushed,
                )
                .with("dependents", count as u64)
                .with_registry(stats),
            );
        }
        target.shutdown().await;
    }
    report.note(
        "rewire --dependents: N dependents of one capability (one tool, one shared spec) on their \
         own heartbeat streams; per round one provider registers: acknowledged = RegisterAgent \
         sent → answered; every one pushed = RegisterAgent sent → the last dependent received the \
         pushed wiring naming it. A fresh registry per N",
    );
    Ok(())
}

/// Registers `count` dependents, opens their streams and runs `rounds`
/// joins; returns the acknowledgement and the all-pushed latencies.
async fn fan_out(
    ctx: &Ctx<'_>,
    target: &RegistryTarget,
    count: usize,
    rounds: usize,
) -> BenchResult<(Latency, Latency)> {
    let tag = run_tag();
    let capability = format!("bench.fanout.{tag}");
    let channels = target.channels(ctx.options.connections_for(count, 2)).await?;
    ctx.progress.say(format!("registering {count} dependents of {capability}"));
    let requests: Vec<_> = (0..count)
        .map(|i| dependent_request(&format!("bench-fandep-{tag}-{i}"), &capability))
        .collect();
    let ids: Vec<String> = requests.iter().map(|r| r.agent_id.clone()).collect();
    if count > 0 {
        register_all(&channels, requests, REGISTER_CONCURRENCY, || {}).await?;
    }
    let round = Arc::new(Round {
        expect: Mutex::new((0, Expect::Left)),
        received: AtomicUsize::new(0),
        last_nanos: AtomicU64::new(0),
        epoch: Instant::now(),
        ready: AtomicUsize::new(0),
    });
    ctx.progress
        .say(format!("opening {count} heartbeat streams over {} connections", channels.len()));
    let streams: Vec<Stream> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            Stream::start(channels[i % channels.len()].clone(), id.clone(), round.clone())
        })
        .collect();
    wait_until("dependents' first acks", &round.ready, count, READY_TIMEOUT).await?;
    let mut registry = RegistryServiceClient::new(channels[0].clone());
    let (mut ack, mut pushed) = (Latency::new(), Latency::new());
    ctx.progress.say(format!("{rounds} provider joins with {count} dependents"));
    for i in 0..rounds {
        let provider = format!("bench-fanprov-{tag}-{i}");
        round.begin(2 * i as u64 + 1, Expect::Joined(provider.clone()));
        let sent = Instant::now();
        registry
            .register_agent(provider_request(&provider, &capability))
            .await
            .map_err(|s| BenchError::rpc("registering a provider", s))?;
        ack.record(sent.elapsed());
        wait_until("dependents' join pushes", &round.received, count, PUSH_TIMEOUT).await?;
        if count > 0 {
            pushed.record(round.last_at().saturating_duration_since(sent));
        }
        round.begin(2 * i as u64 + 2, Expect::Left);
        registry
            .deregister_agent(DeregisterAgentRequest { agent_id: provider })
            .await
            .map_err(|s| BenchError::rpc("deregistering a provider", s))?;
        wait_until("dependents' leave pushes", &round.received, count, PUSH_TIMEOUT).await?;
    }
    drop(streams);
    Ok((ack, pushed))
}

// === impl Round ===

impl Round {
    fn begin(&self, number: u64, expect: Expect) {
        self.received.store(0, Ordering::Release);
        self.last_nanos.store(0, Ordering::Release);
        *self.expect.lock() = (number, expect);
    }

    /// The round number if `update` is what it waits for.
    fn matches(&self, update: &ResolutionUpdate) -> Option<u64> {
        let (number, expect) = &*self.expect.lock();
        let names = providers(update);
        let done = match expect {
            Expect::Joined(provider) => names.contains(&provider.as_str()),
            Expect::Left => names.is_empty(),
        };
        done.then_some(*number)
    }

    fn record(&self, at: Instant) {
        let nanos = u64::try_from(at.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.fetch_max(nanos, Ordering::AcqRel);
        self.received.fetch_add(1, Ordering::AcqRel);
    }

    fn last_at(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_nanos.load(Ordering::Acquire))
    }
}

/// One dependent's heartbeat stream; aborted when dropped.
struct Stream(JoinHandle<()>);

// === impl Stream ===

impl Stream {
    fn start(channel: Channel, agent_id: String, round: Arc<Round>) -> Self {
        Self(tokio::spawn(async move {
            let (outbox, requests) = mpsc::channel(4);
            let sender = tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
                for sequence in 1.. {
                    tick.tick().await;
                    let heartbeat = StreamHeartbeatsRequest {
                        agent_id: agent_id.clone(),
                        sequence,
                        ..StreamHeartbeatsRequest::default()
                    };
                    if outbox.send(heartbeat).await.is_err() {
                        return;
                    }
                }
            });
            let _sender = AbortOnDrop(sender);
            let Ok(response) = HeartbeatServiceClient::new(channel)
                .stream_heartbeats(ReceiverStream::new(requests))
                .await
            else {
                return;
            };
            let mut inbound = response.into_inner();
            let (mut acked, mut last_round) = (false, 0);
            while let Ok(Some(response)) = inbound.message().await {
                match response.message {
                    Some(Message::Ack(_)) if !acked => {
                        acked = true;
                        round.ready.fetch_add(1, Ordering::AcqRel);
                    }
                    Some(Message::Resolution(update)) => {
                        let at = Instant::now();
                        if let Some(number) = round.matches(&update)
                            && number != last_round
                        {
                            last_round = number;
                            round.record(at);
                        }
                    }
                    _ => {}
                }
            }
        }))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
