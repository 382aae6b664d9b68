//! The other replicas of a replica-set back end ([`Backend::peers`]), and
//! the one address in front of them all: they share the test registry's
//! store and its settings, and start, stop and restart with it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use switchboard_registry::RegistryConfig;
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::front::Front;
use super::{Running, TestRegistryBuilder, any_port, bind_when_free};

/// The peer replicas of one test registry (none on a single-node back end).
#[derive(Default)]
pub(super) struct Peers {
    replicas: Vec<Running>,
    /// Their own data directories (the store is the test registry's).
    _dirs: Vec<TempDir>,
    front: Option<Front>,
}

/// How the test registry itself runs, so its peers run the same way.
pub(super) enum Like<'a> {
    InProcess(&'a RegistryConfig),
    Child,
}

// === impl Peers ===

impl Peers {
    /// Starts `builder`'s peers on the store of `dir` and the front before
    /// `main` and them; returns the address clients use. With no peers to
    /// start, that is `main` itself.
    pub(super) async fn start(
        builder: &TestRegistryBuilder,
        dir: &Path,
        main: SocketAddr,
        like: Like<'_>,
    ) -> (SocketAddr, Self) {
        let backend = builder.chosen_backend();
        if backend.peers() == 0 {
            return (main, Self::default());
        }
        let mut peers = Self::default();
        let mut replicas = vec![main];
        for _ in 0..backend.peers() {
            let own = TempDir::new().expect("peer data dir");
            let running = match &like {
                Like::InProcess(config) => in_process(builder, dir, (*config).clone()).await,
                Like::Child => {
                    Running::Child(builder.spawn_process(dir, own.path(), any_port()).await)
                }
            };
            replicas.push(running.grpc_addr());
            peers.replicas.push(running);
            peers._dirs.push(own);
        }
        let listener = match builder.pinned {
            Some(addr) => bind_when_free(addr).await,
            None => TcpListener::bind(any_port()).await.expect("bind the front"),
        };
        let addr = listener.local_addr().expect("front addr");
        peers.front = Some(Front::start(listener, replicas));
        (addr, peers)
    }

    /// How many peers run.
    pub(super) fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Stops every peer gracefully (their streams end as a registry's do,
    /// through the front); the front stops when dropped, after the test
    /// registry itself stopped.
    pub(super) async fn stop(self) -> Option<Front> {
        for replica in self.replicas {
            replica.stop().await;
        }
        self.front
    }

    /// `kill -9`s the peers (in process: drops them), then stops the front.
    pub(super) fn kill(self) {
        for replica in self.replicas {
            if let Running::Child(process) = replica {
                process.kill();
            }
        }
        drop(self.front);
    }

    /// Every peer's Prometheus text (in process only).
    pub(super) fn metrics(&self) -> impl Iterator<Item = String> + '_ {
        self.replicas.iter().map(|replica| match replica {
            Running::InProcess(running) => running.registry.render_metrics(),
            Running::Child(_) => panic!("a child-process replica has no in-process metrics"),
        })
    }
}

async fn in_process(builder: &TestRegistryBuilder, dir: &Path, config: RegistryConfig) -> Running {
    let store = builder.chosen_backend().store(dir);
    let loaded = switchboard_registry::load(config, store).await.expect("load a peer replica");
    Running::InProcess(loaded.serve(any_port(), any_port()).await.expect("serve a peer replica"))
}

/// Samples of several Prometheus texts, each sample's values added up: the
/// streams, watchers and transitions of a replica set are those of its
/// replicas together.
pub(super) fn summed(texts: impl Iterator<Item = String>) -> String {
    let mut order = Vec::new();
    let mut sums: HashMap<String, f64> = HashMap::new();
    for text in texts {
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((sample, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.parse::<f64>() else { continue };
            if !sums.contains_key(sample) {
                order.push(sample.to_owned());
            }
            *sums.entry(sample.to_owned()).or_default() += value;
        }
    }
    order.iter().map(|sample| format!("{sample} {}\n", sums[sample])).collect()
}
