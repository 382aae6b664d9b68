//! Several registry replicas on one etcd prefix (a real 3-member etcd
//! cluster), each applying the store's ordered feed: a write on one is
//! visible on every other at the same revision (GetAgent, ListAgents,
//! Watch); replicas racing on the same agents all commit, in one dense
//! order, with every acknowledged write in etcd and no revision seen twice;
//! a watcher resumes on another replica from the revision it saw, with no
//! gap and no duplicate (or a resync when that replica no longer holds it);
//! wiring crosses replicas both ways (a provider joining on one reaches a
//! dependent streaming to another, and so does its removal); exactly one
//! replica is the sweeper, another takes over when it stops, and only the
//! sweeper tracks (and expires, once) an agent no replica owns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{
    EventType, GetAgentRequest, ListAgentsRequest, RegisterAgentRequest, ResolutionUpdate,
    WatchRequest,
};
use switchboard_registry::store::{EtcdStore, Store};
use switchboard_registry::{RegistryConfig, RegistryError, RunningRegistry, StoreSpec};
use switchboard_tests::etcd::EtcdCluster;
use switchboard_tests::{
    HeartbeatSession, Started, View, WatchRecorder, check_stream, eventually, list_agents,
};
use tonic::transport::Channel;

const ANY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const PREFIX: &str = "/switchboard";
/// Generous bound for what should happen "at once".
const SOON: Duration = Duration::from_secs(15);

async fn replica(cluster: &EtcdCluster) -> RunningRegistry {
    replica_with(cluster, RegistryConfig::default()).await
}

async fn replica_with(cluster: &EtcdCluster, config: RegistryConfig) -> RunningRegistry {
    switchboard_tests::init_logging();
    let store = StoreSpec::Etcd { config: cluster.config(), prefix: PREFIX.to_owned() };
    switchboard_registry::serve(config, store, ANY, ANY).await.expect("registry replica on etcd")
}

async fn replicas(cluster: &EtcdCluster, n: usize) -> Vec<RunningRegistry> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(replica(cluster).await);
    }
    all
}

async fn client(running: &RunningRegistry) -> RegistryServiceClient<Channel> {
    let channel = switchboard_client::connect(&running.grpc_addr.to_string()).await.unwrap();
    RegistryServiceClient::new(channel)
}

async fn channel(running: &RunningRegistry) -> Channel {
    switchboard_client::connect(&running.grpc_addr.to_string()).await.unwrap()
}

/// Waits until every replica's snapshot is at `revision`.
async fn converged(all: &[RunningRegistry], revision: u64) {
    eventually(&format!("every replica at revision {revision}"), SOON, || async {
        all.iter().all(|r| r.registry.snapshot().revision == revision).then_some(())
    })
    .await;
}

fn everything() -> WatchRequest {
    WatchRequest::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_is_seen_by_every_other_at_the_same_revision() {
    let cluster = EtcdCluster::start().await;
    let all = replicas(&cluster, 3).await;
    let epoch = all[0].registry.snapshot().epoch.clone();
    for other in &all[1..] {
        assert_eq!(other.registry.snapshot().epoch, epoch, "one store, one epoch");
    }
    let watch = WatchRecorder::start(channel(&all[2]).await, everything());
    // Its (empty) snapshot first: every change after it is an event.
    watch.wait_for_progress(0, SOON).await;

    let weather = client(&all[0])
        .await
        .register_agent(common::provider("weather", "weather", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner();
    converged(&all, weather.revision).await;
    for other in &all[1..] {
        let got = client(other)
            .await
            .get_agent(GetAgentRequest { agent_id: weather.agent_id.clone() })
            .await
            .expect("the agent registered on A is on every replica")
            .into_inner();
        let agent = got.agent.unwrap();
        assert_eq!(agent.mod_revision, weather.revision);
        assert_eq!(agent.tools[0].version, "1.0.0");
    }

    // A change on B and a removal on C: each made on its replica's latest
    // snapshot, each seen everywhere.
    let labels = HashMap::from([("zone".to_owned(), "eu".to_owned())]);
    let labelled = all[1].registry.set_labels(&weather.agent_id, labels.clone()).await.unwrap();
    assert_eq!(labelled, weather.revision + 1, "revisions stay one dense sequence");
    converged(&all, labelled).await;
    assert_eq!(all[2].registry.snapshot().agents[&weather.agent_id].labels, labels);
    let removed = all[2].registry.deregister(&weather.agent_id).await.unwrap();
    assert_eq!(removed, labelled + 1);
    converged(&all, removed).await;

    let mut views = Vec::new();
    for running in &all {
        views.push(list_agents(&mut client(running).await, ListAgentsRequest::default()).await);
    }
    assert!(views.iter().all(|(revision, view)| *revision == removed && view.is_empty()));

    let messages = watch.wait_for_progress(removed, SOON).await;
    let started = Started { since: 0, base: View::new(), filtered: false };
    let checked = check_stream(&messages, &started, removed).expect("a clean watch stream");
    let kinds: Vec<(EventType, u64)> =
        checked.events.iter().map(|m| (switchboard_tests::kind(m), m.revision)).collect();
    assert_eq!(
        kinds,
        [
            (EventType::Added, weather.revision),
            (EventType::Changed, labelled),
            (EventType::Removed, removed)
        ],
        "C's watcher saw A's, B's and its own change, in order"
    );
}

/// One acknowledged write of the race.
#[derive(Debug, Clone)]
struct Acked {
    revision: u64,
    agent_id: String,
    kind: EventType,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_commit_every_acknowledged_write_in_one_order() {
    let cluster = EtcdCluster::start().await;
    let all = replicas(&cluster, 2).await;
    let watches: Vec<WatchRecorder> = {
        let mut watches = Vec::new();
        for running in &all {
            watches.push(WatchRecorder::start(channel(running).await, everything()));
        }
        watches
    };
    const IDS: usize = 4;
    const ROUNDS: usize = 8;
    let mut tasks = Vec::new();
    for (index, running) in all.iter().enumerate() {
        for id in 0..IDS {
            let registry = running.registry.clone();
            tasks.push(tokio::spawn(async move {
                let agent_id = format!("race-{id}");
                let mut acked = Vec::new();
                for round in 0..ROUNDS {
                    match (round + index) % 3 {
                        0 => {
                            let request = RegisterAgentRequest {
                                agent_id: agent_id.clone(),
                                ..common::provider(
                                    "race",
                                    "race",
                                    &format!("1.{index}.{round}"),
                                    &[],
                                )
                            };
                            let done = registry.register(request).await.expect("registered");
                            if done.changed {
                                let kind = if done.created {
                                    EventType::Added
                                } else {
                                    EventType::Changed
                                };
                                acked.push(Acked {
                                    revision: done.revision,
                                    agent_id: agent_id.clone(),
                                    kind,
                                });
                            }
                        }
                        1 => {
                            let labels =
                                HashMap::from([("by".to_owned(), format!("{index}-{round}"))]);
                            match registry
                                .set_labels_as(&agent_id, labels, Default::default())
                                .await
                            {
                                Ok((revision, true)) => acked.push(Acked {
                                    revision,
                                    agent_id: agent_id.clone(),
                                    kind: EventType::Changed,
                                }),
                                Ok((_, false)) | Err(RegistryError::AgentNotFound(_)) => {}
                                Err(error) => panic!("set labels: {error}"),
                            }
                        }
                        _ => match registry.deregister(&agent_id).await {
                            Ok(revision) => acked.push(Acked {
                                revision,
                                agent_id: agent_id.clone(),
                                kind: EventType::Removed,
                            }),
                            Err(RegistryError::AgentNotFound(_)) => {}
                            Err(error) => panic!("deregister: {error}"),
                        },
                    }
                }
                acked
            }));
        }
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    let last = acked.iter().map(|a| a.revision).max().expect("some writes committed");
    converged(&all, last).await;

    // No revision was given twice.
    let mut by_revision: BTreeMap<u64, Acked> = BTreeMap::new();
    for write in &acked {
        let twice = by_revision.insert(write.revision, write.clone());
        assert!(twice.is_none(), "revision {} acknowledged twice", write.revision);
    }

    // Every acknowledged write is in etcd, as acknowledged.
    let reader = EtcdStore::open(cluster.config(), PREFIX).await.unwrap();
    let stored = reader.load().await.unwrap();
    assert_eq!(stored.revision, last, "the store is at the last acknowledged revision");
    let events: BTreeMap<u64, _> = stored.events.iter().map(|e| (e.revision, e)).collect();
    assert_eq!(
        events.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "one event per revision, none missing"
    );
    for (revision, write) in &by_revision {
        let event = events[revision];
        assert_eq!(event.agent.as_ref().unwrap().id, write.agent_id, "revision {revision}");
        assert_eq!(event.r#type(), write.kind, "revision {revision}");
    }

    // Every replica holds the same state, which is what etcd holds.
    let stored_view: View = stored
        .agents
        .into_iter()
        .map(|agent| (agent.id.clone(), switchboard_tests::normalized(agent)))
        .collect();
    // Each agent left is as one replica's write made it: one proposed tool
    // version, and no labels or one proposed label set.
    let proposed = |prefix: &str, value: &str| {
        (0..all.len())
            .any(|index| (0..ROUNDS).any(|round| value == format!("{prefix}{index}.{round}")))
    };
    for agent in stored_view.values() {
        assert!(proposed("1.", &agent.tools[0].version), "a proposed version: {agent:?}");
        let labels: Vec<_> = agent.labels.iter().collect();
        match labels.as_slice() {
            [] => {}
            [(key, value)] => {
                assert_eq!(key.as_str(), "by");
                assert!(proposed("", &value.replace('-', ".")), "proposed labels: {agent:?}");
            }
            _ => panic!("labels nobody proposed: {agent:?}"),
        }
    }
    for (running, watch) in all.iter().zip(&watches) {
        let (revision, view) =
            list_agents(&mut client(running).await, ListAgentsRequest::default()).await;
        assert_eq!(revision, last);
        assert_eq!(without_times(&view), without_times(&stored_view));
        // Each watcher saw every revision exactly once, in order.
        let messages = watch.wait_for_progress(last, SOON).await;
        let started = Started { since: 0, base: View::new(), filtered: false };
        let checked = check_stream(&messages, &started, last).expect("a clean watch stream");
        assert_eq!(without_times(&checked.view), without_times(&stored_view));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_too_large_for_one_transaction_racing_on_two_replicas_lose_nothing() {
    let cluster = EtcdCluster::start().await;
    let all = replicas(&cluster, 2).await;
    // Hundreds of concurrent registrations on each replica: each writer
    // batches them past one etcd transaction (128 operations), while the
    // other replica commits too.
    const EACH: usize = 200;
    let mut tasks = Vec::new();
    for (index, running) in all.iter().enumerate() {
        for i in 0..EACH {
            let registry = running.registry.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("bulk{index}-{i}");
                let done = registry.register(common::provider(&name, "bulk", "1.0.0", &[])).await;
                (done.expect("registered").agent_id, index)
            }));
        }
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.push(task.await.unwrap());
    }
    let reader = EtcdStore::open(cluster.config(), PREFIX).await.unwrap();
    let stored = reader.load().await.unwrap();
    assert_eq!(stored.revision, (2 * EACH) as u64, "one revision per registration");
    let stored_ids: std::collections::BTreeSet<String> =
        stored.agents.iter().map(|agent| agent.id.clone()).collect();
    for (id, index) in &acked {
        assert!(stored_ids.contains(id), "{id}, acknowledged by replica {index}, is not in etcd");
    }
    converged(&all, stored.revision).await;
    for (index, running) in all.iter().enumerate() {
        let snapshot = running.registry.snapshot();
        let ids: std::collections::BTreeSet<String> = snapshot.agents.keys().cloned().collect();
        assert_eq!(ids, stored_ids, "replica {index} holds what etcd holds");
    }
}

/// Views compared without liveness-derived fields.
fn without_times(view: &View) -> View {
    view.iter()
        .map(|(id, agent)| {
            let mut agent = switchboard_tests::normalized(agent.clone());
            agent.status_changed_at = None;
            (id.clone(), agent)
        })
        .collect()
}

fn providers(update: &ResolutionUpdate) -> Vec<String> {
    update.resolutions[0].dependencies[0].providers.iter().map(|p| p.agent_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiring_crosses_replicas_when_a_provider_joins_and_leaves() {
    let cluster = EtcdCluster::start().await;
    let all = replicas(&cluster, 2).await;
    let (a, b) = (&all[0], &all[1]);

    let hello = client(b)
        .await
        .register_agent(common::consumer("hello", "date_service", "^1", &[]))
        .await
        .unwrap()
        .into_inner();
    let mut session =
        HeartbeatSession::open(channel(b).await, &hello.agent_id, Duration::from_millis(200)).await;
    let initial = session.resolution_where(SOON, |_| true).await;
    assert!(providers(&initial).is_empty());

    let date = client(a)
        .await
        .register_agent(common::provider("date", "date_service", "1.2.0", &[]))
        .await
        .unwrap()
        .into_inner();
    let update = session.resolution_where(SOON, |u| !providers(u).is_empty()).await;
    assert_eq!(providers(&update), std::slice::from_ref(&date.agent_id), "B pushed A's provider");
    assert_eq!(update.resolution_revision, date.revision);

    let removed = a.registry.deregister(&date.agent_id).await.unwrap();
    let update = session.resolution_where(SOON, |u| providers(u).is_empty()).await;
    assert_eq!(update.resolution_revision, removed);
    assert!(
        !update.resolutions[0].dependencies[0].reason.is_empty(),
        "the dependent is told why it is unresolved"
    );
}

fn kinds(messages: &[switchboard_proto::v1::WatchResponse]) -> Vec<(EventType, String, u64)> {
    messages
        .iter()
        .map(|m| {
            let id = m.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default();
            (switchboard_tests::kind(m), id, m.revision)
        })
        .filter(|(kind, ..)| !matches!(kind, EventType::Bookmark))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_resumes_on_another_replica_from_the_revision_it_saw() {
    let cluster = EtcdCluster::start().await;
    // B keeps a short history of its own: an old revision is not on it.
    let short = RegistryConfig { history_max_events: 4, ..RegistryConfig::default() };
    let all = vec![replica(&cluster).await, replica_with(&cluster, short).await];
    let (a, b) = (&all[0].registry, &all[1].registry);
    let epoch = a.snapshot().epoch.to_string();
    let provider = |name: &str| common::provider(name, "cap", "1.0.0", &[]);

    let first = WatchRecorder::start(channel(&all[0]).await, everything());
    let mut ids = Vec::new();
    for name in ["a0", "a1", "a2"] {
        ids.push(a.register(provider(name)).await.unwrap().agent_id);
    }
    let messages = first.wait_for_progress(3, SOON).await;
    let started = Started { since: 0, base: View::new(), filtered: false };
    let seen = check_stream(&messages, &started, 3).expect("a clean watch stream");
    assert_eq!((seen.revision, seen.epoch.as_str()), (3, epoch.as_str()));
    drop(first);

    // Changes while the watcher is away, on both replicas.
    let a3 = b.register(provider("a3")).await.unwrap().agent_id;
    assert_eq!(b.deregister(&ids[1]).await.unwrap(), 5);
    let a4 = a.register(provider("a4")).await.unwrap().agent_id;
    converged(&all, 6).await;

    // Resumed on B from what it saw on A: exactly the missed changes.
    let request = WatchRequest { since_revision: 3, store_epoch: epoch.clone(), filter: None };
    let resumed = WatchRecorder::start(channel(&all[1]).await, request);
    let messages = resumed.wait_for_progress(6, SOON).await;
    assert_eq!(
        kinds(&messages),
        [
            (EventType::Added, a3, 4),
            (EventType::Removed, ids[1].clone(), 5),
            (EventType::Added, a4, 6)
        ],
        "no resync, no gap, no duplicate"
    );
    let started = Started { since: 3, base: seen.view, filtered: false };
    let checked = check_stream(&messages, &started, 6).expect("a clean watch stream");
    let (revision, state) =
        list_agents(&mut client(&all[1]).await, ListAgentsRequest::default()).await;
    assert_eq!((checked.revision, &checked.view), (revision, &state));

    // Below what B holds: RESYNC_REQUIRED, then B's snapshot.
    let request = WatchRequest { since_revision: 1, store_epoch: epoch, filter: None };
    let resync = WatchRecorder::start(channel(&all[1]).await, request);
    let messages = resync
        .wait_until("the end of the resync snapshot", SOON, |m| {
            m.iter().any(|m| switchboard_tests::kind(m) == EventType::EndOfSnapshot)
        })
        .await;
    assert_eq!(switchboard_tests::kind(&messages[0]), EventType::ResyncRequired);
    assert_eq!(messages[0].reason, "compacted");
    let started = Started { since: 1, base: View::new(), filtered: false };
    let checked = check_stream(&messages, &started, u64::MAX).expect("a clean resync");
    assert_eq!((checked.revision, checked.view), (revision, state));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_without_an_etcd_quorum_refuse_writes_serve_the_rest_and_recover() {
    let mut cluster = EtcdCluster::start().await;
    let all = replicas(&cluster, 2).await;
    let (a, b) = (&all[0], &all[1]);
    let agent = client(a)
        .await
        .register_agent(common::provider("steady", "steady", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner();
    let mut session =
        HeartbeatSession::open(channel(a).await, &agent.agent_id, Duration::from_millis(100)).await;
    converged(&all, agent.revision).await;

    cluster.kill(1);
    cluster.kill(2);
    for running in &all {
        let reachable = running.registry.store_reachable().expect("etcd reports reachability");
        eventually("the replica to notice etcd is gone", SOON, || {
            std::future::ready((!*reachable.borrow()).then_some(()))
        })
        .await;
    }
    // Writes are refused with a status that says why and invites a retry.
    let refused = client(a)
        .await
        .register_agent(common::provider("late", "late", "1.0.0", &[]))
        .await
        .expect_err("no write without etcd");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("etcd is unreachable"), "{refused:?}");
    // Reads on the other replica, and heartbeats, are still answered.
    let read = client(b)
        .await
        .get_agent(GetAgentRequest { agent_id: agent.agent_id.clone() })
        .await
        .expect("reads are served from memory")
        .into_inner();
    assert_eq!(read.agent.unwrap().status(), switchboard_proto::v1::AgentStatus::Healthy);
    let mut acks = 0;
    while acks < 3 {
        if let Ok(switchboard_proto::v1::stream_heartbeats_response::Message::Ack(_)) =
            session.next(SOON).await
        {
            acks += 1;
        }
    }

    cluster.restart(1).await;
    cluster.restart(2).await;
    let late = eventually("a write to succeed once etcd is back", SOON, || async {
        let mut client = client(a).await;
        let request = common::provider("late", "late", "1.0.0", &[]);
        client.register_agent(request).await.ok().map(|r| r.into_inner())
    })
    .await;
    converged(&all, late.revision).await;
    for running in &all {
        let snapshot = running.registry.snapshot();
        let steady = &snapshot.agents[&agent.agent_id];
        assert_eq!(steady.status(), switchboard_proto::v1::AgentStatus::Healthy, "nobody expired");
        assert!(snapshot.agents.contains_key(&late.agent_id));
    }
}

/// The replicas whose `/metrics` say they are the sweeper, by index.
fn sweepers(all: &[RunningRegistry]) -> Vec<usize> {
    let rendered = all.iter().map(|r| r.registry.render_metrics());
    rendered
        .enumerate()
        .filter(|(_, text)| text.lines().any(|line| line == "switchboard_registry_sweeper 1"))
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_sweeps_unowned_agents_and_another_takes_over_when_it_stops() {
    let cluster = EtcdCluster::start().await;
    let mut config = RegistryConfig::default();
    config.liveness.interval = Duration::from_millis(200);
    config.liveness.degraded_after = Duration::from_secs(1);
    config.liveness.expired_after = Duration::from_secs(2);
    let mut all = Vec::new();
    for _ in 0..3 {
        all.push(replica_with(&cluster, config.clone()).await);
    }
    let first = eventually("exactly one sweeper", SOON, || async {
        let elected = sweepers(&all);
        (elected.len() == 1).then(|| elected[0])
    })
    .await;

    // Registered on the sweeper with no stream: it owns the agent. Once it
    // stops, its lease (ownership and candidacy) is gone: nobody owns it.
    let registered = all[first].registry.register(common::provider("ghost", "cap", "1.0.0", &[]));
    let ghost = registered.await.unwrap().agent_id;
    let survivor = (first + 1) % all.len();
    let watcher = WatchRecorder::start(channel(&all[survivor]).await, everything());
    watcher.wait_for_progress(1, SOON).await;
    converged(&all, 1).await;
    all.remove(first).stop().await.unwrap();

    let next = eventually("another replica took over as sweeper", 2 * SOON, || async {
        let elected = sweepers(&all);
        (elected.len() == 1).then(|| elected[0])
    })
    .await;
    eventually("the unowned agent EXPIRED on every replica", 2 * SOON, || async {
        all.iter()
            .all(|r| {
                let snapshot = r.registry.snapshot();
                let status = snapshot.agents.get(&ghost).map(|agent| agent.status());
                status == Some(switchboard_proto::v1::AgentStatus::Expired)
            })
            .then_some(())
    })
    .await;
    for (i, running) in all.iter().enumerate() {
        let tracked = running.registry.tracks(&ghost);
        assert_eq!(tracked, i == next, "only the sweeper tracks the unowned agent");
    }
    let expired = |messages: &[switchboard_proto::v1::WatchResponse]| {
        let expired = switchboard_proto::v1::AgentStatus::Expired;
        messages
            .iter()
            .filter(|m| m.agent.as_ref().is_some_and(|a| a.id == ghost && a.status() == expired))
            .count()
    };
    let messages = watcher.wait_until("the EXPIRED event", SOON, |m| expired(m) > 0).await;
    let revision = messages.iter().map(|m| m.revision).max().unwrap_or(0);
    // A later write passes through every replica: had a second one expired
    // the agent too, its event would come before this one's.
    let later = all[0].registry.register(common::provider("later", "cap", "1.0.0", &[]));
    later.await.unwrap();
    let messages = watcher.wait_for_progress(revision + 1, SOON).await;
    assert_eq!(expired(&messages), 1, "one EXPIRED event: {:?}", kinds(&messages));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_past_etcds_compaction_catches_up_by_itself() {
    let mut cluster = EtcdCluster::start().await;
    let a = replica(&cluster).await;
    // B talks to the third member only: killing it cuts B off while A and
    // the other two members go on.
    let only = switchboard_etcd::EtcdConfig::new([cluster.endpoint(2)]);
    let store = StoreSpec::Etcd { config: only, prefix: PREFIX.to_owned() };
    let b = switchboard_registry::serve(RegistryConfig::default(), store, ANY, ANY).await.unwrap();
    let all = vec![a, b];
    let provider = |name: &str| common::provider(name, "cap", "1.0.0", &[]);
    all[0].registry.register(provider("before")).await.unwrap();
    converged(&all, 1).await;

    cluster.kill(2);
    let registry = &all[0].registry;
    for name in ["during0", "during1", "during2"] {
        // The kill may cost a leader election, and a write meanwhile gets
        // UNAVAILABLE: retried, as a client does.
        eventually(&format!("registering {name} on A"), SOON, || {
            let request = provider(name);
            async move { registry.register(request).await.ok() }
        })
        .await;
    }
    // etcd forgets the history B's watch would resume from.
    let alive = switchboard_etcd::EtcdConfig::new([cluster.endpoint(0), cluster.endpoint(1)]);
    let etcd = switchboard_etcd::EtcdClient::connect(alive).await.unwrap();
    let (_, now) = etcd.get_prefix(PREFIX.as_bytes()).await.unwrap();
    etcd.compact(now).await.unwrap();
    cluster.restart(2).await;

    converged(&all, 4).await;
    let (_, on_a) = list_agents(&mut client(&all[0]).await, ListAgentsRequest::default()).await;
    let (_, on_b) = list_agents(&mut client(&all[1]).await, ListAgentsRequest::default()).await;
    assert_eq!(without_times(&on_b), without_times(&on_a), "B caught up without a restart");
    // And it follows the feed again afterwards.
    all[0].registry.register(provider("after")).await.unwrap();
    converged(&all, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_past_the_stores_history_loads_the_whole_state_again() {
    let mut cluster = EtcdCluster::start().await;
    // A keeps a short history: the changes B misses are trimmed from etcd.
    let short =
        RegistryConfig { history_max_events: 3, watch_max_lag: 2, ..RegistryConfig::default() };
    let a = replica_with(&cluster, short).await;
    let only = switchboard_etcd::EtcdConfig::new([cluster.endpoint(2)]);
    let store = StoreSpec::Etcd { config: only, prefix: PREFIX.to_owned() };
    let b = switchboard_registry::serve(RegistryConfig::default(), store, ANY, ANY).await.unwrap();
    let all = vec![a, b];
    let provider = |name: &str| common::provider(name, "cap", "1.0.0", &[]);
    let before = all[0].registry.register(provider("before")).await.unwrap();
    converged(&all, 1).await;
    let epoch = all[1].registry.snapshot().epoch.to_string();

    cluster.kill(2);
    let registry = &all[0].registry;
    for name in ["during0", "during1", "during2", "during3", "during4"] {
        eventually(&format!("registering {name} on A"), SOON, || {
            let request = provider(name);
            async move { registry.register(request).await.ok() }
        })
        .await;
    }
    registry.deregister(&before.agent_id).await.unwrap();
    let alive = switchboard_etcd::EtcdConfig::new([cluster.endpoint(0), cluster.endpoint(1)]);
    let etcd = switchboard_etcd::EtcdClient::connect(alive).await.unwrap();
    let (_, now) = etcd.get_prefix(PREFIX.as_bytes()).await.unwrap();
    etcd.compact(now).await.unwrap();
    cluster.restart(2).await;

    converged(&all, 7).await;
    let (_, on_a) = list_agents(&mut client(&all[0]).await, ListAgentsRequest::default()).await;
    let (_, on_b) = list_agents(&mut client(&all[1]).await, ListAgentsRequest::default()).await;
    assert!(!on_b.contains_key(&before.agent_id), "the removal B missed is applied");
    assert_eq!(without_times(&on_b), without_times(&on_a), "B loaded the whole state");
    // A watcher resuming on B from before the cut gets a fresh snapshot.
    let resume = WatchRequest { since_revision: 1, store_epoch: epoch, ..everything() };
    let watch = WatchRecorder::start(channel(&all[1]).await, resume);
    let messages = watch.wait_for_progress(7, SOON).await;
    assert_eq!(messages[0].r#type(), EventType::ResyncRequired, "{:?}", messages[0]);
    // And B follows the feed again.
    all[0].registry.register(provider("after")).await.unwrap();
    converged(&all, 8).await;
}
