//! The registry on the etcd store, one registry at a time, against a real
//! 3-member etcd cluster: state survives a registry restart, a new etcd is
//! a new epoch, records respect etcd's request limits, a big batch spans
//! several transactions, an etcd member down loses nothing, a lost quorum
//! makes the registry not ready (HTTP and gRPC health) until it returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_proto::v1::{RegisterAgentRequest, Tool};
use switchboard_registry::{RegistryConfig, RegistryError, RunningRegistry, StoreSpec};
use switchboard_tests::etcd::EtcdCluster;
use switchboard_tests::eventually;

const ANY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

async fn registry(cluster: &EtcdCluster, prefix: &str) -> RunningRegistry {
    switchboard_tests::init_logging();
    let store = StoreSpec::Etcd { config: cluster.config(), prefix: prefix.to_owned() };
    switchboard_registry::serve(RegistryConfig::default(), store, ANY, ANY)
        .await
        .expect("registry on etcd")
}

#[tokio::test]
async fn agents_epoch_and_revision_survive_a_registry_restart() {
    let cluster = EtcdCluster::start().await;
    let first = registry(&cluster, "/switchboard").await;
    let weather = first
        .registry
        .register(common::provider("weather", "weather", "1.0.0", &[]))
        .await
        .unwrap();
    let date =
        first.registry.register(common::provider("date", "date", "1.0.0", &[])).await.unwrap();
    let removed = first.registry.deregister(&date.agent_id).await.unwrap();
    let before = first.registry.snapshot();
    first.stop().await.unwrap();

    let second = registry(&cluster, "/switchboard").await;
    let after = second.registry.snapshot();
    assert_eq!(after.epoch, before.epoch, "same etcd, same store: same epoch");
    assert_eq!(after.revision, removed);
    let ids: Vec<_> = after.agents.keys().cloned().collect();
    assert_eq!(ids, std::slice::from_ref(&weather.agent_id));
    let next =
        second.registry.register(common::provider("date", "date", "1.0.1", &[])).await.unwrap();
    assert!(next.revision > removed, "revisions continue after a restart");
    second.stop().await.unwrap();

    // Another prefix on the same etcd is another store.
    let other = registry(&cluster, "/elsewhere").await;
    assert!(other.registry.snapshot().agents.is_empty());
    assert_ne!(other.registry.snapshot().epoch, before.epoch);
    other.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_etcd_cluster_is_a_new_epoch() {
    let one = EtcdCluster::start_with(1).await;
    let two = EtcdCluster::start_with(1).await;
    let a = registry(&one, "/switchboard").await;
    let b = registry(&two, "/switchboard").await;
    assert_ne!(a.registry.snapshot().epoch, b.registry.snapshot().epoch);
}

#[tokio::test]
async fn an_agent_too_large_for_one_etcd_value_is_refused_naming_its_size() {
    let cluster = EtcdCluster::start_with(1).await;
    let running = registry(&cluster, "/switchboard").await;
    let mut request = common::provider("big", "big", "1.0.0", &[]);
    // 200 tools of 4 KiB descriptions: 800 KiB, over one etcd value.
    request.tools = (0..200)
        .map(|i| Tool {
            name: format!("tool_{i}"),
            capability: format!("cap{i}"),
            version: "1.0.0".into(),
            description: "x".repeat(4000),
            ..Tool::default()
        })
        .collect();
    let error = running.registry.register(request).await.unwrap_err();
    let RegistryError::InvalidArgument { field, message } = &error else {
        panic!("expected INVALID_ARGUMENT, got {error:?}")
    };
    assert_eq!(field, "tools");
    assert!(message.contains("bytes") && message.contains("limit"), "{message}");
    let status = tonic::Status::from(error);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // The registry is still writing.
    running.registry.register(common::provider("small", "small", "1.0.0", &[])).await.unwrap();
}

#[tokio::test]
async fn a_batch_beyond_one_transaction_is_stored_whole() {
    let cluster = EtcdCluster::start().await;
    let running = registry(&cluster, "/switchboard").await;
    let registry = Arc::new(running.registry.clone());
    // 400 concurrent registrations: the writer batches them past etcd's
    // 128 operations per transaction.
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let request: RegisterAgentRequest =
                    common::provider(&format!("agent{i}"), &format!("cap{i}"), "1.0.0", &[]);
                registry.register(request).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let revision = running.registry.snapshot().revision;
    running.stop().await.unwrap();
    let again = registry_again(&cluster).await;
    let snapshot = again.registry.snapshot();
    assert_eq!(snapshot.agents.len(), 400);
    assert_eq!(snapshot.revision, revision);
}

async fn registry_again(cluster: &EtcdCluster) -> RunningRegistry {
    registry(cluster, "/switchboard").await
}

#[tokio::test]
async fn registrations_go_on_with_one_etcd_member_killed() {
    let mut cluster = EtcdCluster::start().await;
    let running = registry(&cluster, "/switchboard").await;
    running.registry.register(common::provider("before", "before", "1.0.0", &[])).await.unwrap();
    cluster.kill(1);
    for i in 0..20 {
        let name = format!("during{i}");
        running.registry.register(common::provider(&name, &name, "1.0.0", &[])).await.unwrap();
    }
    cluster.restart(1).await;
    running.registry.register(common::provider("after", "after", "1.0.0", &[])).await.unwrap();
    let revision = running.registry.snapshot().revision;
    running.stop().await.unwrap();
    let again = registry_again(&cluster).await;
    assert_eq!(again.registry.snapshot().agents.len(), 22);
    assert_eq!(again.registry.snapshot().revision, revision);
}

#[tokio::test]
async fn without_an_etcd_quorum_the_registry_is_not_ready_but_answers_and_recovers() {
    let mut cluster = EtcdCluster::start().await;
    let running = registry(&cluster, "/switchboard").await;
    let agent = running.registry.register(common::provider("a", "a", "1.0.0", &[])).await.unwrap();
    let readyz = format!("http://{}/readyz", running.admin_addr);
    switchboard_tls::ensure_crypto_provider();
    let status = |url: String| async move {
        let response = reqwest::get(&url).await.ok()?;
        Some((response.status().as_u16(), response.text().await.ok()?))
    };
    assert_eq!(status(readyz.clone()).await.unwrap().0, 200);

    cluster.kill(1);
    cluster.kill(2);
    let (_, body) = eventually("/readyz to report the store", Duration::from_secs(20), || {
        let url = readyz.clone();
        async move { status(url).await.filter(|(code, _)| *code == 503) }
    })
    .await;
    assert!(body.contains("store"), "{body}");
    let grpc = running.grpc_addr.to_string();
    probe_until(&grpc, 1, "grpc.health.v1 to say NOT_SERVING").await;
    // Reads and heartbeats are answered from memory meanwhile.
    assert!(running.registry.snapshot().agents.contains_key(&agent.agent_id));
    let outcome = running.registry.heartbeat(&agent.agent_id);
    assert!(
        matches!(outcome, switchboard_registry::HeartbeatOutcome::Alive(_)),
        "a heartbeat is acknowledged without etcd: {outcome:?}"
    );

    cluster.restart(1).await;
    eventually("/readyz to be ready again", Duration::from_secs(20), || {
        let url = readyz.clone();
        async move { status(url).await.filter(|(code, _)| *code == 200) }
    })
    .await;
    running.registry.register(common::provider("b", "b", "1.0.0", &[])).await.unwrap();
    probe_until(&grpc, 0, "grpc.health.v1 to serve again").await;
}

/// Runs `switchboard probe --grpc` until it exits with `code`.
async fn probe_until(grpc: &str, code: i32, what: &str) {
    eventually(what, Duration::from_secs(20), || async move {
        (switchboard_tests::cli(&["probe", "--grpc", grpc]).await.code == code).then_some(())
    })
    .await;
}
