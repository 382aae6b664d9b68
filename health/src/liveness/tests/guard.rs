//! The mass-expiry guard, with a fleet driven second by second.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::{self, Instant};

use super::{DEGRADED_TO_EXPIRED, DEGRADED_TO_HEALTHY, HEALTHY_TO_DEGRADED, secs};
use crate::{Change, LivenessConfig, LivenessTracker, Status, StatusCounts, Transition};

/// Agents `0..n`, registered at `t0`; the `live` ones heartbeat every 5 s.
struct Fleet {
    t0: Instant,
    now: Duration,
    tracker: LivenessTracker<u32>,
    live: BTreeSet<u32>,
    /// Live agents whose heartbeats say they are not ready.
    unhealthy: BTreeSet<u32>,
}

impl Fleet {
    fn new(n: u32, config: LivenessConfig) -> Self {
        let t0 = Instant::now();
        let mut tracker = LivenessTracker::new(config, t0);
        for key in 0..n {
            tracker.register(key, t0);
        }
        let live = (0..n).collect();
        Self { t0, now: Duration::ZERO, tracker, live, unhealthy: BTreeSet::new() }
    }

    fn silence(&mut self, keys: impl IntoIterator<Item = u32>) {
        for key in keys {
            self.live.remove(&key);
        }
    }

    /// Steps one second at a time up to `until`, heartbeating then polling.
    async fn run_until(&mut self, until: Duration) -> Vec<Transition<u32>> {
        let mut transitions = Vec::new();
        while self.now < until {
            self.now += secs(1);
            time::advance(secs(1)).await;
            let now = Instant::now();
            assert_eq!(now, self.t0 + self.now);
            if self.now.as_secs().is_multiple_of(5) {
                for key in &self.live {
                    self.tracker.heartbeat_with(key, now, !self.unhealthy.contains(key));
                }
            }
            transitions.extend(self.tracker.poll(now));
        }
        transitions
    }

    /// Heartbeats `keys` now (between steps) and makes them live again.
    fn heartbeat_now(&mut self, keys: impl IntoIterator<Item = u32>) -> Vec<Transition<u32>> {
        let now = self.t0 + self.now;
        let mut transitions = Vec::new();
        for key in keys {
            self.live.insert(key);
            transitions.extend(self.tracker.heartbeat(&key, now));
        }
        transitions
    }
}

fn only(transitions: &[Transition<u32>], change: Change) -> usize {
    assert!(transitions.iter().all(|t| t.change == change), "{transitions:?}");
    transitions.len()
}

/// 100 agents, 80 of which went silent at t0 and are held at 30 s.
async fn held_fleet() -> Fleet {
    let mut fleet = Fleet::new(100, LivenessConfig::default());
    fleet.silence(20..100);
    let degraded = fleet.run_until(secs(15)).await;
    assert_eq!(only(&degraded, HEALTHY_TO_DEGRADED), 80);
    assert!(fleet.run_until(secs(29)).await.is_empty());
    assert!(!fleet.tracker.guard_active());

    let at_expiry = fleet.run_until(secs(30)).await;
    assert!(at_expiry.is_empty(), "the guard holds every expiry: {at_expiry:?}");
    assert!(fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.guard_held(), 80);
    assert_eq!(fleet.tracker.counts(), StatusCounts { healthy: 20, degraded: 80, expired: 0 });
    fleet
}

#[tokio::test(start_paused = true)]
async fn mass_silence_engages_the_guard_until_heartbeats_return() {
    let mut fleet = held_fleet().await;
    assert!(fleet.run_until(secs(120)).await.is_empty(), "still held after 2 minutes");
    assert!(fleet.tracker.guard_active());
    assert!((20..100).all(|key| fleet.tracker.status(&key) == Some(Status::Degraded)));

    let revived = fleet.heartbeat_now(20..100);
    assert_eq!(only(&revived, DEGRADED_TO_HEALTHY), 80);
    assert_eq!(fleet.tracker.guard_held(), 0);
    assert!(fleet.run_until(secs(121)).await.is_empty());
    assert!(!fleet.tracker.guard_active(), "disengaged once heartbeats returned");
    assert_eq!(fleet.tracker.counts(), StatusCounts { healthy: 100, degraded: 0, expired: 0 });
}

#[tokio::test(start_paused = true)]
async fn partial_return_disengages_and_the_rest_expire_at_recheck() {
    let mut fleet = held_fleet().await;
    let revived = fleet.heartbeat_now(20..80);
    assert_eq!(only(&revived, DEGRADED_TO_HEALTHY), 60);

    assert!(fleet.run_until(secs(31)).await.is_empty());
    assert!(!fleet.tracker.guard_active(), "20 of 100 is under the threshold");
    assert!(fleet.run_until(secs(34)).await.is_empty(), "held ones wait for their recheck");
    let expired = fleet.run_until(secs(35)).await;
    assert_eq!(only(&expired, DEGRADED_TO_EXPIRED), 20);
    assert!(expired.iter().all(|t| t.key >= 80));
    assert_eq!(fleet.tracker.counts(), StatusCounts { healthy: 80, degraded: 0, expired: 20 });
}

#[tokio::test(start_paused = true)]
async fn deregistering_the_silent_agents_disengages() {
    let mut fleet = held_fleet().await;
    for key in 20..100 {
        fleet.tracker.forget(&key);
    }
    assert_eq!(fleet.tracker.guard_held(), 0);
    assert!(fleet.run_until(secs(31)).await.is_empty());
    assert!(!fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.len(), 20);
    assert_eq!(fleet.tracker.queue_len(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_minority_going_silent_expires_normally() {
    let mut fleet = Fleet::new(100, LivenessConfig::default());
    fleet.silence(0..20);
    assert_eq!(only(&fleet.run_until(secs(15)).await, HEALTHY_TO_DEGRADED), 20);
    assert!(fleet.run_until(secs(29)).await.is_empty());
    assert_eq!(only(&fleet.run_until(secs(30)).await, DEGRADED_TO_EXPIRED), 20);
    assert!(!fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.counts(), StatusCounts { healthy: 80, degraded: 0, expired: 20 });
}

#[tokio::test(start_paused = true)]
async fn agents_that_heartbeat_unhealthy_are_not_counted_as_silent() {
    let mut fleet = Fleet::new(100, LivenessConfig::default());
    fleet.unhealthy.extend(20..90);
    fleet.silence(0..20);
    fleet.run_until(secs(29)).await;
    assert_eq!(fleet.tracker.counts().degraded, 90, "70 unhealthy and 20 late");
    assert_eq!(only(&fleet.run_until(secs(30)).await, DEGRADED_TO_EXPIRED), 20);
    assert!(!fleet.tracker.guard_active(), "70 alive agents are no partition");
}

#[tokio::test(start_paused = true)]
async fn small_fleets_are_never_guarded() {
    let mut fleet = Fleet::new(5, LivenessConfig::default());
    fleet.silence(0..5);
    let transitions = fleet.run_until(secs(30)).await;
    assert_eq!(transitions.len(), 10, "5 degrade and 5 expire: {transitions:?}");
    assert!(!fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.counts().expired, 5);
}

#[tokio::test(start_paused = true)]
async fn purges_are_not_held() {
    let config = LivenessConfig { retention: secs(45), ..Default::default() };
    let mut fleet = Fleet::new(100, config);
    fleet.silence(0..20);
    let transitions = fleet.run_until(secs(30)).await;
    assert_eq!(transitions.len(), 40, "20 degrade and expire normally");

    fleet.run_until(secs(40)).await; // the last heartbeat of 20..80
    fleet.silence(20..80);
    assert_eq!(only(&fleet.run_until(secs(69)).await, HEALTHY_TO_DEGRADED), 60);
    assert!(fleet.run_until(secs(70)).await.is_empty());
    assert!(fleet.tracker.guard_active());

    let purged = fleet.run_until(secs(75)).await;
    assert_eq!(only(&purged, Change::Purge), 20);
    assert!(fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.counts(), StatusCounts { healthy: 20, degraded: 60, expired: 0 });
}

#[tokio::test(start_paused = true)]
async fn every_silent_agent_counts_not_only_those_already_due() {
    let mut fleet = Fleet::new(20, LivenessConfig::default());
    fleet.silence(0..8);
    fleet.run_until(secs(5)).await; // the last heartbeat of 8..12
    fleet.silence(8..12);
    // At 30 s only 8 are due, but 12 of 20 are silent and would expire
    // within the window: a cut staggered over a few seconds is still a cut.
    let first = fleet.run_until(secs(30)).await;
    assert_eq!(only(&first, HEALTHY_TO_DEGRADED), 12, "degraded, none expired");
    assert!(fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.guard_held(), 8);

    // 8..12 come back: 8 of 20 silent is under the threshold, so the held
    // ones expire at their next re-check.
    fleet.live.extend(8..12);
    fleet.heartbeat_now(8..12);
    let resumed = fleet.run_until(secs(40)).await;
    assert_eq!(only(&resumed, DEGRADED_TO_EXPIRED), 8);
    assert!(!fleet.tracker.guard_active());
    assert_eq!(fleet.tracker.guard_held(), 0);
}

#[tokio::test(start_paused = true)]
async fn fraction_one_disables_the_guard() {
    let mut config = LivenessConfig::default();
    config.guard.max_expiring_fraction = 1.0;
    let mut fleet = Fleet::new(100, config);
    fleet.silence(0..100);
    let transitions = fleet.run_until(secs(30)).await;
    assert_eq!(transitions.len(), 200);
    assert!(!fleet.tracker.guard_active());
}
