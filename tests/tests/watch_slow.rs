//! A watcher that stops reading never holds others back: once it has had
//! something to send that its connection took none of for
//! `slow_watcher_timeout`, it is ended with a resumable status and leaves the
//! `watchers` gauge (it holds no queue and no task, only a cursor), and the
//! watchers that do read get every event in order.
//!
//! A client that never reads still absorbs data in HTTP/2 flow-control
//! windows (the client's receive window, the server's send buffer) before the
//! registry stops being asked for more. So the stalled watcher connects with
//! HTTP/2's initial 64 KiB windows (hyper's client defaults are megabytes),
//! the reading one with very large ones (so a scheduling hiccup in the test
//! cannot make it look slow), and every event carries an ~8 KiB agent, so a
//! few dozen events fill the stalled path.

// Helpers outside #[test] functions panic on failure too, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use futures::future::join_all;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{
    EventType, RegisterAgentRequest, Tool, WatchFilter, WatchRequest, WatchResponse,
};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{
    Started, TestRegistry, View, WatchRecorder, check_stream, eventually, kind, resume_revision,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

const EVENTS: usize = 300;
const DEADLINE: Duration = Duration::from_secs(60);
const SMALL_WINDOW: u32 = 65_535;
const LARGE_WINDOW: u32 = 64 * 1024 * 1024;

fn bulky(i: usize) -> RegisterAgentRequest {
    let tool = |n: usize| Tool {
        name: format!("t{n}"),
        capability: "bulk".into(),
        version: "1.0.0".into(),
        description: "x".repeat(4000),
        ..Tool::default()
    };
    RegisterAgentRequest {
        agent_id: format!("bulky-{i}"),
        tools: vec![tool(0), tool(1)],
        ..common::provider("bulky", "bulk", "1.0.0", &[])
    }
}

async fn channel(server: &TestRegistry, window: u32) -> Channel {
    Endpoint::from_shared(format!("http://{}", server.addr))
        .expect("uri")
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .connect()
        .await
        .expect("connect")
}

/// The value of an unlabelled sample in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A few hundred bulky registrations, 16 at a time; returns the last revision.
async fn register_bulky(server: &TestRegistry) -> u64 {
    let registry = server.registry_client().await;
    let mut revision = 0;
    for batch in (0..EVENTS).collect::<Vec<_>>().chunks(16) {
        let calls = batch.iter().map(|&i| {
            let mut client: RegistryServiceClient<Channel> = registry.clone();
            async move { client.register_agent(bulky(i)).await.expect("register").into_inner() }
        });
        for response in join_all(calls).await {
            revision = revision.max(response.revision);
        }
    }
    revision
}

/// Reads a stream to its end: the messages, then the status it ended with.
async fn read_to_end(stream: &mut Streaming<WatchResponse>) -> (Vec<WatchResponse>, Status) {
    let mut received = Vec::new();
    loop {
        match tokio::time::timeout(DEADLINE, stream.message()).await.expect("a message or the end")
        {
            Ok(Some(message)) => received.push(message),
            Ok(None) => panic!("stream ended without a status after {} messages", received.len()),
            Err(status) => return (received, status),
        }
    }
}

fn slow_watcher_config() -> RegistryConfig {
    RegistryConfig { slow_watcher_timeout: Duration::from_millis(300), ..RegistryConfig::default() }
}

fn watch_all() -> WatchRequest {
    WatchRequest { filter: Some(WatchFilter::default()), ..WatchRequest::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_is_ended_resumably_and_never_holds_back_the_others() {
    let server = TestRegistry::builder().config(slow_watcher_config()).start().await;
    let metrics = || server.render_metrics();

    let mut stalled_client = WatchServiceClient::new(channel(&server, SMALL_WINDOW).await);
    let mut stalled = stalled_client.watch(watch_all()).await.expect("watch").into_inner();
    let reader = WatchRecorder::start(channel(&server, LARGE_WINDOW).await, watch_all());
    eventually("both watchers open", DEADLINE, || {
        std::future::ready(
            (metric(&metrics(), "switchboard_registry_watchers") == Some(2.0)).then_some(()),
        )
    })
    .await;

    let revision = register_bulky(&server).await;
    assert_eq!(revision, EVENTS as u64);

    // The reader gets everything, in order, however stuck the other one is.
    let messages = reader.wait_for_progress(revision, DEADLINE).await;
    let fresh = Started { since: 0, base: View::new(), filtered: false };
    let checked = check_stream(&messages, &fresh, revision).expect("guarantees");
    assert_eq!(checked.view.len(), EVENTS);
    assert!(reader.end().is_none());

    // The stalled watcher was ended and its task is gone.
    let text = eventually("the stalled watcher to be dropped", DEADLINE, || {
        let text = metrics();
        let gone = metric(&text, "switchboard_registry_watchers") == Some(1.0);
        std::future::ready(gone.then_some(text))
    })
    .await;
    let disconnects = metric(&text, "switchboard_registry_watch_slow_disconnects_total");
    assert!(disconnects >= Some(1.0), "{text}");

    // Reading at last: what was queued, in order, then UNAVAILABLE naming
    // the last revision received.
    let (received, end) = read_to_end(&mut stalled).await;
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    let checked = check_stream(&received, &fresh, u64::MAX).expect("guarantees");
    let last = received.last().expect("some messages").revision;
    assert!(last < revision, "the stalled watcher cannot have kept up");
    assert_eq!(checked.revision, last);
    assert_eq!(resume_revision(&end), Some(last), "{end:?}");
    assert!(end.message().contains(&format!("resume from revision {last}")), "{end:?}");
    assert!(received.iter().all(|m| kind(m) != EventType::Bookmark || m.revision <= last));

    // Once both are gone, nothing is left behind.
    drop((stalled, stalled_client, reader));
    eventually("no watcher left", DEADLINE, || {
        std::future::ready(
            (metric(&metrics(), "switchboard_registry_watchers") == Some(0.0)).then_some(()),
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_stalled_in_its_replay_or_its_snapshot_is_told_where_to_resume() {
    let server = TestRegistry::builder().config(slow_watcher_config()).start().await;
    let metrics = || server.render_metrics();
    let revision = register_bulky(&server).await;
    let epoch = server.registry().snapshot().epoch.to_string();

    // Resuming from revision 1: a replay of every other bulky event.
    let mut replay_client = WatchServiceClient::new(channel(&server, SMALL_WINDOW).await);
    let resume = WatchRequest { since_revision: 1, store_epoch: epoch, ..watch_all() };
    let mut replaying = replay_client.watch(resume).await.expect("watch").into_inner();
    // From 0: a snapshot of every bulky agent.
    let mut snapshot_client = WatchServiceClient::new(channel(&server, SMALL_WINDOW).await);
    let mut snapshotting = snapshot_client.watch(watch_all()).await.expect("watch").into_inner();
    eventually("both stalled watchers to be dropped", DEADLINE, || {
        let text = metrics();
        let done = metric(&text, "switchboard_registry_watchers") == Some(0.0)
            && metric(&text, "switchboard_registry_watch_slow_disconnects_total") == Some(2.0);
        std::future::ready(done.then_some(()))
    })
    .await;

    // The replay got part of the way: it resumes from where it stopped.
    let (received, end) = read_to_end(&mut replaying).await;
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    let revisions: Vec<u64> = received.iter().map(|m| m.revision).collect();
    let last = *revisions.last().expect("some events");
    assert_eq!(revisions, (2..=last).collect::<Vec<_>>(), "the replay in order, no gap");
    assert!(last < revision);
    assert_eq!(resume_revision(&end), Some(last), "{end:?}");

    // An unfinished snapshot is worth nothing: it starts over from 0.
    let (received, end) = read_to_end(&mut snapshotting).await;
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert!(!received.is_empty() && received.len() < EVENTS);
    assert!(received.iter().all(|m| kind(m) == EventType::Snapshot));
    assert_eq!(resume_revision(&end), Some(0), "{end:?}");
}
