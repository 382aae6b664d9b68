//! The client-side cache (`switchboard_client::WatchCache`) never exposes
//! an empty, partial or older view: across a registry restart on the same
//! port (resume by revision) and a restart on a new store (new epoch: resync),
//! every view it publishes after the first complete one is complete, holds
//! every agent that exists throughout, and never goes back in revision within
//! an epoch. A scripted server shows it also refuses what a real registry
//! should never send: changes or snapshots older than its view.

// Helpers outside #[test] functions panic on failure too, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use switchboard_client::{Backoff, CacheView, WatchCache, WatchCacheConfig};
use switchboard_proto::v1::watch_service_server::{WatchService, WatchServiceServer};
use switchboard_proto::v1::{
    Agent, DeregisterAgentRequest, EventType, ListAgentsRequest, RegisterAgentRequest,
    WatchRequest, WatchResponse,
};
use switchboard_registry::{Registry, RegistryConfig};
use switchboard_tests::{TestRegistry, eventually, list_agents, metric_value, normalized};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

const DEADLINE: Duration = Duration::from_secs(30);
/// Agents registered in every store, before any client can connect.
const PERMANENT: [&str; 3] = ["keep-0", "keep-1", "keep-2"];

fn agent(id: &str) -> RegisterAgentRequest {
    RegisterAgentRequest { agent_id: id.into(), ..common::provider("agent", "cap.a", "1.0.0", &[]) }
}

fn fast_backoff() -> WatchCacheConfig {
    WatchCacheConfig {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        ..WatchCacheConfig::default()
    }
}

/// Every view the cache publishes, as its subscribers see them.
struct Published {
    views: Arc<Mutex<Vec<Arc<CacheView>>>>,
    task: JoinHandle<()>,
}

impl Published {
    fn record(cache: &WatchCache) -> Self {
        let mut receiver = cache.subscribe();
        let views = Arc::new(Mutex::new(vec![receiver.borrow_and_update().clone()]));
        let sink = views.clone();
        let task = tokio::spawn(async move {
            while receiver.changed().await.is_ok() {
                let view = receiver.borrow_and_update().clone();
                sink.lock().unwrap().push(view);
            }
        });
        Self { views, task }
    }

    /// Every view, once the cache is dropped.
    async fn finish(self) -> Vec<Arc<CacheView>> {
        self.task.await.expect("recorder");
        self.views.lock().unwrap().clone()
    }
}

/// Waits until the cache shows exactly the registry's state.
async fn converged(cache: &WatchCache, registry: &TestRegistry) -> Arc<CacheView> {
    let client = registry.registry_client().await;
    let epoch = registry.registry().snapshot().epoch.to_string();
    eventually("the cache to show the registry's state", DEADLINE, || {
        let mut client = client.clone();
        let epoch = epoch.clone();
        let view = cache.view();
        async move {
            let (revision, state) = list_agents(&mut client, ListAgentsRequest::default()).await;
            let agents = view.agents.values().map(|a| (a.id.clone(), normalized((**a).clone())));
            let same = view.complete
                && view.epoch == epoch
                && view.revision == revision
                && agents.collect::<std::collections::BTreeMap<_, _>>() == state;
            same.then_some(view)
        }
    })
    .await
}

async fn seed(registry: &Registry, ids: &[&str]) {
    for id in ids {
        registry.register(agent(id)).await.expect("seed");
    }
}

fn assert_never_partial_nor_backwards(views: &[Arc<CacheView>]) {
    let first_complete = views.iter().position(|v| v.complete).expect("a complete view");
    let mut epochs: Vec<&str> = Vec::new();
    let mut last_revision = 0;
    for (n, view) in views.iter().enumerate().skip(first_complete) {
        assert!(view.complete, "view {n} incomplete after a complete one");
        for id in PERMANENT {
            assert!(view.agents.contains_key(id), "view {n} (r{}) lacks {id}", view.revision);
        }
        if epochs.last() == Some(&view.epoch.as_str()) {
            assert!(view.revision >= last_revision, "view {n} went back to r{}", view.revision);
        } else {
            assert!(!epochs.contains(&view.epoch.as_str()), "view {n} went back to an old epoch");
            epochs.push(&view.epoch);
        }
        last_revision = view.revision;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_survives_a_restart_and_a_resync_without_an_empty_or_older_view() {
    let config = RegistryConfig::default();
    let loaded = TestRegistry::builder().config(config.clone()).start_unserved().await;
    seed(&loaded.registry, &PERMANENT).await;
    seed(&loaded.registry, &["temp-0"]).await;
    let server = loaded.serve().await;
    let addr = server.addr;
    let channel = switchboard_client::connect_lazy(&addr.to_string()).unwrap();
    let cache = WatchCache::spawn(channel, fast_backoff());
    let published = Published::record(&cache);
    tokio::time::timeout(DEADLINE, cache.ready()).await.expect("first snapshot");
    let first_epoch = converged(&cache, &server).await.epoch.clone();

    // A live change.
    let mut client = server.registry_client().await;
    client.register_agent(agent("temp-1")).await.unwrap();
    converged(&cache, &server).await;

    // Restart on the same store and port; changes made while the cache was
    // cut off reach it by replay.
    let dir = server.stop().await;
    let loaded = TestRegistry::builder()
        .config(config.clone())
        .data_dir(dir)
        .pinned(addr)
        .start_unserved()
        .await;
    loaded.registry.deregister("temp-0").await.expect("deregister");
    seed(&loaded.registry, &["temp-2"]).await;
    let server = loaded.serve().await;
    let view = converged(&cache, &server).await;
    assert_eq!(view.epoch, first_epoch);
    assert!(!view.agents.contains_key("temp-0") && view.agents.contains_key("temp-2"));
    assert_eq!(resyncs(&server), 0.0, "resumed, not resynced");
    let mut client = server.registry_client().await;
    client.deregister_agent(DeregisterAgentRequest { agent_id: "temp-1".into() }).await.unwrap();
    converged(&cache, &server).await;

    // A new store on the same port: a new epoch, the same agents registered
    // again (and one more). The cache must swap views without a gap.
    server.stop().await;
    let loaded = TestRegistry::builder().config(config).pinned(addr).start_unserved().await;
    seed(&loaded.registry, &PERMANENT).await;
    seed(&loaded.registry, &["fresh-0"]).await;
    let server = loaded.serve().await;
    let view = converged(&cache, &server).await;
    assert_ne!(view.epoch, first_epoch);
    assert!(resyncs(&server) >= 1.0, "resynced");
    let mut client = server.registry_client().await;
    client.register_agent(agent("fresh-1")).await.unwrap();
    let last = converged(&cache, &server).await;

    drop(cache);
    let views = published.finish().await;
    assert_never_partial_nor_backwards(&views);
    let final_view = views.last().unwrap();
    assert_eq!(
        (final_view.epoch.as_str(), final_view.revision),
        (last.epoch.as_str(), last.revision)
    );
    server.stop().await;
}

// === A scripted WatchService ===

type Script = Vec<Result<WatchResponse, Status>>;
type ScriptStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

/// Answers the n-th Watch call with the n-th script, then keeps the stream
/// open; records every request.
#[derive(Clone, Default)]
struct Scripted {
    scripts: Arc<Mutex<VecDeque<Script>>>,
    requests: Arc<Mutex<Vec<WatchRequest>>>,
}

#[tonic::async_trait]
impl WatchService for Scripted {
    type WatchStream = ScriptStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<ScriptStream>, Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        let script = self.scripts.lock().unwrap().pop_front().unwrap_or_default();
        let ends = script.last().is_some_and(Result::is_err);
        let stream = futures::stream::iter(script);
        let stream: ScriptStream = if ends {
            Box::pin(stream)
        } else {
            Box::pin(stream.chain(futures::stream::pending()))
        };
        Ok(Response::new(stream))
    }
}

impl Scripted {
    async fn serve(scripts: Vec<Script>) -> (Self, SocketAddr, JoinHandle<()>) {
        let scripted = Scripted::default();
        scripted.scripts.lock().unwrap().extend(scripts);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = WatchServiceServer::new(scripted.clone());
        let task = tokio::spawn(async move {
            Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        (scripted, addr, task)
    }

    fn requests(&self) -> Vec<(u64, String)> {
        let requests = self.requests.lock().unwrap();
        requests.iter().map(|r| (r.since_revision, r.store_epoch.clone())).collect()
    }
}

fn message(
    kind: EventType,
    revision: u64,
    epoch: &str,
    id: Option<&str>,
) -> Result<WatchResponse, Status> {
    Ok(WatchResponse {
        r#type: kind as i32,
        revision,
        store_epoch: epoch.into(),
        agent: id.map(|id| Agent { id: id.into(), mod_revision: revision, ..Agent::default() }),
        ..WatchResponse::default()
    })
}

fn snapshot(revision: u64, epoch: &str, ids: &[&str]) -> Script {
    let mut script: Script =
        ids.iter().map(|id| message(EventType::Snapshot, revision, epoch, Some(id))).collect();
    script.push(message(EventType::EndOfSnapshot, revision, epoch, None));
    script
}

fn broken() -> Result<WatchResponse, Status> {
    Err(Status::unavailable("scripted break"))
}

fn ids(view: &CacheView) -> Vec<&str> {
    view.agents.keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_never_publishes_a_revision_older_than_its_view_within_an_epoch() {
    let e = "epoch-e";
    let f = "epoch-f";
    let scripts = vec![
        // 1: a snapshot at 10, a change at 11, then a break.
        [snapshot(10, e, &["a", "b"]), vec![message(EventType::Added, 11, e, Some("c")), broken()]]
            .concat(),
        // 2: the resume from 11 answers with a change at 9: refused, relist.
        vec![message(EventType::Added, 9, e, Some("stale"))],
        // 3: the relist gets a snapshot at 5 of the same epoch: refused too.
        snapshot(5, e, &["a"]),
        // 4: a snapshot at 12: taken, then a change, then a break.
        [
            snapshot(12, e, &["a", "b", "c", "d"]),
            vec![message(EventType::Removed, 13, e, Some("d")), broken()],
        ]
        .concat(),
        // 5: the store was replaced: a resync to a new epoch at a lower revision is fine.
        [
            vec![Ok(WatchResponse {
                r#type: EventType::ResyncRequired as i32,
                revision: 13,
                store_epoch: f.into(),
                reason: "epoch".into(),
                ..WatchResponse::default()
            })],
            snapshot(3, f, &["a", "b"]),
        ]
        .concat(),
    ];
    let (scripted, addr, server) = Scripted::serve(scripts).await;
    let channel = switchboard_client::connect_lazy(&addr.to_string()).unwrap();
    let cache = WatchCache::spawn(channel, fast_backoff());
    let published = Published::record(&cache);
    let mut receiver = cache.subscribe();
    let reached = tokio::time::timeout(DEADLINE, receiver.wait_for(|v| v.epoch == f)).await.is_ok();
    drop(receiver);
    drop(cache);
    let views = published.finish().await;
    // Subscribers may miss intermediate views (a watch channel keeps the
    // latest), but every view they see is one of these, in this order.
    let allowed: [(&str, u64, Vec<&str>); 5] = [
        (e, 10, vec!["a", "b"]),
        (e, 11, vec!["a", "b", "c"]),
        (e, 12, vec!["a", "b", "c", "d"]),
        (e, 13, vec!["a", "b", "c"]),
        (f, 3, vec!["a", "b"]),
    ];
    let mut next = 0;
    for view in views.iter().skip(1) {
        let seen = (view.epoch.as_str(), view.revision, ids(view));
        let at = allowed[next..].iter().position(|a| *a == seen);
        let at = at.unwrap_or_else(|| {
            panic!("published {seen:?}, expected one of {:?}", &allowed[next..])
        });
        next += at + 1;
    }
    assert!(reached, "the cache never reached the new epoch");
    assert_eq!(next, allowed.len(), "the last view is the new epoch's");
    assert_eq!(
        scripted.requests(),
        [
            (0, String::new()),
            (11, e.into()),
            (0, String::new()),
            (0, String::new()),
            (13, e.into())
        ]
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_resumes_from_an_empty_view_at_revision_zero_without_relisting() {
    let g = "epoch-g";
    let scripts = vec![
        // An empty store: the snapshot is just END_OF_SNAPSHOT at 0.
        [snapshot(0, g, &[]), vec![broken()]].concat(),
        // The resume from 0 is answered with a snapshot again, then live.
        [snapshot(0, g, &[]), vec![message(EventType::Added, 1, g, Some("x"))]].concat(),
    ];
    let (scripted, addr, server) = Scripted::serve(scripts).await;
    let channel = switchboard_client::connect_lazy(&addr.to_string()).unwrap();
    let cache = WatchCache::spawn(channel, fast_backoff());
    let mut receiver = cache.subscribe();
    let view = tokio::time::timeout(DEADLINE, receiver.wait_for(|v| v.revision == 1))
        .await
        .expect("the cache to take the change")
        .unwrap()
        .clone();
    assert!(view.complete);
    assert_eq!(ids(&view), ["x"]);
    assert_eq!(scripted.requests(), [(0, String::new()), (0, g.into())], "no relist in between");
    server.abort();
}

/// Watch resyncs the registry (every replica of a replica set) served.
fn resyncs(server: &TestRegistry) -> f64 {
    let text = server.render_metrics();
    metric_value(&text, "switchboard_registry_watch_resyncs_total").unwrap_or(0.0)
}
