//! The etcd client (switchboard-etcd) against a real 3-member etcd cluster:
//! reads, compare-and-swap transactions, prefix watches from a revision,
//! leases, and one member killed and restarted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard_etcd::{EtcdClient, EtcdConfig, EtcdError, ops, pb};
use switchboard_tests::etcd::EtcdCluster;
use switchboard_tests::eventually;

#[tokio::test]
async fn txn_compares_on_mod_revision_so_only_one_writer_wins() {
    let cluster = EtcdCluster::start().await;
    let client = cluster.client().await;
    let key = b"/sb/agents/a".to_vec();

    let created = client
        .txn(pb::TxnRequest {
            compare: vec![ops::mod_revision_is(key.clone(), 0)],
            success: vec![ops::put(key.clone(), b"v1".to_vec())],
            failure: vec![],
        })
        .await
        .unwrap();
    assert!(created.succeeded, "creating an absent key holds on mod_revision 0");
    let revision = created.header.unwrap().revision;
    let stored = client.get(key.clone()).await.unwrap().unwrap();
    assert_eq!(stored.mod_revision, revision);

    // Two writers saw `revision`: the first wins, the second's compare fails.
    let write = |value: &'static [u8]| pb::TxnRequest {
        compare: vec![ops::mod_revision_is(key.clone(), revision)],
        success: vec![ops::put(key.clone(), value.to_vec())],
        failure: vec![ops::get(key.clone())],
    };
    assert!(client.txn(write(b"v2")).await.unwrap().succeeded);
    let lost = client.txn(write(b"v3")).await.unwrap();
    assert!(!lost.succeeded);
    assert_eq!(client.get(key).await.unwrap().unwrap().value, b"v2");
}

#[tokio::test]
async fn watch_from_a_revision_replays_every_change_in_order_then_follows() {
    let cluster = EtcdCluster::start().await;
    let client = cluster.client().await;
    let first = client.put(b"/sb/agents/a".to_vec(), b"1".to_vec(), 0).await.unwrap();
    client.put(b"/sb/agents/b".to_vec(), b"2".to_vec(), 0).await.unwrap();
    client.put(b"/sb/other".to_vec(), b"x".to_vec(), 0).await.unwrap();
    client.delete_prefix(b"/sb/agents/a").await.unwrap();

    let mut watch = client.watch_prefix(b"/sb/agents/", first).await.unwrap();
    let live = client.put(b"/sb/agents/c".to_vec(), b"3".to_vec(), 0).await.unwrap();
    let mut seen = Vec::new();
    while seen.last().map(|(revision, _, _)| *revision) != Some(live) {
        let response = watch.next(first).await.unwrap();
        for event in response.events {
            let kv = event.kv.unwrap();
            seen.push((kv.mod_revision, event.r#type, String::from_utf8(kv.key).unwrap()));
        }
    }
    let put = pb::event::EventType::Put as i32;
    let delete = pb::event::EventType::Delete as i32;
    let kinds: Vec<_> = seen.iter().map(|(_, kind, key)| (*kind, key.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (put, "/sb/agents/a"),
            (put, "/sb/agents/b"),
            (delete, "/sb/agents/a"),
            (put, "/sb/agents/c")
        ],
        "the prefix's changes, nothing outside it, each once"
    );
    assert!(seen.windows(2).all(|pair| pair[0].0 < pair[1].0), "ordered by revision: {seen:?}");
}

#[tokio::test]
async fn keys_under_a_revoked_lease_vanish_and_a_kept_lease_lives() {
    let cluster = EtcdCluster::start().await;
    let client = cluster.client().await;
    let (lease, ttl) = client.grant_lease(5).await.unwrap();
    assert_eq!(ttl, 5);
    client.put(b"/sb/owners/r1".to_vec(), b"r1".to_vec(), lease).await.unwrap();
    let mut keeper = client.lease_keeper(lease).await.unwrap();
    assert!(keeper.keep_alive().await.unwrap() > 0);
    assert_eq!(client.get(b"/sb/owners/r1".to_vec()).await.unwrap().unwrap().lease, lease);

    client.revoke_lease(lease).await.unwrap();
    assert!(client.get(b"/sb/owners/r1".to_vec()).await.unwrap().is_none());
    assert!(keeper.keep_alive().await.is_err(), "a revoked lease cannot be renewed");
}

#[tokio::test]
async fn a_compacted_start_revision_is_reported_with_the_oldest_kept() {
    let cluster = EtcdCluster::start_with(1).await;
    let client = cluster.client().await;
    let old = client.put(b"/sb/k".to_vec(), b"1".to_vec(), 0).await.unwrap();
    let now = client.put(b"/sb/k".to_vec(), b"2".to_vec(), 0).await.unwrap();
    client.compact(now).await.unwrap();
    let watched = match client.watch_prefix(b"/sb/", old).await {
        Ok(mut watch) => watch.next(old).await.map(|_| ()),
        Err(error) => Err(error),
    };
    match watched {
        Err(EtcdError::Compacted { requested, compact_revision }) => {
            assert_eq!((requested, compact_revision), (old, now));
        }
        other => panic!("expected a compaction error, got {other:?}"),
    }
}

#[tokio::test]
async fn one_member_killed_changes_nothing_and_it_catches_up_on_restart() {
    let mut cluster = EtcdCluster::start().await;
    let client = cluster.client().await;
    let cluster_id = client.cluster_id().await.unwrap();
    assert_ne!(cluster_id, 0);

    cluster.kill(0);
    // Calls on the dead member's connection fail until the balancer drops
    // it; after that every write goes through.
    let written = eventually("a write with one member down", Duration::from_secs(20), || {
        let client = client.clone();
        async move { client.put(b"/sb/during".to_vec(), b"1".to_vec(), 0).await.ok() }
    })
    .await;
    assert_eq!(client.cluster_id().await.unwrap(), cluster_id);

    cluster.restart(0).await;
    let alone = EtcdClient::connect(EtcdConfig::new([cluster.endpoint(0)])).await.unwrap();
    let kv = alone.get(b"/sb/during".to_vec()).await.unwrap().unwrap();
    assert_eq!(kv.mod_revision, written, "the restarted member has the write made without it");
    assert_eq!(alone.cluster_id().await.unwrap(), cluster_id);
}

#[tokio::test]
async fn a_user_with_a_password_works_within_its_role_and_survives_token_expiry() {
    // Tokens expire after one second, so the client must renew them.
    let cluster = EtcdCluster::start_with_args(1, &["--auth-token-ttl", "1"]).await;
    cluster.etcdctl(&["user", "add", "root:root-secret"]);
    cluster.etcdctl(&["user", "add", "sb:sb-secret"]);
    cluster.etcdctl(&["role", "add", "switchboard"]);
    cluster.etcdctl(&[
        "role",
        "grant-permission",
        "switchboard",
        "--prefix=true",
        "readwrite",
        "/sb/",
    ]);
    cluster.etcdctl(&["user", "grant-role", "sb", "switchboard"]);
    cluster.etcdctl(&["auth", "enable"]);

    let anonymous = cluster.client().await;
    let refused = anonymous.put(b"/sb/k".to_vec(), b"1".to_vec(), 0).await.unwrap_err();
    assert!(!refused.is_unavailable(), "a refusal, not an outage: {refused}");

    let wrong = EtcdClient::connect(cluster.config().with_user("sb", "wrong")).await.unwrap_err();
    assert!(wrong.to_string().contains("authenticate"), "{wrong}");

    let client = EtcdClient::connect(cluster.config().with_user("sb", "sb-secret")).await.unwrap();
    client.put(b"/sb/k".to_vec(), b"1".to_vec(), 0).await.unwrap();
    let outside = client.put(b"/other".to_vec(), b"1".to_vec(), 0).await.unwrap_err();
    assert!(outside.to_string().contains("permission denied"), "{outside}");
    // Past the token's TTL the next call is refused once, re-authenticates
    // and goes through.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(client.get(b"/sb/k".to_vec()).await.unwrap().unwrap().value, b"1");
    // The same for opening a watch.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let watch = client.watch_prefix(b"/sb/", 0).await;
    assert!(watch.is_ok(), "{watch:?}");
}
