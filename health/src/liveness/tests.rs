//! The ladder, restore grace and the deadline queue, driven with paused time.

use std::time::Duration;

use tokio::time::{self, Instant};

use super::*;

mod guard;
mod model;

const MS: Duration = Duration::from_millis(1);
const HEALTHY_TO_DEGRADED: Change = Change::Status { from: Status::Healthy, to: Status::Degraded };
const DEGRADED_TO_EXPIRED: Change = Change::Status { from: Status::Degraded, to: Status::Expired };
const DEGRADED_TO_HEALTHY: Change = Change::Status { from: Status::Degraded, to: Status::Healthy };
const EXPIRED_TO_HEALTHY: Change = Change::Status { from: Status::Expired, to: Status::Healthy };

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Advances paused time to `t0 + offset` and returns the new now.
async fn at(t0: Instant, offset: Duration) -> Instant {
    let target = t0 + offset;
    let now = Instant::now();
    assert!(target >= now, "tests only move time forward");
    time::advance(target - now).await;
    assert_eq!(Instant::now(), target);
    target
}

fn changes<K>(transitions: Vec<Transition<K>>) -> Vec<(K, Change)> {
    transitions.into_iter().map(|t| (t.key, t.change)).collect()
}

fn tracker(t0: Instant) -> LivenessTracker<&'static str> {
    LivenessTracker::new(LivenessConfig::default(), t0)
}

#[tokio::test(start_paused = true)]
async fn ladder_transitions_at_exact_times() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    assert_eq!(tracker.register("a", t0), None);
    assert_eq!(tracker.status(&"a"), Some(Status::Healthy));
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(15)));

    let now = at(t0, secs(15) - MS).await;
    assert!(tracker.poll(now).is_empty(), "nothing before degraded_after");
    assert_eq!(tracker.status(&"a"), Some(Status::Healthy));

    let now = at(t0, secs(15)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(30)));

    let now = at(t0, secs(30) - MS).await;
    assert!(tracker.poll(now).is_empty(), "nothing before expired_after");
    assert_eq!(tracker.status(&"a"), Some(Status::Degraded));

    let now = at(t0, secs(30)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", DEGRADED_TO_EXPIRED)]);
    assert_eq!(tracker.status(&"a"), Some(Status::Expired));
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(630)));

    let now = at(t0, secs(630) - MS).await;
    assert!(tracker.poll(now).is_empty(), "expired records are kept for retention");
    assert!(tracker.is_tracked(&"a"));

    let now = at(t0, secs(630)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", Change::Purge)]);
    assert!(!tracker.is_tracked(&"a"));
    assert!(tracker.is_empty());
    assert_eq!(tracker.next_deadline(), None);
    assert_eq!(tracker.queue_len(), 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_reset_the_timers() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(10)).await;
    assert_eq!(tracker.heartbeat(&"a", now), None, "healthy stays healthy");
    assert_eq!(tracker.last_heartbeat(&"a"), Some(now));

    // The queue is re-armed lazily: the stale deadline pops and moves.
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(15)));
    let now = at(t0, secs(15)).await;
    assert!(tracker.poll(now).is_empty());
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(25)));

    let now = at(t0, secs(25) - MS).await;
    assert!(tracker.poll(now).is_empty());
    let now = at(t0, secs(25)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);
    let now = at(t0, secs(40)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", DEGRADED_TO_EXPIRED)]);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_revives_degraded() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(15)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);

    let now = at(t0, secs(16)).await;
    let revived = tracker.heartbeat(&"a", now);
    assert_eq!(revived, Some(Transition { key: "a", change: DEGRADED_TO_HEALTHY }));
    assert_eq!(tracker.status(&"a"), Some(Status::Healthy));

    let now = at(t0, secs(30)).await;
    assert!(tracker.poll(now).is_empty(), "the old expiry deadline no longer applies");
    let now = at(t0, secs(31)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_revives_expired_and_rearms_early() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(30)).await;
    assert_eq!(
        changes(tracker.poll(now)),
        [("a", HEALTHY_TO_DEGRADED), ("a", DEGRADED_TO_EXPIRED)]
    );

    let now = at(t0, secs(40)).await;
    let revived = tracker.heartbeat(&"a", now);
    assert_eq!(revived, Some(Transition { key: "a", change: EXPIRED_TO_HEALTHY }));
    // The purge deadline (630 s) is replaced, not left behind.
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(55)));
    assert_eq!(tracker.queue_len(), 1);
    let now = at(t0, secs(55)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);
}

#[tokio::test(start_paused = true)]
async fn connection_lost_degrades_at_once_and_expires_on_time() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(10)).await;
    tracker.heartbeat(&"a", now);

    let now = at(t0, secs(12)).await;
    let lost = tracker.connection_lost(&"a", now);
    assert_eq!(lost, Some(Transition { key: "a", change: HEALTHY_TO_DEGRADED }));
    assert_eq!(tracker.status(&"a"), Some(Status::Degraded));
    assert_eq!(tracker.connection_lost(&"a", now), None, "already degraded");
    assert_eq!(tracker.connection_lost(&"unknown", now), None);

    let now = at(t0, secs(25)).await;
    assert!(tracker.poll(now).is_empty(), "no second degrade at last + degraded_after");
    let now = at(t0, secs(40) - MS).await;
    assert!(tracker.poll(now).is_empty());
    let now = at(t0, secs(40)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", DEGRADED_TO_EXPIRED)]);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_after_connection_lost_revives() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    tracker.connection_lost(&"a", t0);
    let now = at(t0, secs(3)).await;
    let revived = tracker.heartbeat(&"a", now);
    assert_eq!(revived, Some(Transition { key: "a", change: DEGRADED_TO_HEALTHY }));
    let now = at(t0, secs(18) - MS).await;
    assert!(tracker.poll(now).is_empty());
    let now = at(t0, secs(18)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);
}

#[tokio::test(start_paused = true)]
async fn unknown_keys_are_ignored() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    assert_eq!(tracker.heartbeat(&"ghost", t0), None);
    assert!(!tracker.is_tracked(&"ghost"));
    assert_eq!(tracker.status(&"ghost"), None);
    assert_eq!(tracker.last_heartbeat(&"ghost"), None);
    tracker.forget(&"ghost");
    assert!(tracker.is_empty());
}

#[tokio::test(start_paused = true)]
async fn register_again_resets_and_reports_revival() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(5)).await;
    assert_eq!(tracker.register("a", now), None, "re-registering a healthy agent");
    assert_eq!(tracker.last_heartbeat(&"a"), Some(now));

    let now = at(t0, secs(40)).await;
    tracker.poll(now);
    assert_eq!(tracker.status(&"a"), Some(Status::Expired));
    let again = tracker.register("a", now);
    assert_eq!(again, Some(Transition { key: "a", change: EXPIRED_TO_HEALTHY }));
    assert_eq!(tracker.len(), 1);
    assert_eq!(tracker.queue_len(), 1);
    assert_eq!(tracker.next_deadline(), Some(now + secs(15)));
}

#[tokio::test(start_paused = true)]
async fn one_poll_returns_everything_due_in_deadline_order() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(20)).await;
    tracker.register("b", now);
    let now = at(t0, secs(40)).await;
    assert_eq!(
        changes(tracker.poll(now)),
        [("a", HEALTHY_TO_DEGRADED), ("a", DEGRADED_TO_EXPIRED), ("b", HEALTHY_TO_DEGRADED)]
    );

    // A long gap: expire and purge in the same poll.
    let now = at(t0, secs(2000)).await;
    assert_eq!(
        changes(tracker.poll(now)),
        [("b", DEGRADED_TO_EXPIRED), ("a", Change::Purge), ("b", Change::Purge)]
    );
    assert!(tracker.is_empty());
}

#[tokio::test(start_paused = true)]
async fn forgotten_agents_never_transition() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    tracker.register("b", t0);
    tracker.forget(&"a");
    assert_eq!(tracker.queue_len(), 1);
    let now = at(t0, secs(3600)).await;
    let transitions = tracker.poll(now);
    assert!(transitions.iter().all(|t| t.key == "b"), "{transitions:?}");
    assert_eq!(transitions.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn counts_follow_the_ladder() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    for key in ["a", "b", "c"] {
        tracker.register(key, t0);
    }
    tracker.connection_lost(&"b", t0);
    assert_eq!(tracker.counts(), StatusCounts { healthy: 2, degraded: 1, expired: 0 });
    let now = at(t0, secs(20)).await;
    tracker.heartbeat(&"c", now);
    tracker.poll(now);
    assert_eq!(tracker.counts(), StatusCounts { healthy: 1, degraded: 2, expired: 0 });
    let now = at(t0, secs(30)).await;
    tracker.poll(now);
    assert_eq!(tracker.counts(), StatusCounts { healthy: 1, degraded: 0, expired: 2 });
    tracker.forget(&"a");
    assert_eq!(tracker.counts(), StatusCounts { healthy: 1, degraded: 0, expired: 1 });
    assert_eq!(tracker.counts().total(), tracker.len());
}

#[tokio::test(start_paused = true)]
async fn restored_agents_get_a_full_grace_period() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.restore("h", Status::Healthy, None, t0);
    tracker.restore("d", Status::Degraded, None, t0);
    tracker.restore("e", Status::Expired, None, t0);
    assert_eq!(tracker.counts(), StatusCounts { healthy: 1, degraded: 1, expired: 1 });
    assert_eq!(tracker.last_heartbeat(&"d"), None, "a restore is not a heartbeat");
    assert_eq!(tracker.cause(&"d"), Some(Cause::NeverHeartbeated));

    let now = at(t0, secs(15)).await;
    assert_eq!(changes(tracker.poll(now)), [("h", HEALTHY_TO_DEGRADED)]);
    let now = at(t0, secs(30) - MS).await;
    assert!(tracker.poll(now).is_empty(), "nothing expires before now + expired_after");
    let now = at(t0, secs(30)).await;
    let mut expired = changes(tracker.poll(now));
    expired.sort_by_key(|(key, _)| *key);
    assert_eq!(expired, [("d", DEGRADED_TO_EXPIRED), ("h", DEGRADED_TO_EXPIRED)]);

    let now = at(t0, secs(600) - MS).await;
    assert!(tracker.poll(now).is_empty());
    let now = at(t0, secs(600)).await;
    assert_eq!(changes(tracker.poll(now)), [("e", Change::Purge)]);
}

#[tokio::test(start_paused = true)]
async fn reconnecting_within_the_grace_period() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.restore("h", Status::Healthy, None, t0);
    tracker.restore("d", Status::Degraded, None, t0);
    tracker.restore("e", Status::Expired, None, t0);

    let now = at(t0, secs(10)).await;
    assert_eq!(tracker.heartbeat(&"h", now), None, "already healthy: no transition");
    assert_eq!(tracker.status(&"h"), Some(Status::Healthy));
    assert_eq!(
        tracker.heartbeat(&"d", now),
        Some(Transition { key: "d", change: DEGRADED_TO_HEALTHY })
    );
    assert_eq!(
        tracker.heartbeat(&"e", now),
        Some(Transition { key: "e", change: EXPIRED_TO_HEALTHY })
    );
    assert_eq!(tracker.counts(), StatusCounts { healthy: 3, degraded: 0, expired: 0 });
    // h's entry is re-armed lazily; d and e were re-armed eagerly to 25 s.
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(15)));
    assert_eq!(tracker.queue_len(), 3);

    let now = at(t0, secs(25) - MS).await;
    assert!(tracker.poll(now).is_empty());
}

#[tokio::test(start_paused = true)]
async fn restore_replaces_a_tracked_record() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(5)).await;
    tracker.restore("a", Status::Expired, None, now);
    assert_eq!(tracker.status(&"a"), Some(Status::Expired));
    assert_eq!(tracker.len(), 1);
    assert_eq!(tracker.queue_len(), 1);
    assert_eq!(tracker.counts(), StatusCounts { healthy: 0, degraded: 0, expired: 1 });
    assert_eq!(tracker.next_deadline(), Some(now + secs(600)));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_do_not_grow_the_queue() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    tracker.register("b", t0);
    for step in 1..=1000u64 {
        let now = at(t0, Duration::from_millis(step * 100)).await;
        tracker.heartbeat(&"a", now);
        tracker.heartbeat(&"a", now);
        if step % 10 == 0 {
            tracker.heartbeat(&"b", now);
            tracker.poll(now);
        }
        assert_eq!(tracker.queue_len(), 2, "one entry per key at step {step}");
    }
    assert_eq!(tracker.counts().healthy, 2);
}

#[tokio::test(start_paused = true)]
async fn flapping_does_not_grow_the_queue() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let mut now = t0;
    for _ in 0..50 {
        now += secs(31);
        time::advance(secs(31)).await;
        let expired = changes(tracker.poll(now));
        assert_eq!(expired, [("a", HEALTHY_TO_DEGRADED), ("a", DEGRADED_TO_EXPIRED)]);
        assert!(tracker.heartbeat(&"a", now).is_some());
        assert_eq!(tracker.queue_len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn next_deadline_is_the_earliest_transition() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    assert_eq!(tracker.next_deadline(), None);
    tracker.register("a", t0);
    let now = at(t0, secs(4)).await;
    tracker.register("b", now);
    tracker.connection_lost(&"b", now);
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(15)), "a degrades first");

    tracker.forget(&"a");
    // b's entry still sits at its healthy deadline: earlier than the real one, never later.
    assert_eq!(tracker.next_deadline(), Some(t0 + secs(19)));
    let now = at(t0, secs(19)).await;
    assert!(tracker.poll(now).is_empty());
    assert_eq!(
        tracker.next_deadline(),
        Some(t0 + secs(34)),
        "b expires 30 s after its last heartbeat"
    );
}

#[test]
fn earlier_instants_are_clamped() {
    let t0 = Instant::now();
    let mut tracker = LivenessTracker::new(LivenessConfig::default(), t0);
    tracker.register("a", t0 + secs(20));
    tracker.heartbeat(&"a", t0 + secs(10));
    assert_eq!(tracker.last_heartbeat(&"a"), Some(t0 + secs(20)));
}

#[test]
fn status_names_are_lowercase() {
    assert_eq!(Status::Healthy.to_string(), "healthy");
    assert_eq!(Status::Degraded.as_str(), "degraded");
    assert_eq!(Status::Expired.to_string(), "expired");
}

#[tokio::test(start_paused = true)]
async fn the_cause_of_degradation_is_tracked() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("silent", t0);
    tracker.register("late", t0);
    tracker.heartbeat(&"late", t0);
    assert_eq!(tracker.cause(&"late"), None, "healthy agents have no cause");

    let now = at(t0, secs(15)).await;
    tracker.poll(now);
    assert_eq!(tracker.cause(&"silent"), Some(Cause::NeverHeartbeated));
    assert_eq!(tracker.cause(&"late"), Some(Cause::HeartbeatLate));

    // A late agent whose stream then breaks is degraded for the new reason.
    let lost = tracker.connection_lost(&"late", now);
    let to_broken = Change::Cause { from: Cause::HeartbeatLate, to: Cause::StreamBroke };
    assert_eq!(lost, Some(Transition { key: "late", change: to_broken }));
    assert_eq!(tracker.cause(&"late"), Some(Cause::StreamBroke));
    assert_eq!(tracker.connection_lost(&"late", now), None, "already for that reason");

    // A heartbeat clears the cause.
    tracker.heartbeat(&"late", now);
    assert_eq!(tracker.cause(&"late"), None);
}

#[tokio::test(start_paused = true)]
async fn last_heartbeat_is_unset_after_a_restore_until_a_heartbeat() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.restore("a", Status::Healthy, None, t0);
    assert_eq!(tracker.last_heartbeat(&"a"), None);
    let now = at(t0, secs(3)).await;
    tracker.heartbeat(&"a", now);
    assert_eq!(tracker.last_heartbeat(&"a"), Some(now));
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_reports_unhealthy_is_degraded_until_it_reports_ready() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    let now = at(t0, secs(1)).await;

    let sick = tracker.heartbeat_with(&"a", now, false);
    assert_eq!(sick, Some(Transition { key: "a", change: HEALTHY_TO_DEGRADED }));
    assert_eq!(tracker.cause(&"a"), Some(Cause::AgentUnhealthy));
    assert_eq!(tracker.heartbeat_with(&"a", now, false), None, "no transition per heartbeat");

    // Heartbeating while unhealthy keeps it from going late or expiring.
    for s in (6..=60).step_by(5) {
        let now = at(t0, secs(s)).await;
        assert_eq!(tracker.heartbeat_with(&"a", now, false), None);
        assert!(tracker.poll(now).is_empty(), "at {s}s");
    }
    assert_eq!(tracker.cause(&"a"), Some(Cause::AgentUnhealthy));
    assert_eq!(tracker.counts().degraded, 1);

    let now = at(t0, secs(61)).await;
    let well = tracker.heartbeat_with(&"a", now, true);
    assert_eq!(well, Some(Transition { key: "a", change: DEGRADED_TO_HEALTHY }));
    assert_eq!(tracker.cause(&"a"), None);

    // Back to the plain ladder: late after `degraded_after` of silence.
    let now = at(t0, secs(76)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", HEALTHY_TO_DEGRADED)]);
    assert_eq!(tracker.cause(&"a"), Some(Cause::HeartbeatLate));
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_agent_that_goes_silent_is_late_then_expires() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    tracker.heartbeat_with(&"a", t0, false);

    let now = at(t0, secs(15)).await;
    let late = Change::Cause { from: Cause::AgentUnhealthy, to: Cause::HeartbeatLate };
    assert_eq!(changes(tracker.poll(now)), [("a", late)]);
    let now = at(t0, secs(30)).await;
    assert_eq!(changes(tracker.poll(now)), [("a", DEGRADED_TO_EXPIRED)]);

    // An EXPIRED agent that heartbeats unhealthy is alive, but still unhealthy.
    let now = at(t0, secs(31)).await;
    let back = Change::Status { from: Status::Expired, to: Status::Degraded };
    assert_eq!(
        tracker.heartbeat_with(&"a", now, false),
        Some(Transition { key: "a", change: back })
    );
    assert_eq!(tracker.next_deadline(), Some(now + secs(15)), "re-armed at its new deadline");
}

#[tokio::test(start_paused = true)]
async fn a_late_agent_that_reports_unhealthy_changes_cause_and_its_broken_stream_wins() {
    let t0 = Instant::now();
    let mut tracker = tracker(t0);
    tracker.register("a", t0);
    tracker.heartbeat(&"a", t0);
    let now = at(t0, secs(15)).await;
    tracker.poll(now);

    let sick = Change::Cause { from: Cause::HeartbeatLate, to: Cause::AgentUnhealthy };
    assert_eq!(
        tracker.heartbeat_with(&"a", now, false),
        Some(Transition { key: "a", change: sick })
    );
    let broke = Change::Cause { from: Cause::AgentUnhealthy, to: Cause::StreamBroke };
    assert_eq!(tracker.connection_lost(&"a", now), Some(Transition { key: "a", change: broke }));
    assert_eq!(tracker.cause(&"a"), Some(Cause::StreamBroke));
}
