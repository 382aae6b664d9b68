//! The fault-injection suite, short and seeded (`SWITCHBOARD_FAULT_SEED`,
//! default 13): each test runs one scenario of `switchboard_tests::faults`
//! against real registries, agents and watchers, then checks the whole
//! recorded history (acknowledged writes kept, watch streams exact, no
//! expiry while heartbeats are acknowledged, restart grace, dependents told
//! of crashes, revisions forward). The soak (`bench/soak --minutes N`) runs
//! the same scenarios for longer.

use switchboard_tests::faults::scenario::{
    agent_faults, disk_full, netns_partition, registry_crashes, watcher_faults,
};
use switchboard_tests::faults::seed;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_kill9_freeze_and_restart_loop_loses_no_acknowledged_write() {
    let report = registry_crashes(seed(), 10).await;
    report.assert_clean();
    assert!(report.faults.get("registry kill -9").is_some_and(|n| *n > 0), "{report:?}");
    assert!(report.count("register ok") > 100, "too little load to prove anything: {report:?}");
    assert!(report.count("deregister ok") > 10, "{report:?}");
    assert!(report.count("heartbeat ack") > 100, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_delay_loss_frozen_and_crashed_agents_keep_liveness_and_wiring_right() {
    let report = agent_faults(seed(), 12).await;
    report.assert_clean();
    assert!(report.count("wiring push") > 0, "{report:?}");
    assert!(report.count("fault: agent crash") > 0 || report.faults.len() > 2, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known defect: on an idle machine the `slow` watcher (one message per 50 ms) can stop \
            receiving for good, neither served nor ended (`slow stopped at revision N`); it passes \
            whenever the CPUs are busy. Reproduce alone with --run-ignored ignored-only"]
async fn slow_and_stalled_watchers_resume_or_resync_exactly_through_compaction() {
    let report = watcher_faults(seed(), 6).await;
    report.assert_clean();
    let resyncs = report.faults.get("compaction past a watcher").copied().unwrap_or(0);
    let ended = report.faults.get("slow watcher ended").copied().unwrap_or(0);
    assert!(ended > 0, "no watcher was ever slow enough to be ended: {report:?}");
    assert!(resyncs > 0, "no watcher ever resumed past the compacted history: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known defect: in about one run in a hundred the batch that hit the full disk is \
            left half on disk (events/N beyond the store revision) and the registry refuses \
            to start on that data, even on a larger disk"]
async fn a_full_disk_fails_writes_clearly_stops_the_registry_and_loses_nothing_acknowledged() {
    let outcome = match disk_full(seed()).await {
        Ok(outcome) => outcome,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    assert_eq!(outcome.reopen_error, None, "the data is unusable after the full disk");
    outcome.report.assert_clean();
    assert!(outcome.acknowledged > 0, "{outcome:?}");
    // The write the disk refused says so; the others were cut short by the
    // registry's stop, with the codes of a call whose outcome is unknown.
    let refused = outcome.errors.iter().find(|(code, _)| *code == Code::Internal);
    assert!(refused.is_some_and(|(_, message)| message.contains("storage")), "{outcome:?}");
    for (code, message) in &outcome.errors {
        let expected =
            matches!(code, Code::Internal | Code::Unavailable | Code::Cancelled | Code::Unknown);
        assert!(expected, "{code:?} {message:?}");
    }
    let exit = outcome.exit.expect("the registry stops by itself after a failed write (it hung)");
    assert!(!exit.success(), "the registry exited with success after a storage failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_behind_a_downed_veth_link_expire_only_when_silent_and_come_back() {
    let report = match netns_partition(seed(), 6).await {
        Ok(report) => report,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    report.assert_clean();
    assert!(report.notes.is_empty(), "{report:?}");
    assert!(report.count("heartbeat ack") > 50, "{report:?}");
}
