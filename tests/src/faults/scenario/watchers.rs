//! Slow and stalling watchers, compaction while they are behind, and
//! graceful restarts, on an in-process registry whose watch limits are small
//! (an 8-message queue per watcher, 300 ms before a full queue ends the
//! stream, 64 events of history): a stalled watcher is ended, resumes, and
//! finds its revision compacted away, so it must resync, while the live
//! watchers keep every event.

use std::time::Duration;

use rand::Rng;
use switchboard_proto::v1::EventType;

use super::{rules, settle};
use crate::faults::cluster::{Cluster, Settings};
use crate::faults::load::{WriteLoad, Writers};
use crate::faults::run::{Report, Run};
use crate::faults::watcher::{Pace, Watcher};
use crate::history::OpKind;
use crate::kind;

/// `rounds` stretches of heavy writes; see the module docs.
pub async fn watcher_faults(seed: u64, rounds: usize) -> Report {
    let mut run = Run::new("watcher-faults", seed);
    let settings = Settings { history_max_events: 64, ..Settings::short() };
    let mut config = settings.registry_config();
    config.watch_max_lag = 8;
    config.slow_watcher_timeout = Duration::from_millis(300);
    config.bookmark_interval = Duration::from_millis(300);
    let cluster_seed = run.sub_seed();
    let mut cluster = Cluster::start_in_process(config, &run.history, cluster_seed).await;
    let addr = cluster.addr();

    let load = WriteLoad {
        writers: 2,
        own_ids: 24,
        shared_ids: 4,
        think: Duration::from_millis(5),
        payload: 4000,
    };
    let writers_seed = run.sub_seed();
    let writers = Writers::start(&load, &addr, &run.history, writers_seed);
    let paces = [
        ("live-0", Pace::Live),
        ("live-1", Pace::Live),
        ("slow", Pace::Slow(Duration::from_millis(50))),
        (
            "stalling",
            Pace::Stalls { every: Duration::from_millis(600), stall: Duration::from_millis(3000) },
        ),
    ];
    let mut watchers: Vec<Watcher> =
        paces.iter().map(|(name, pace)| Watcher::start(name, &addr, *pace, &run.history)).collect();

    for _ in 0..rounds {
        let load_for = run.between(Duration::from_millis(800), Duration::from_millis(1500));
        tokio::time::sleep(load_for).await;
        if run.rng.random_bool(0.3) {
            cluster.graceful_restart().await;
            run.injected("registry graceful restart");
        }
    }

    writers.stop().await;
    settle(&mut run, &addr, &mut watchers).await;
    for watcher in watchers {
        watcher.stop().await;
    }
    cluster.stop().await;
    let (resyncs, ended) = watch_faults(&run);
    run.note(format!("{resyncs} resyncs after compaction, {ended} streams ended by the registry"));
    for _ in 0..resyncs {
        run.injected("compaction past a watcher");
    }
    for _ in 0..ended {
        run.injected("slow watcher ended");
    }
    run.finish(&rules(&settings))
}

/// RESYNC_REQUIRED markers received, and streams the registry ended with a
/// resume revision.
fn watch_faults(run: &Run) -> (usize, usize) {
    let mut resyncs = 0;
    let mut ended = 0;
    for op in run.history.ops() {
        match &op.kind {
            OpKind::WatchEvent { message } if kind(message) == EventType::ResyncRequired => {
                resyncs += 1;
            }
            OpKind::WatchEnd { status } if status.contains("fell behind") => ended += 1,
            _ => {}
        }
    }
    (resyncs, ended)
}
