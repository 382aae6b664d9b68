//! Runs a real 3-member etcd cluster on free loopback ports for test suites
//! run with `SWITCHBOARD_TEST_BACKEND=etcd`: prints
//! `ETCD_ENDPOINTS host:port,host:port,host:port` once every member answers,
//! then runs until stdin closes or SIGTERM, and kills the members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;

use switchboard_tests::etcd::EtcdCluster;

#[tokio::main]
async fn main() {
    let cluster = EtcdCluster::start().await;
    println!("ETCD_ENDPOINTS {}", cluster.endpoint_list());
    eprintln!("etcd data and logs in {}", cluster.dir().display());
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = stdin_closed => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(cluster);
}
