//! Property: whatever the sequence of registrations, changes, status
//! transitions and removals, and wherever watchers start (a snapshot, or a
//! resume from any past revision, filtered or not), every watch stream keeps
//! etcd's guarantees — ordered, no duplicate, no gap for unfiltered watchers
//! — and its view at the registry's final revision equals `ListAgents`.
//!
//! Each case runs on a fresh in-process registry. Status transitions are
//! real: a heartbeat stream that breaks makes its agent DEGRADED at once, a
//! new stream (or registering again) makes it HEALTHY. Liveness timers are
//! long, so no transition happens unless a case causes it.

// Helpers outside #[test] functions panic on failure too, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::Index;
use switchboard_health::LivenessConfig;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{
    Agent, AgentStatus, DeregisterAgentRequest, GetAgentRequest, ListAgentsRequest,
    RegisterAgentRequest, WatchFilter, WatchRequest,
};
use switchboard_registry::RegistryConfig;
use switchboard_tests::{
    HeartbeatSession, Started, TestRegistry, View, WatchRecorder, check_stream, eventually,
    list_agents,
};
use tonic::transport::Channel;

const AGENTS: u8 = 5;
const CAPABILITIES: u8 = 3;
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
enum Op {
    /// Registers (or re-registers, possibly unchanged) `agent-{agent}`.
    Register {
        agent: u8,
        capability: u8,
        label: u8,
    },
    Deregister {
        agent: u8,
    },
    /// Breaks the agent's heartbeat stream (opening one first if needed).
    Degrade {
        agent: u8,
    },
    /// Opens a heartbeat stream for a DEGRADED agent and keeps it.
    Revive {
        agent: u8,
    },
    Watch {
        since: Since,
        filter: Filter,
    },
    /// Drops a watcher once it is up to date and resumes it from its
    /// revision with its view, as a client does after a break.
    Reconnect {
        watcher: Index,
    },
}

#[derive(Debug, Clone)]
enum Since {
    /// `since_revision = 0`.
    Snapshot,
    /// A revision the registry was at after some earlier step.
    Past(Index),
    /// The revision of the step halfway through.
    Middle,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    All,
    Capability(u8),
    Status(AgentStatus),
}

fn op() -> impl Strategy<Value = Op> {
    let since = prop_oneof![Just(Since::Snapshot), any::<Index>().prop_map(Since::Past)];
    let filter = prop_oneof![
        3 => Just(Filter::All),
        1 => (0..CAPABILITIES).prop_map(Filter::Capability),
        1 => prop_oneof![Just(AgentStatus::Healthy), Just(AgentStatus::Degraded)]
            .prop_map(Filter::Status),
    ];
    prop_oneof![
        5 => (0..AGENTS, 0..CAPABILITIES, 0..2u8)
            .prop_map(|(agent, capability, label)| Op::Register { agent, capability, label }),
        1 => (0..AGENTS).prop_map(|agent| Op::Deregister { agent }),
        2 => (0..AGENTS).prop_map(|agent| Op::Degrade { agent }),
        1 => (0..AGENTS).prop_map(|agent| Op::Revive { agent }),
        2 => (since, filter).prop_map(|(since, filter)| Op::Watch { since, filter }),
        1 => any::<Index>().prop_map(|watcher| Op::Reconnect { watcher }),
    ]
}

impl Filter {
    fn matches(self, agent: &Agent) -> bool {
        match self {
            Filter::All => true,
            Filter::Capability(c) => agent.tools.iter().any(|t| t.capability == capability(c)),
            Filter::Status(status) => agent.status() == status,
        }
    }

    fn select(self, view: &View) -> View {
        view.iter().filter(|(_, a)| self.matches(a)).map(|(k, a)| (k.clone(), a.clone())).collect()
    }

    fn request(self) -> WatchFilter {
        match self {
            Filter::All => WatchFilter::default(),
            Filter::Capability(c) => {
                WatchFilter { capability: capability(c), ..WatchFilter::default() }
            }
            Filter::Status(status) => {
                WatchFilter { status: status as i32, ..WatchFilter::default() }
            }
        }
    }
}

fn capability(c: u8) -> String {
    format!("cap.{c}")
}

fn agent_id(agent: u8) -> String {
    format!("agent-{agent}")
}

fn registration(agent: u8, c: u8, label: u8) -> RegisterAgentRequest {
    let mut request = common::provider(&format!("name{agent}"), &capability(c), "1.0.0", &[]);
    request.agent_id = agent_id(agent);
    request.labels.insert("variant".into(), label.to_string());
    request
}

fn config() -> RegistryConfig {
    RegistryConfig {
        // Filtered watchers show their progress past events they skip.
        bookmark_interval: Duration::from_millis(100),
        liveness: LivenessConfig {
            interval: Duration::from_secs(1),
            degraded_after: Duration::from_secs(120),
            expired_after: Duration::from_secs(240),
            ..LivenessConfig::default()
        },
        ..RegistryConfig::default()
    }
}

struct Watcher {
    recorder: WatchRecorder,
    started: Started,
    filter: Filter,
    op: usize,
}

/// One case: a registry, the steps, then the check of every watcher.
struct Case {
    server: TestRegistry,
    client: RegistryServiceClient<Channel>,
    epoch: String,
    /// (revision, every agent) after each step, starting with the empty store.
    states: Vec<(u64, View)>,
    sessions: HashMap<String, HeartbeatSession>,
    watchers: Vec<Watcher>,
}

impl Case {
    async fn start() -> Self {
        let server = TestRegistry::builder().config(config()).start().await;
        let client = server.registry_client().await;
        // Known before any registration: a case may register nothing, and
        // its watchers still see the store's epoch.
        let epoch = server.registry().snapshot().epoch.to_string();
        Self {
            server,
            client,
            epoch,
            states: vec![(0, View::new())],
            sessions: HashMap::new(),
            watchers: Vec::new(),
        }
    }

    fn current(&self) -> &View {
        &self.states.last().expect("initial state").1
    }

    async fn run(&mut self, index: usize, op: &Op) {
        match op {
            Op::Register { agent, capability, label } => {
                let request = registration(*agent, *capability, *label);
                let response = self.client.register_agent(request).await.expect("register");
                self.epoch = response.into_inner().store_epoch;
            }
            Op::Deregister { agent } => {
                let id = agent_id(*agent);
                if self.current().contains_key(&id) {
                    if let Some(session) = self.sessions.remove(&id) {
                        session.abort();
                    }
                    let request = DeregisterAgentRequest { agent_id: id };
                    self.client.deregister_agent(request).await.expect("deregister");
                }
            }
            Op::Degrade { agent } => {
                let id = agent_id(*agent);
                if self.status(&id) == Some(AgentStatus::Healthy) {
                    let session = match self.sessions.remove(&id) {
                        Some(session) => session,
                        None => self.open_session(&id).await,
                    };
                    session.abort();
                    self.wait_status(&id, AgentStatus::Degraded).await;
                }
            }
            Op::Revive { agent } => {
                let id = agent_id(*agent);
                if self.status(&id) == Some(AgentStatus::Degraded)
                    && !self.sessions.contains_key(&id)
                {
                    let session = self.open_session(&id).await;
                    self.sessions.insert(id.clone(), session);
                    self.wait_status(&id, AgentStatus::Healthy).await;
                }
            }
            Op::Reconnect { watcher } => {
                if !self.watchers.is_empty() {
                    let n = watcher.index(self.watchers.len());
                    self.reconnect(n, index).await;
                }
            }
            Op::Watch { since, filter } => {
                let (since, base) = match since {
                    Since::Snapshot => (0, View::new()),
                    Since::Past(at) => self.states[at.index(self.states.len())].clone(),
                    Since::Middle => self.states[self.states.len() / 2].clone(),
                };
                let request = WatchRequest {
                    since_revision: since,
                    store_epoch: self.epoch.clone(),
                    filter: Some(filter.request()),
                };
                let recorder = WatchRecorder::start(self.server.channel().await, request);
                let started =
                    Started { since, base: filter.select(&base), filtered: *filter != Filter::All };
                self.watchers.push(Watcher { recorder, started, filter: *filter, op: index });
            }
        }
        let state = list_agents(&mut self.client, ListAgentsRequest::default()).await;
        self.states.push(state);
    }

    async fn reconnect(&mut self, n: usize, step: usize) {
        let revision = self.states.last().expect("initial state").0;
        let old = &self.watchers[n];
        let messages = old.recorder.wait_for_progress(revision, DEADLINE).await;
        let checked = check_stream(&messages, &old.started, revision)
            .unwrap_or_else(|e| panic!("watcher {n} before reconnecting: {e}"));
        let request = WatchRequest {
            since_revision: checked.revision,
            store_epoch: checked.epoch,
            filter: Some(old.filter.request()),
        };
        let started = Started {
            since: checked.revision,
            base: checked.view,
            filtered: old.filter != Filter::All,
        };
        let recorder = WatchRecorder::start(self.server.channel().await, request);
        let filter = old.filter;
        // Dropping the old recorder ends its stream.
        self.watchers[n] = Watcher { recorder, started, filter, op: step };
    }

    fn status(&self, id: &str) -> Option<AgentStatus> {
        self.current().get(id).map(Agent::status)
    }

    /// A heartbeat stream bound to `id` (its first heartbeat acknowledged).
    async fn open_session(&self, id: &str) -> HeartbeatSession {
        let every = Duration::from_millis(500);
        let mut session = HeartbeatSession::open(self.server.channel().await, id, every).await;
        loop {
            if let Message::Ack(_) = session.next(DEADLINE).await.expect("heartbeat stream") {
                return session;
            }
        }
    }

    async fn wait_status(&self, id: &str, wanted: AgentStatus) {
        let client = self.client.clone();
        eventually(&format!("{id} {wanted:?}"), DEADLINE, || {
            let mut client = client.clone();
            async move {
                let request = GetAgentRequest { agent_id: id.to_owned() };
                let agent = client.get_agent(request).await.ok()?.into_inner().agent?;
                (agent.status() == wanted).then_some(())
            }
        })
        .await;
    }

    /// Every watcher's view at the final revision equals the registry's.
    async fn check(&mut self) -> Result<(), TestCaseError> {
        let (revision, state) = list_agents(&mut self.client, ListAgentsRequest::default()).await;
        for (n, watcher) in self.watchers.iter().enumerate() {
            let what = format!(
                "watcher {n} (step {}, since {}, {:?})",
                watcher.op, watcher.started.since, watcher.filter
            );
            let messages = watcher.recorder.wait_for_progress(revision, DEADLINE).await;
            let checked = check_stream(&messages, &watcher.started, revision)
                .map_err(|e| TestCaseError::fail(format!("{what}: {e}\n{messages:#?}")))?;
            prop_assert!(checked.resync.is_none(), "{}: resync in a retained history", what);
            prop_assert_eq!(&checked.epoch, &self.epoch, "{}: epoch", what);
            prop_assert_eq!(&checked.view, &watcher.filter.select(&state), "{}: final view", what);
            if watcher.filter == Filter::All {
                prop_assert_eq!(checked.revision, revision, "{}: final revision", what);
            }
            prop_assert!(watcher.recorder.end().is_none(), "{}: stream ended", what);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_watcher_ends_at_the_registry_state_with_ordered_gap_free_unique_events(
        ops in prop::collection::vec(op(), 12..40),
        first_watch_filter in prop_oneof![
            Just(Filter::All),
            (0..CAPABILITIES).prop_map(Filter::Capability),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut case = Case::start().await;
            // One watcher from the empty store, so every case has one.
            let first = Op::Watch { since: Since::Snapshot, filter: first_watch_filter };
            case.run(0, &first).await;
            for (index, op) in ops.iter().enumerate() {
                case.run(index + 1, op).await;
            }
            // And one that resumes from the middle of the history.
            let middle = Op::Watch { since: Since::Middle, filter: Filter::All };
            case.run(ops.len() + 1, &middle).await;
            let result = case.check().await;
            case.server.stop().await;
            result
        })?;
    }
}
