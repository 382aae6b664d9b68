//! Watch semantics seen by a client: compaction and foreign epochs answered
//! with RESYNC_REQUIRED and a fresh snapshot on the same stream, filters that
//! report agents leaving them, progress bookmarks on idle streams, and
//! invalid filters refused with the field named.

// Helpers outside #[test] functions panic on failure too, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{
    AgentStatus, DeregisterAgentRequest, EventType, GetAgentRequest, ListAgentsRequest,
    RegisterAgentRequest, WatchFilter, WatchRequest, WatchResponse,
};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{
    HeartbeatSession, Started, TestRegistry, View, WatchRecorder, check_stream, eventually, kind,
    list_agents,
};
use tonic::Code;
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(30);
const FOREIGN_EPOCH: &str = "00000000-0000-4000-8000-000000000000";

fn agent(id: &str, capability: &str) -> RegisterAgentRequest {
    RegisterAgentRequest {
        agent_id: id.into(),
        ..common::provider("agent", capability, "1.0.0", &[])
    }
}

/// Registers and returns (revision, epoch).
async fn register(
    client: &mut RegistryServiceClient<Channel>,
    request: RegisterAgentRequest,
) -> (u64, String) {
    let response = client.register_agent(request).await.expect("register").into_inner();
    (response.revision, response.store_epoch)
}

async fn deregister(client: &mut RegistryServiceClient<Channel>, id: &str) -> u64 {
    client
        .deregister_agent(DeregisterAgentRequest { agent_id: id.into() })
        .await
        .expect("deregister")
        .into_inner()
        .revision
}

fn watch(since: u64, epoch: &str, filter: WatchFilter) -> WatchRequest {
    WatchRequest { since_revision: since, store_epoch: epoch.into(), filter: Some(filter) }
}

fn capability(capability: &str) -> WatchFilter {
    WatchFilter { capability: capability.into(), ..WatchFilter::default() }
}

fn status(status: AgentStatus) -> WatchFilter {
    WatchFilter { status: status as i32, ..WatchFilter::default() }
}

fn has(messages: &[WatchResponse], wanted: EventType) -> bool {
    messages.iter().any(|m| kind(m) == wanted)
}

/// The change events (no markers, no bookmarks) as (type, agent id, revision, reason).
fn changes(messages: &[WatchResponse]) -> Vec<(EventType, String, u64, String)> {
    messages
        .iter()
        .filter(|m| {
            !matches!(kind(m), EventType::Snapshot | EventType::EndOfSnapshot | EventType::Bookmark)
        })
        .map(|m| {
            let id = m.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default();
            (kind(m), id, m.revision, m.reason.clone())
        })
        .collect()
}

fn change(
    kind: EventType,
    id: &str,
    revision: u64,
    reason: &str,
) -> (EventType, String, u64, String) {
    (kind, id.to_owned(), revision, reason.to_owned())
}

/// Waits for the snapshot of a resync and checks it against `state` at `revision`.
async fn expect_resync(
    channel: Channel,
    request: WatchRequest,
    reason: &str,
    compact_revision: u64,
    (revision, state): &(u64, View),
) -> WatchRecorder {
    let since = request.since_revision;
    let recorder = WatchRecorder::start(channel, request);
    let messages = recorder
        .wait_until("end of the resync snapshot", DEADLINE, |m| has(m, EventType::EndOfSnapshot))
        .await;
    let marker = &messages[0];
    assert_eq!(kind(marker), EventType::ResyncRequired, "since {since}: {messages:?}");
    assert_eq!(marker.reason, reason, "since {since}");
    assert_eq!(marker.compact_revision, compact_revision, "since {since}");
    let started = Started { since, base: View::new(), filtered: false };
    let checked = check_stream(&messages, &started, u64::MAX).expect("guarantees");
    assert_eq!(checked.revision, *revision, "since {since}: snapshot revision");
    assert_eq!(&checked.view, state, "since {since}: snapshot equals the current state");
    assert!(checked.events.is_empty());
    recorder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_revision_or_a_foreign_epoch_gets_resync_then_a_fresh_snapshot() {
    let config = RegistryConfig { history_max_events: 5, ..RegistryConfig::default() };
    let server = TestRegistry::builder().config(config.clone()).start().await;
    let mut client = server.registry_client().await;
    // 20 mutations: 12 registrations, 4 changes, 4 removals.
    let mut epoch = String::new();
    for i in 0..12 {
        epoch = register(&mut client, agent(&format!("a{i}"), "cap.a")).await.1;
    }
    for i in 0..4 {
        register(&mut client, agent(&format!("a{i}"), "cap.b")).await;
    }
    for i in 4..8 {
        deregister(&mut client, &format!("a{i}")).await;
    }
    let current = list_agents(&mut client, ListAgentsRequest::default()).await;
    assert_eq!(current.0, 20);
    // Five events kept: 16..=20, so a watcher can resume from 15 or later.
    let oldest_kept = 16;

    for since in [1, 2, 10, oldest_kept - 2] {
        let request = watch(since, &epoch, WatchFilter::default());
        expect_resync(server.channel().await, request, "compacted", oldest_kept, &current).await;
    }
    let resumed = WatchRecorder::start(
        server.channel().await,
        watch(oldest_kept - 1, &epoch, WatchFilter::default()),
    );
    let messages = resumed.wait_for_progress(20, DEADLINE).await;
    assert_eq!(
        changes(&messages).iter().map(|c| c.2).collect::<Vec<_>>(),
        (oldest_kept..=20).collect::<Vec<_>>(),
        "the oldest resumable revision replays without a resync"
    );

    // A foreign epoch, even with a revision inside the history.
    let foreign = watch(18, FOREIGN_EPOCH, WatchFilter::default());
    let after_epoch =
        expect_resync(server.channel().await, foreign, "epoch", oldest_kept, &current).await;
    // A revision from the future of this epoch cannot be served either.
    let future =
        WatchRecorder::start(server.channel().await, watch(99, &epoch, WatchFilter::default()));
    let messages =
        future.wait_until("resync snapshot", DEADLINE, |m| has(m, EventType::EndOfSnapshot)).await;
    assert_eq!(kind(&messages[0]), EventType::ResyncRequired);
    assert_eq!(messages[0].reason, "future");

    // The stream stays open after the resync: live events follow.
    let (revision, _) = register(&mut client, agent("late", "cap.a")).await;
    assert_eq!(revision, 21);
    let messages = after_epoch.wait_for_progress(21, DEADLINE).await;
    assert_eq!(changes(&messages)[1..], [change(EventType::Added, "late", 21, "")]);
    assert!(after_epoch.end().is_none());

    // The compacted history is what a restart restores.
    drop((resumed, future, after_epoch, client));
    let dir = server.stop().await;
    let server = TestRegistry::builder().config(config).data_dir(dir).start().await;
    let mut client = server.registry_client().await;
    let current = list_agents(&mut client, ListAgentsRequest::default()).await;
    assert_eq!(current.0, 21);
    // 21 events, five kept: 17..=21.
    let request = watch(oldest_kept - 1, &epoch, WatchFilter::default());
    expect_resync(server.channel().await, request, "compacted", oldest_kept + 1, &current).await;
    let resumed = WatchRecorder::start(
        server.channel().await,
        watch(oldest_kept, &epoch, WatchFilter::default()),
    );
    let messages = resumed.wait_for_progress(21, DEADLINE).await;
    assert_eq!(
        changes(&messages).iter().map(|c| c.2).collect::<Vec<_>>(),
        (oldest_kept + 1..=21).collect::<Vec<_>>()
    );
}

/// Bookmarks every 300 ms, so filtered watchers show progress past events
/// they do not get.
fn bookmarking() -> RegistryConfig {
    RegistryConfig { bookmark_interval: Duration::from_millis(300), ..RegistryConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capability_filter_sees_exactly_its_agents_and_those_that_stop_matching_leave() {
    let server = TestRegistry::builder().config(bookmarking()).start().await;
    let mut client = server.registry_client().await;
    let (_, epoch) = register(&mut client, agent("a1", "cap.a")).await;
    register(&mut client, agent("a2", "cap.a")).await;
    register(&mut client, agent("b1", "cap.b")).await;

    let fresh = WatchRecorder::start(server.channel().await, watch(0, "", capability("cap.a")));
    let snapshot =
        fresh.wait_until("snapshot", DEADLINE, |m| has(m, EventType::EndOfSnapshot)).await;
    let ids: Vec<_> = snapshot
        .iter()
        .filter(|m| kind(m) == EventType::Snapshot)
        .map(|m| m.agent.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert_eq!(snapshot.last().unwrap().revision, 3);

    register(&mut client, agent("a3", "cap.a")).await; // 4
    register(&mut client, agent("b2", "cap.b")).await; // 5
    register(&mut client, agent("a1", "cap.b")).await; // 6: a1 leaves
    register(&mut client, agent("b1", "cap.a")).await; // 7: b1 joins
    let mut a2 = agent("a2", "cap.a");
    a2.labels.insert("zone".into(), "eu".into());
    register(&mut client, a2).await; // 8
    deregister(&mut client, "a2").await; // 9
    deregister(&mut client, "b2").await; // 10
    register(&mut client, agent("a4", "cap.a")).await; // 11

    let messages = fresh.wait_for_progress(11, DEADLINE).await;
    assert_eq!(
        changes(&messages),
        [
            change(EventType::Added, "a3", 4, ""),
            change(EventType::Removed, "a1", 6, "filter"),
            change(EventType::Added, "b1", 7, ""),
            change(EventType::Changed, "a2", 8, ""),
            change(EventType::Removed, "a2", 9, "deregistered"),
            change(EventType::Added, "a4", 11, ""),
        ]
    );
    let wanted = ListAgentsRequest { capability: "cap.a".into(), ..ListAgentsRequest::default() };
    let (revision, state) = list_agents(&mut client, wanted).await;
    let filtered = Started { since: 0, base: View::new(), filtered: true };
    let checked = check_stream(&messages, &filtered, revision).expect("guarantees");
    assert_eq!(checked.view, state);
    assert_eq!(checked.epoch, epoch);
    // What the client held at revision 5, to resume from.
    let at_5 = check_stream(&messages, &filtered, 5).expect("guarantees").view;
    assert_eq!(at_5.keys().collect::<Vec<_>>(), ["a1", "a2", "a3"]);

    // Resumed from 5: the registry cannot know what the client holds, so
    // every agent leaving the filter in the replay is reported.
    let resumed =
        WatchRecorder::start(server.channel().await, watch(5, &epoch, capability("cap.a")));
    let messages = resumed.wait_for_progress(11, DEADLINE).await;
    assert!(!has(&messages, EventType::ResyncRequired));
    assert!(
        changes(&messages).contains(&change(EventType::Removed, "a1", 6, "filter")),
        "{messages:?}"
    );
    let started = Started { since: 5, base: at_5, filtered: true };
    let checked = check_stream(&messages, &started, revision).expect("guarantees");
    assert_eq!(checked.view, state, "the resumed view converges");
}

async fn status_of(client: &mut RegistryServiceClient<Channel>, id: &str) -> AgentStatus {
    let request = GetAgentRequest { agent_id: id.into() };
    client.get_agent(request).await.expect("get agent").into_inner().agent.unwrap().status()
}

/// Opens a heartbeat stream for `id`, waits for its first ack, and breaks
/// it: the registry marks the agent DEGRADED at once.
async fn degrade(server: &TestRegistry, id: &str) {
    let mut session =
        HeartbeatSession::open(server.channel().await, id, Duration::from_secs(1)).await;
    session.next(DEADLINE).await.expect("first ack");
    session.abort();
    let client = server.registry_client().await;
    eventually(&format!("{id} degraded"), DEADLINE, || {
        let mut client = client.clone();
        async move { (status_of(&mut client, id).await == AgentStatus::Degraded).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_filter_follows_agents_in_and_out_of_the_status() {
    let server = TestRegistry::builder().config(bookmarking()).start().await;
    let mut client = server.registry_client().await;
    register(&mut client, agent("x", "cap.a")).await; // 1
    register(&mut client, agent("y", "cap.a")).await; // 2
    let healthy =
        WatchRecorder::start(server.channel().await, watch(0, "", status(AgentStatus::Healthy)));
    let degraded =
        WatchRecorder::start(server.channel().await, watch(0, "", status(AgentStatus::Degraded)));
    for watcher in [&healthy, &degraded] {
        watcher.wait_until("snapshot", DEADLINE, |m| has(m, EventType::EndOfSnapshot)).await;
    }

    degrade(&server, "x").await; // 3: x DEGRADED
    register(&mut client, agent("x", "cap.a")).await; // 4: registering again revives it
    assert_eq!(status_of(&mut client, "x").await, AgentStatus::Healthy);
    deregister(&mut client, "y").await; // 5

    let messages = healthy.wait_for_progress(5, DEADLINE).await;
    assert_eq!(
        changes(&messages),
        [
            change(EventType::Removed, "x", 3, "filter"),
            change(EventType::Added, "x", 4, ""),
            change(EventType::Removed, "y", 5, "deregistered"),
        ]
    );
    let messages_h = messages;
    let messages = degraded.wait_for_progress(5, DEADLINE).await;
    assert_eq!(
        changes(&messages),
        [change(EventType::Added, "x", 3, ""), change(EventType::Removed, "x", 4, "filter")]
    );
    let added = messages.iter().find(|m| kind(m) == EventType::Added).unwrap();
    assert_eq!(added.agent.as_ref().unwrap().status(), AgentStatus::Degraded);

    for (filter, messages) in
        [(AgentStatus::Healthy, messages_h), (AgentStatus::Degraded, messages)]
    {
        let wanted = ListAgentsRequest { status: filter as i32, ..ListAgentsRequest::default() };
        let (revision, state) = list_agents(&mut client, wanted).await;
        let started = Started { since: 0, base: View::new(), filtered: true };
        let checked = check_stream(&messages, &started, revision).expect("guarantees");
        assert_eq!(checked.view, state, "{filter:?} watcher");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_filter_is_refused_naming_the_field() {
    let server = TestRegistry::start().await;
    let mut client = WatchServiceClient::new(server.channel().await);
    let cases = [
        (capability("Bad Cap!"), "filter.capability"),
        (WatchFilter { name: "UPPER".into(), ..WatchFilter::default() }, "filter.name"),
        (WatchFilter { tag: "no spaces".into(), ..WatchFilter::default() }, "filter.tag"),
        (WatchFilter { status: 99, ..WatchFilter::default() }, "filter.status"),
    ];
    for (filter, field) in cases {
        let status = client
            .watch(watch(0, "", filter.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{filter:?} accepted"));
        assert_eq!(status.code(), Code::InvalidArgument, "{filter:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    // The server is unharmed.
    let recorder =
        WatchRecorder::start(server.channel().await, watch(0, "", WatchFilter::default()));
    recorder.wait_until("snapshot", DEADLINE, |m| has(m, EventType::EndOfSnapshot)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watchers_get_bookmarks_carrying_the_current_revision() {
    let config = RegistryConfig {
        bookmark_interval: Duration::from_millis(200),
        ..RegistryConfig::default()
    };
    let server = TestRegistry::builder().config(config).start().await;
    let mut client = server.registry_client().await;
    let (_, epoch) = register(&mut client, agent("a1", "cap.a")).await;
    register(&mut client, agent("a2", "cap.a")).await;

    let all = WatchRecorder::start(server.channel().await, watch(0, "", WatchFilter::default()));
    let other = WatchRecorder::start(server.channel().await, watch(0, "", capability("cap.other")));
    let resumed =
        WatchRecorder::start(server.channel().await, watch(1, &epoch, WatchFilter::default()));
    let bookmarks = |messages: &[WatchResponse]| -> Vec<u64> {
        messages.iter().filter(|m| kind(m) == EventType::Bookmark).map(|m| m.revision).collect()
    };
    for watcher in [&all, &other, &resumed] {
        let messages =
            watcher.wait_until("three bookmarks", DEADLINE, |m| bookmarks(m).len() >= 3).await;
        assert!(bookmarks(&messages).iter().all(|&r| r == 2), "{messages:?}");
        assert!(messages.iter().all(|m| m.store_epoch == epoch));
    }

    // A change the filtered watcher does not get still moves its bookmarks.
    let (_, state) = list_agents(&mut client, ListAgentsRequest::default()).await;
    let at_1: View = state.into_iter().filter(|(id, _)| id == "a1").collect();
    register(&mut client, agent("a3", "cap.a")).await; // 3
    let cases = [
        (&all, Started { since: 0, base: View::new(), filtered: false }, vec!["a1", "a2", "a3"]),
        (&other, Started { since: 0, base: View::new(), filtered: true }, vec![]),
        (&resumed, Started { since: 1, base: at_1, filtered: false }, vec!["a1", "a2", "a3"]),
    ];
    for (watcher, started, expected) in cases {
        let messages =
            watcher.wait_until("a bookmark at 3", DEADLINE, |m| bookmarks(m).contains(&3)).await;
        let checked = check_stream(&messages, &started, u64::MAX).expect("guarantees");
        assert_eq!(checked.revision, 3);
        assert_eq!(checked.view.keys().map(String::as_str).collect::<Vec<_>>(), expected);
    }
}
