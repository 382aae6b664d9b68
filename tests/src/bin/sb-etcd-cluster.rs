//! Runs a real 3-member etcd cluster on free loopback ports for test suites
//! run with `SWITCHBOARD_TEST_BACKEND=etcd`: prints
//! `ETCD_ENDPOINTS host:port,host:port,host:port` once every member answers,
//! then runs until SIGTERM or ctrl-c, and kills the members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_tests::etcd::EtcdCluster;

#[tokio::main]
async fn main() {
    let cluster = EtcdCluster::start().await;
    println!("ETCD_ENDPOINTS {}", cluster.endpoint_list());
    eprintln!("etcd data and logs in {}", cluster.dir().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(cluster);
}
