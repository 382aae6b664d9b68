//! Client load for fault runs: writers that register and deregister agents
//! (some ids owned by one writer, some contended by all, so that a
//! registration can race a deregistration of the same agent), and a reader
//! that lists and gets. Everything is recorded; every call has a deadline.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::{
    DeregisterAgentRequest, GetAgentRequest, ListAgentsRequest, RegisterAgentRequest, Tool,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;

use super::agent::CALL_TIMEOUT;
use crate::history::{History, OpKind, Outcome};
use crate::{View, normalized};

/// Most agents a read may return: the suite's reads are one page, so that
/// each is one snapshot at one revision.
const MAX_AGENTS: i32 = 1000;
/// Longest tool description the registry takes (its default limit).
const DESCRIPTION_BYTES: usize = 4000;

/// How much write load to run.
#[derive(Debug, Clone)]
pub struct WriteLoad {
    /// Concurrent writers.
    pub writers: usize,
    /// Agent ids each writer owns.
    pub own_ids: usize,
    /// Agent ids every writer writes.
    pub shared_ids: usize,
    /// Longest pause between two calls of a writer.
    pub think: Duration,
    /// Bytes of tool description in each registration (bulky events fill
    /// a slow watcher's path sooner).
    pub payload: usize,
}

/// Running writers.
pub struct Writers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// A running reader.
pub struct Reader {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

// === impl Writers ===

impl Writers {
    /// Starts `load` against `registry`.
    pub fn start(load: &WriteLoad, registry: &str, history: &History, seed: u64) -> Self {
        let stop = CancellationToken::new();
        let shared: Vec<String> = (0..load.shared_ids).map(|k| format!("shared-{k:08x}")).collect();
        let tasks = (0..load.writers)
            .map(|w| {
                let mut ids: Vec<String> =
                    (0..load.own_ids).map(|k| format!("w{w}-{k:08x}")).collect();
                ids.extend(shared.iter().cloned());
                let writer = Writer {
                    name: format!("writer-{w}"),
                    ids,
                    client: client(registry),
                    history: history.clone(),
                    rng: StdRng::seed_from_u64(seed.wrapping_add(w as u64)),
                    think: load.think,
                    payload: load.payload,
                    generation: 0,
                };
                tokio::spawn(writer.run(stop.clone()))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the writers once their calls in flight have ended.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct Writer {
    name: String,
    ids: Vec<String>,
    client: RegistryServiceClient<Channel>,
    history: History,
    rng: StdRng,
    think: Duration,
    payload: usize,
    generation: u64,
}

// === impl Writer ===

impl Writer {
    async fn run(mut self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let id = self.ids.choose(&mut self.rng).cloned().unwrap_or_default();
            let result = if self.rng.random_bool(0.6) {
                self.register(&id).await
            } else {
                self.deregister(&id).await
            };
            // Do not hammer a registry that is down.
            let pause = match result {
                Outcome::Failed { code: Code::Unavailable | Code::DeadlineExceeded, .. } => {
                    Duration::from_millis(self.rng.random_range(20..100))
                }
                _ => self.rng.random_range(Duration::ZERO..=self.think),
            };
            tokio::time::sleep(pause).await;
        }
    }

    async fn register(&mut self, id: &str) -> Outcome {
        self.generation += 1;
        let generation = format!("{}.{}", self.name, self.generation);
        let request = registration(id, &generation, self.payload);
        let invoked = SystemTime::now();
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.client.register_agent(request)).await;
        let result = match answer {
            Ok(Ok(response)) => {
                let response = response.into_inner();
                Outcome::Written { revision: response.revision, epoch: response.store_epoch }
            }
            Ok(Err(status)) => Outcome::failed(&status),
            Err(_) => timed_out(),
        };
        let kind = OpKind::Register { agent_id: id.to_owned() };
        self.history.record(&self.name, kind, invoked, result).result
    }

    async fn deregister(&mut self, id: &str) -> Outcome {
        let request = DeregisterAgentRequest { agent_id: id.to_owned() };
        let invoked = SystemTime::now();
        let answer =
            tokio::time::timeout(CALL_TIMEOUT, self.client.deregister_agent(request)).await;
        let result = match answer {
            Ok(Ok(response)) => {
                // The epoch is not in the answer; one store throughout.
                Outcome::Written { revision: response.into_inner().revision, epoch: String::new() }
            }
            Ok(Err(status)) => Outcome::failed(&status),
            Err(_) => timed_out(),
        };
        let kind = OpKind::Deregister { agent_id: id.to_owned() };
        self.history.record(&self.name, kind, invoked, result).result
    }
}

/// A writer's registration of `id`; `generation` makes every one distinct.
/// `payload` bytes of tool descriptions, in as many tools as the registry's
/// limit per description needs.
pub(crate) fn registration(id: &str, generation: &str, payload: usize) -> RegisterAgentRequest {
    let tools = payload.div_ceil(DESCRIPTION_BYTES).max(1);
    RegisterAgentRequest {
        agent_id: id.to_owned(),
        name: "writer".into(),
        endpoint: format!("http://127.0.0.1:9/{id}/mcp"),
        labels: HashMap::from([("gen".to_owned(), generation.to_owned())]),
        tools: (0..tools)
            .map(|n| Tool {
                name: format!("serve{n}"),
                capability: "load".into(),
                version: "1.0.0".into(),
                description: "x".repeat((payload / tools).min(DESCRIPTION_BYTES)),
                ..Tool::default()
            })
            .collect(),
        ..RegisterAgentRequest::default()
    }
}

fn timed_out() -> Outcome {
    Outcome::failed(&tonic::Status::deadline_exceeded("no answer in time"))
}

fn client(registry: &str) -> RegistryServiceClient<Channel> {
    RegistryServiceClient::new(
        switchboard_client::connect_lazy(registry).expect("registry address"),
    )
}

// === impl Reader ===

impl Reader {
    /// Lists every agent now and then, and gets one of `agents` often.
    pub fn start(registry: &str, agents: Vec<String>, history: &History, seed: u64) -> Self {
        let stop = CancellationToken::new();
        let mut client = client(registry);
        let history = history.clone();
        let mut rng = StdRng::seed_from_u64(seed);
        let token = stop.clone();
        let task = tokio::spawn(async move {
            while !token.is_cancelled() {
                match agents.choose(&mut rng) {
                    Some(id) if rng.random_bool(0.7) => get(&mut client, id, &history).await,
                    _ => {
                        read_all(&mut client, "reader", &history).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
            }
        });
        Self { stop, task }
    }

    /// Stops once the read in flight has ended.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn get(client: &mut RegistryServiceClient<Channel>, id: &str, history: &History) {
    let invoked = SystemTime::now();
    let request = GetAgentRequest { agent_id: id.to_owned() };
    let answer = tokio::time::timeout(CALL_TIMEOUT, client.get_agent(request)).await;
    let (agent, result) = match answer {
        Ok(Ok(response)) => (response.into_inner().agent, Outcome::Ok),
        Ok(Err(status)) => (None, Outcome::failed(&status)),
        Err(_) => (None, timed_out()),
    };
    let kind = OpKind::Get { agent_id: id.to_owned(), agent };
    history.record("reader", kind, invoked, result);
}

/// `ListAgents` of everything, recorded; the revision and view when it
/// answered.
pub async fn read_all(
    client: &mut RegistryServiceClient<Channel>,
    who: &str,
    history: &History,
) -> Option<(u64, View)> {
    let invoked = SystemTime::now();
    let request = ListAgentsRequest { page_size: MAX_AGENTS, ..ListAgentsRequest::default() };
    let answer = tokio::time::timeout(CALL_TIMEOUT, client.list_agents(request)).await;
    let page = match answer {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => {
            let kind = OpKind::List { revision: 0, view: View::new() };
            history.record(who, kind, invoked, Outcome::failed(&status));
            return None;
        }
        Err(_) => {
            history.record(
                who,
                OpKind::List { revision: 0, view: View::new() },
                invoked,
                timed_out(),
            );
            return None;
        }
    };
    assert!(page.next_page_token.is_empty(), "more than {MAX_AGENTS} agents: reads span pages");
    let view: View =
        page.agents.into_iter().map(|agent| (agent.id.clone(), normalized(agent))).collect();
    let kind = OpKind::List { revision: page.revision, view: view.clone() };
    history.record(who, kind, invoked, Outcome::Ok);
    Some((page.revision, view))
}

/// A client for the final reads of a run.
pub fn registry_client(registry: &str) -> RegistryServiceClient<Channel> {
    client(registry)
}
