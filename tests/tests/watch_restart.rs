//! A watcher resumes across restarts of the registry process — graceful
//! (SIGTERM) and crash (SIGKILL) — with an exact replay: the event history is
//! stored with the state, so a client that comes back with its revision and
//! epoch gets exactly the events it missed, in order, and no resync.

// Helpers outside #[test] functions panic on failure too, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{
    DeregisterAgentRequest, EventType, ListAgentsRequest, RegisterAgentRequest, WatchFilter,
    WatchRequest, WatchResponse,
};
use switchboard_tests::{
    Started, TestRegistry, View, WatchRecorder, check_stream, eventually, kind, list_agents,
    resume_revision,
};
use tonic::Code;
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(30);

type Change = (EventType, String, u64, String);

/// A registry process and a client to it, plus every change made through
/// it as the watch stream must report it.
struct Changes {
    client: RegistryServiceClient<Channel>,
    log: Vec<Change>,
}

impl Changes {
    async fn connect(process: &TestRegistry, log: Vec<Change>) -> (Self, Channel) {
        let channel = process.channel().await;
        (Self { client: RegistryServiceClient::new(channel.clone()), log }, channel)
    }

    async fn register(&mut self, id: &str, zone: &str) -> String {
        let mut request = RegisterAgentRequest {
            agent_id: id.into(),
            ..common::provider("agent", "cap.a", "1.0.0", &[])
        };
        request.labels.insert("zone".into(), zone.into());
        let response = self.client.register_agent(request).await.expect("register").into_inner();
        let kind = if response.created { EventType::Added } else { EventType::Changed };
        self.log.push((kind, id.to_owned(), response.revision, String::new()));
        response.store_epoch
    }

    async fn deregister(&mut self, id: &str) {
        let request = DeregisterAgentRequest { agent_id: id.into() };
        let revision =
            self.client.deregister_agent(request).await.expect("deregister").into_inner().revision;
        self.log.push((EventType::Removed, id.to_owned(), revision, "deregistered".into()));
    }

    fn after(&self, revision: u64) -> Vec<Change> {
        self.log.iter().filter(|c| c.2 > revision).cloned().collect()
    }
}

fn watch(since: u64, epoch: &str) -> WatchRequest {
    WatchRequest {
        since_revision: since,
        store_epoch: epoch.into(),
        filter: Some(WatchFilter::default()),
    }
}

fn changes(messages: &[WatchResponse]) -> Vec<Change> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_resumes_across_sigterm_and_sigkill_restarts_with_exactly_the_missed_events() {
    let process = TestRegistry::builder().child_process(&[]).start().await;
    let (mut changes_made, channel) = Changes::connect(&process, Vec::new()).await;
    let mut epoch = String::new();
    for i in 0..5 {
        epoch = changes_made.register(&format!("a{i}"), "eu").await; // 1..=5
    }
    let first = WatchRecorder::start(channel.clone(), watch(0, ""));
    // Stays open through the graceful restart.
    let open = WatchRecorder::start(channel.clone(), watch(0, ""));
    changes_made.register("a5", "eu").await; // 6
    changes_made.register("a1", "us").await; // 7
    let messages = first.wait_for_progress(7, DEADLINE).await;
    let fresh = Started { since: 0, base: View::new(), filtered: false };
    let checked = check_stream(&messages, &fresh, 7).expect("guarantees");
    let (resume_from, view_at_resume) = (checked.revision, checked.view);
    assert_eq!(resume_from, 7);
    assert_eq!(checked.epoch, epoch);
    drop(first);

    changes_made.register("a6", "eu").await; // 8
    changes_made.deregister("a2").await; // 9
    open.wait_for_progress(9, DEADLINE).await;
    let again = process.relaunch();
    process.stop().await; // asserts exit status 0
    // The open stream ended with a resumable status naming its last revision.
    let end =
        eventually("the open watch to end", DEADLINE, || std::future::ready(open.end())).await;
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert_eq!(resume_revision(&end), Some(9), "{end:?}");
    let open_messages = open.messages();
    assert_eq!(open_messages.last().map(|m| m.revision), Some(9));
    drop(open);

    let process = again.start().await;
    let (mut changes_made, _) = Changes::connect(&process, changes_made.log).await;
    assert_eq!(changes_made.register("a7", "eu").await, epoch, "epoch kept"); // 10
    changes_made.register("a0", "us").await; // 11
    changes_made.deregister("a3").await; // 12
    let again = process.relaunch();
    process.kill();

    let process = again.start().await;
    let (mut changes_made, channel) = Changes::connect(&process, changes_made.log).await;
    changes_made.register("a8", "eu").await; // 13
    let now = changes_made.log.last().unwrap().2;
    assert_eq!(now, 13);

    let resumed = WatchRecorder::start(channel.clone(), watch(resume_from, &epoch));
    let messages = resumed.wait_for_progress(now, DEADLINE).await;
    assert_eq!(kind(&messages[0]), EventType::Added, "no resync: {:?}", messages[0]);
    assert_eq!(changes(&messages), changes_made.after(resume_from), "exactly the missed events");
    let started = Started { since: resume_from, base: view_at_resume, filtered: false };
    let checked = check_stream(&messages, &started, now).expect("guarantees");
    let (revision, state) =
        list_agents(&mut changes_made.client, ListAgentsRequest::default()).await;
    assert_eq!(revision, now);
    assert_eq!(checked.view, state, "the resumed view is the registry's state");

    // The stream that ended on SIGTERM resumes from its trailer's revision.
    let from_trailer = WatchRecorder::start(channel, watch(9, &epoch));
    let messages = from_trailer.wait_for_progress(now, DEADLINE).await;
    assert_eq!(changes(&messages), changes_made.after(9));

    // Both go on live after the replay.
    changes_made.register("a9", "eu").await; // 14
    for watcher in [&resumed, &from_trailer] {
        let messages = watcher.wait_for_progress(14, DEADLINE).await;
        assert_eq!(changes(&messages).last(), changes_made.log.last());
    }
    process.stop().await;
}
