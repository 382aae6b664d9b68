//! The etcd store over TLS, on a real etcd cluster that serves clients only
//! over TLS and requires client certificates (`--client-cert-auth`): the
//! registry binary with `--etcd-tls-ca/--etcd-tls-cert/--etcd-tls-key`
//! keeps its agents across a restart; without a client certificate, or
//! trusting another CA, it refuses to start and says why; `store copy`
//! writes into a TLS etcd; with a member down, calls go to the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use switchboard_proto::v1::ListAgentsRequest;
use switchboard_registry::store::{EtcdStore, Store};
use switchboard_tests::etcd::EtcdCluster;
use switchboard_tests::{Backend, TestRegistry, cli, eventually};

/// `switchboard registry` on `cluster` with `etcd_flags`, on fresh ports
/// and data directory, run to completion: for a start that must fail.
async fn failed_start(etcd_flags: &[String]) -> switchboard_tests::CliRun {
    let data = tempfile::TempDir::new().unwrap();
    let data = data.path().display().to_string();
    let mut args = vec![
        "registry",
        "--registry-addr",
        "127.0.0.1:0",
        "--registry-admin-addr",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--store",
        "etcd",
    ];
    args.extend(etcd_flags.iter().map(String::as_str));
    let run = cli(&args).await;
    assert_ne!(run.code, 0, "the registry must not start: {run:?}");
    assert!(!run.stdout.contains("LISTEN"), "no port may be served: {run:?}");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_a_client_certificate_keeps_its_agents_across_a_restart() {
    let cluster = EtcdCluster::start_tls(3).await;
    let mut flags = vec!["--store".to_owned(), "etcd".to_owned()];
    flags.extend(cluster.flags("registry"));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let registry =
        TestRegistry::builder().backend(Backend::Sled).child_process(&flags).start().await;
    let agent_id = registry
        .registry_client()
        .await
        .register_agent(common::provider("weather", "weather", "1.0.0", &[]))
        .await
        .expect("register on a TLS etcd")
        .into_inner()
        .agent_id;

    let registry = registry.restart().await;
    let listed = registry
        .registry_client()
        .await
        .list_agents(ListAgentsRequest::default())
        .await
        .expect("list after the restart")
        .into_inner();
    let ids: Vec<&str> = listed.agents.iter().map(|agent| agent.id.as_str()).collect();
    assert_eq!(ids, [agent_id.as_str()], "the agent survives the restart in etcd");

    // The state is etcd's: a client of our own reads it under the prefix.
    let (kvs, _) = cluster.client().await.get_prefix(b"/switchboard/agents/").await.unwrap();
    assert_eq!(kvs.len(), 1);
    registry.stop().await;
}

#[tokio::test]
async fn without_a_client_certificate_or_trusting_another_ca_the_registry_refuses_to_start() {
    let cluster = EtcdCluster::start_tls(1).await;
    let certs = cluster.certs().unwrap();
    let endpoints = cluster.endpoint_list();

    // etcd requires a client certificate; none is given.
    let anonymous = failed_start(&[
        "--etcd-endpoints".into(),
        endpoints.clone(),
        "--etcd-tls-ca".into(),
        certs.ca.display().to_string(),
    ])
    .await;
    let expected = "the server asked for a client certificate and none is configured \
                    (give --etcd-tls-cert and --etcd-tls-key)";
    assert!(anonymous.stderr.contains("etcd"), "{anonymous:?}");
    assert!(anonymous.stderr.contains(expected), "{anonymous:?}");

    // A CA of its own: the members' certificate is not signed by it.
    let other = tempfile::TempDir::new().unwrap();
    let foreign = switchboard_tls::dev::generate(other.path(), &[], &[]).unwrap();
    let mut flags = cluster.flags("registry");
    let ca = flags.iter().position(|flag| flag == "--etcd-tls-ca").unwrap() + 1;
    flags[ca] = foreign.ca.display().to_string();
    let distrusted = failed_start(&flags).await;
    let expected = format!("not signed by the CA in --etcd-tls-ca {}", foreign.ca.display());
    assert!(distrusted.stderr.contains(&expected), "{distrusted:?}");

    // Plaintext to a TLS member is refused too (the port answers TLS only).
    let plain = cluster.endpoint(0).replace("https://", "http://");
    let plaintext = failed_start(&["--etcd-endpoints".into(), plain]).await;
    assert!(
        plaintext.stderr.contains("if it serves TLS, give https:// endpoints"),
        "{plaintext:?}"
    );
}

#[tokio::test]
async fn a_missing_certificate_file_fails_the_start_naming_the_flag_and_the_file() {
    let cluster = EtcdCluster::start_tls(1).await;
    let mut flags = cluster.flags("registry");
    let key = flags.iter().position(|flag| flag == "--etcd-tls-key").unwrap() + 1;
    flags[key] = "/nonexistent/etcd-client-key.pem".into();
    let run = failed_start(&flags).await;
    assert!(
        run.stderr.contains("--etcd-tls-key /nonexistent/etcd-client-key.pem: cannot read"),
        "{run:?}"
    );
}

#[tokio::test]
async fn store_copy_writes_into_a_tls_etcd() {
    let cluster = EtcdCluster::start_tls(1).await;
    let sled_dir = tempfile::TempDir::new().unwrap();
    let running = common::serve_sled(sled_dir.path()).await;
    running.registry.register(common::provider("weather", "weather", "1.0.0", &[])).await.unwrap();
    running.registry.register(common::provider("date", "date", "1.0.0", &[])).await.unwrap();
    running.stop().await.unwrap();

    let sled = format!("sled:{}", sled_dir.path().display());
    let etcd = format!("etcd:{}", cluster.endpoint_list());
    let mut args =
        vec!["store".to_owned(), "copy".into(), "--from".into(), sled, "--to".into(), etcd];
    // `flags` starts with --etcd-endpoints: `store copy` takes them in --to.
    args.extend(cluster.flags("registry").into_iter().skip(2));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cli(&args).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("copied 2 agents"), "{run:?}");

    let store = EtcdStore::open(cluster.config(), "/switchboard").await.unwrap();
    let mut names: Vec<String> =
        store.load().await.unwrap().agents.into_iter().map(|agent| agent.name).collect();
    names.sort();
    assert_eq!(names, ["date", "weather"]);
}

#[tokio::test]
async fn with_one_member_down_calls_go_to_the_others_over_tls() {
    let mut cluster = EtcdCluster::start_tls(3).await;
    let client = cluster.client().await;
    client.put(b"/sb/before".to_vec(), b"1".to_vec(), 0).await.unwrap();

    cluster.kill(0);
    let written = eventually("a write with one member down", Duration::from_secs(20), || {
        let client = client.clone();
        async move { client.put(b"/sb/during".to_vec(), b"2".to_vec(), 0).await.ok() }
    })
    .await;
    // The dead member is passed over once dialling it failed: a run of
    // reads goes to the live members (a read that picked the dead member
    // again, once it is retried, fails fast).
    let mut failed = 0;
    for _ in 0..50 {
        match client.get(b"/sb/during".to_vec()).await {
            Ok(kv) => assert_eq!(kv.unwrap().mod_revision, written),
            Err(error) => {
                assert!(error.is_unavailable(), "{error}");
                failed += 1;
            }
        }
    }
    assert!(failed < 10, "{failed} of 50 reads failed with one member of three down");

    cluster.restart(0).await;
    let only = cluster.config();
    let alone = switchboard_etcd::EtcdClient::connect(switchboard_etcd::EtcdConfig {
        endpoints: vec![cluster.endpoint(0)],
        ..only
    })
    .await
    .unwrap();
    let kv = alone.get(b"/sb/during".to_vec()).await.unwrap().unwrap();
    assert_eq!(kv.mod_revision, written, "the restarted member has the write made without it");
}
