//! Property test: random interleavings of events against a reference model.
//!
//! The model states the ladder directly in terms of time: an agent is HEALTHY
//! while its last heartbeat is younger than `degraded_after` and its stream
//! has not been lost since; EXPIRED from `last + expired_after` (or from its
//! restore, for one restored EXPIRED); gone `retention` after that. The
//! harness drives the tracker the way a registry would, polling at every
//! `next_deadline`, and checks after each step that:
//!
//! - the tracker's status of every key is the model's (guard off);
//! - applying the returned transitions to a mirror reproduces the tracker's
//!   statuses (every change is reported, each `from` is right);
//! - no transition ever names a forgotten key;
//! - the queue holds exactly one entry per tracked key;
//! - counts match.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use crate::{
    Cause, Change, GuardConfig, LivenessConfig, LivenessTracker, Status, StatusCounts, Transition,
};

#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Heartbeat(u8),
    Lost(u8),
    Forget(u8),
    Restore(u8, Status),
    Advance(u64),
}

#[derive(Debug, Clone, Copy)]
struct ModelAgent {
    last: Instant,
    /// Restored after a restart and silent since: no last heartbeat to show.
    restored: bool,
    lost: bool,
    expired_from: Option<Instant>,
}

struct Harness {
    config: LivenessConfig,
    /// With the guard on, expiry timing is not modelled; only the rest is.
    guarded: bool,
    start: Instant,
    now: Instant,
    tracker: LivenessTracker<u8>,
    model: HashMap<u8, ModelAgent>,
    mirror: HashMap<u8, Status>,
    forgotten: HashSet<u8>,
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn config(guarded: bool) -> LivenessConfig {
    let guard = if guarded {
        GuardConfig { max_expiring_fraction: 0.5, window: ms(6000), min_agents: 2 }
    } else {
        GuardConfig { min_agents: usize::MAX, ..Default::default() }
    };
    LivenessConfig {
        interval: ms(1000),
        degraded_after: ms(3000),
        expired_after: ms(6000),
        retention: ms(5000),
        guard,
    }
}

fn status_strategy() -> impl Strategy<Value = Status> {
    prop_oneof![Just(Status::Healthy), Just(Status::Degraded), Just(Status::Expired)]
}

fn op_strategy(keys: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..keys).prop_map(Op::Register),
        6 => (0..keys).prop_map(Op::Heartbeat),
        2 => (0..keys).prop_map(Op::Lost),
        1 => (0..keys).prop_map(Op::Forget),
        1 => ((0..keys), status_strategy()).prop_map(|(k, s)| Op::Restore(k, s)),
        5 => (0u64..9000).prop_map(Op::Advance),
    ]
}

// === impl ModelAgent ===

impl ModelAgent {
    fn fresh(now: Instant) -> Self {
        Self { last: now, restored: false, lost: false, expired_from: None }
    }

    /// What the ladder implies at `at`; `None` once purged.
    fn status(&self, config: &LivenessConfig, at: Instant) -> Option<Status> {
        let expired_at = self.expired_from.unwrap_or(self.last + config.expired_after);
        if at >= expired_at + config.retention {
            None
        } else if at >= expired_at {
            Some(Status::Expired)
        } else if self.lost || at >= self.last + config.degraded_after {
            Some(Status::Degraded)
        } else {
            Some(Status::Healthy)
        }
    }

    fn healthy(&self, config: &LivenessConfig, at: Instant) -> bool {
        !self.lost && self.expired_from.is_none() && at < self.last + config.degraded_after
    }
}

// === impl Harness ===

impl Harness {
    fn new(guarded: bool) -> Self {
        let config = config(guarded);
        let now = Instant::now();
        Self {
            tracker: LivenessTracker::new(config.clone(), now),
            config,
            guarded,
            start: now,
            now,
            model: HashMap::new(),
            mirror: HashMap::new(),
            forgotten: HashSet::new(),
        }
    }

    fn model_status(&self, key: u8) -> Option<Status> {
        self.model.get(&key).and_then(|agent| agent.status(&self.config, self.now))
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Register(key) => {
                let expected = self.revival(key);
                let got = self.tracker.register(key, now);
                self.check_returned(key, got, expected);
                self.model.insert(key, ModelAgent::fresh(now));
                self.mirror.insert(key, Status::Healthy);
                self.forgotten.remove(&key);
            }
            Op::Heartbeat(key) => {
                let expected = self.revival(key).filter(|_| self.tracker.is_tracked(&key));
                let got = self.tracker.heartbeat(&key, now);
                self.check_returned(key, got, expected);
                if let Some(agent) = self.model.get_mut(&key) {
                    *agent = ModelAgent::fresh(now);
                    self.mirror.insert(key, Status::Healthy);
                }
            }
            Op::Lost(key) => {
                let got = self.tracker.connection_lost(&key, now);
                let was = self.mirror.get(&key).copied();
                let late = self.model.get(&key).is_some_and(|agent| !agent.lost);
                if was == Some(Status::Degraded) && late {
                    // Late, and now its stream broke too: the cause changes.
                    let change = got.map(|t| t.change);
                    assert!(
                        matches!(change, Some(Change::Cause { to: Cause::StreamBroke, .. })),
                        "agent {key}: expected a cause change, got {change:?}"
                    );
                    if let Some(agent) = self.model.get_mut(&key) {
                        agent.lost = true;
                    }
                    return;
                }
                let expected = (was == Some(Status::Healthy))
                    .then_some(Change::Status { from: Status::Healthy, to: Status::Degraded });
                self.check_returned(key, got, expected);
                if let Some(agent) = self.model.get_mut(&key)
                    && expected.is_some()
                {
                    agent.lost = true;
                    self.mirror.insert(key, Status::Degraded);
                }
            }
            Op::Forget(key) => {
                self.tracker.forget(&key);
                self.model.remove(&key);
                self.mirror.remove(&key);
                self.forgotten.insert(key);
            }
            Op::Restore(key, status) => {
                self.tracker.restore(key, status, Some(Cause::StreamBroke), now);
                let agent = ModelAgent {
                    last: now,
                    restored: true,
                    lost: status == Status::Degraded,
                    expired_from: (status == Status::Expired).then_some(now),
                };
                self.model.insert(key, agent);
                self.mirror.insert(key, status);
                self.forgotten.remove(&key);
            }
            Op::Advance(step) => {
                let target = now + ms(step);
                while let Some(deadline) = self.tracker.next_deadline().filter(|d| *d <= target) {
                    assert!(deadline > self.now, "next_deadline is never in the past");
                    self.poll(deadline);
                }
                self.poll(target);
            }
        }
        self.check();
    }

    /// The change a heartbeat or register should report for `key`.
    fn revival(&self, key: u8) -> Option<Change> {
        match self.mirror.get(&key).copied() {
            None | Some(Status::Healthy) => None,
            Some(from) => Some(Change::Status { from, to: Status::Healthy }),
        }
    }

    fn check_returned(&self, key: u8, got: Option<Transition<u8>>, expected: Option<Change>) {
        assert_eq!(
            got,
            expected.map(|change| Transition { key, change }),
            "at {:?}",
            self.elapsed()
        );
    }

    fn poll(&mut self, at: Instant) {
        self.now = at;
        for transition in self.tracker.poll(at) {
            let key = transition.key;
            assert!(!self.forgotten.contains(&key), "transition for forgotten key: {transition:?}");
            let mirrored = self.mirror.get(&key).copied();
            match transition.change {
                Change::Status { from, to } => {
                    assert_eq!(mirrored, Some(from), "wrong `from` in {transition:?}");
                    assert_ne!(from, to);
                    self.mirror.insert(key, to);
                    if to == Status::Expired && self.guarded {
                        // Expiry time depends on the guard; follow the tracker.
                        if let Some(agent) = self.model.get_mut(&key) {
                            agent.expired_from = Some(at);
                        }
                    }
                }
                Change::Cause { .. } => panic!("polls never change a cause: {transition:?}"),
                Change::Purge => {
                    assert_eq!(mirrored, Some(Status::Expired), "purge of a live agent");
                    self.mirror.remove(&key);
                    if self.guarded {
                        self.model.remove(&key);
                    }
                }
            }
        }
        if !self.guarded {
            let config = self.config.clone();
            self.model.retain(|_, agent| agent.status(&config, at).is_some());
        }
    }

    fn check(&self) {
        let at = self.elapsed();
        let mut counts = StatusCounts::default();
        for key in 0..=u8::MAX {
            let status = self.tracker.status(&key);
            assert_eq!(status, self.mirror.get(&key).copied(), "mirror of {key} at {at:?}");
            if !self.guarded {
                assert_eq!(status, self.model_status(key), "model of {key} at {at:?}");
            }
            let Some(status) = status else { continue };
            let agent = self.model.get(&key).copied();
            let healthy = agent.is_some_and(|a| a.healthy(&self.config, self.now));
            assert_eq!(status == Status::Healthy, healthy, "healthy iff fresh: {key} at {at:?}");
            match status {
                Status::Healthy => counts.healthy += 1,
                Status::Degraded => counts.degraded += 1,
                Status::Expired => counts.expired += 1,
            }
            let last = agent.filter(|a| !a.restored).map(|a| a.last);
            assert_eq!(self.tracker.last_heartbeat(&key), last);
        }
        assert_eq!(self.tracker.counts(), counts);
        assert_eq!(self.tracker.len(), counts.total());
        assert_eq!(self.tracker.queue_len(), self.tracker.len(), "one queue entry per key");
        assert!(self.tracker.guard_held() <= counts.degraded);
        if !self.guarded {
            assert!(!self.tracker.guard_active());
        }
        assert!(self.tracker.next_deadline().is_none_or(|d| d > self.now));
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tracker_follows_the_reference_model(ops in prop::collection::vec(op_strategy(6), 1..120)) {
        let mut harness = Harness::new(false);
        for op in ops {
            harness.apply(op);
        }
    }

    #[test]
    fn guarded_tracker_keeps_its_invariants(ops in prop::collection::vec(op_strategy(12), 1..200)) {
        let mut harness = Harness::new(true);
        for op in ops {
            harness.apply(op);
        }
    }
}
