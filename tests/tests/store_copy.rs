//! Migration between stores with the real binary: `switchboard store copy`
//! from sled to etcd and back keeps every agent, the revision, the retained
//! history in revision order and the compact revision; a non-empty target
//! is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use switchboard_registry::store::{EtcdStore, LoadedState, SledStore, Store};
use switchboard_registry::{RegistryConfig, StoreSpec};
use switchboard_tests::cli;
use switchboard_tests::etcd::EtcdCluster;

const ANY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

#[tokio::test]
async fn sled_to_etcd_to_sled_round_trips_every_agent_and_the_revision_order() {
    let cluster = EtcdCluster::start().await;
    let sled_dir = tempfile::TempDir::new().unwrap();
    // A history with every kind of change: adds, a change, a removal.
    let running = common::serve_sled(sled_dir.path()).await;
    let registry = &running.registry;
    let weather =
        registry.register(common::provider("weather", "weather", "1.0.0", &[])).await.unwrap();
    registry.register(common::consumer("planner", "weather", "^1", &[])).await.unwrap();
    let date = registry.register(common::provider("date", "date", "1.0.0", &[])).await.unwrap();
    let mut changed = common::provider("weather", "weather", "1.1.0", &[]);
    changed.agent_id = weather.agent_id.clone();
    registry.register(changed).await.unwrap();
    registry.deregister(&date.agent_id).await.unwrap();
    running.stop().await.unwrap();
    let original = sled_state(sled_dir.path()).await;
    assert_eq!(original.agents.len(), 2);
    assert_eq!(original.events.len(), 5);

    let etcd = format!("etcd:{}", cluster.endpoint_list());
    let sled = format!("sled:{}", sled_dir.path().display());
    let run = cli(&["store", "copy", "--from", &sled, "--to", &etcd]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("copied 2 agents and 5 history events"), "{run:?}");
    let in_etcd = etcd_state(&cluster).await;
    assert_same(&original, &in_etcd);

    // A copy never merges: the etcd store is no longer empty.
    let again = cli(&["store", "copy", "--from", &sled, "--to", &etcd]).await;
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("not empty"), "{again:?}");

    let back_dir = tempfile::TempDir::new().unwrap();
    let back = format!("sled:{}", back_dir.path().display());
    let run = cli(&["store", "copy", "--from", &etcd, "--to", &back]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_same(&original, &sled_state(back_dir.path()).await);

    // A registry on the copy serves the agents and continues the revisions.
    let store = StoreSpec::Etcd { config: cluster.config(), prefix: "/switchboard".into() };
    let on_etcd =
        switchboard_registry::serve(RegistryConfig::default(), store, ANY, ANY).await.unwrap();
    assert_eq!(on_etcd.registry.snapshot().agents.len(), 2);
    let next =
        on_etcd.registry.register(common::provider("date", "date", "2.0.0", &[])).await.unwrap();
    assert_eq!(next.revision, original.revision + 1);
}

async fn sled_state(dir: &std::path::Path) -> LoadedState {
    let dir = dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&dir)).await.unwrap().unwrap();
    store.load().await.unwrap()
}

async fn etcd_state(cluster: &EtcdCluster) -> LoadedState {
    EtcdStore::open(cluster.config(), "/switchboard").await.unwrap().load().await.unwrap()
}

fn assert_same(expected: &LoadedState, actual: &LoadedState) {
    let sorted = |state: &LoadedState| {
        let mut agents = state.agents.clone();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        agents
    };
    assert_eq!(sorted(actual), sorted(expected), "every agent, as stored");
    assert_eq!(actual.revision, expected.revision);
    assert_eq!(actual.compact_revision, expected.compact_revision);
    assert_eq!(actual.events, expected.events, "the history, in revision order");
}
