//! The mass-expiry guard: Eureka's self-preservation, for agents.
//!
//! When a large share of the fleet stops heartbeating at once, the likely cause
//! is on the registry's side (a network partition, a stalled node, a load
//! balancer dropping streams), not a simultaneous crash of every agent.
//! Expiring them all would empty every routing table in one step. So the
//! tracker counts expirations over a sliding window and, when too many would
//! happen, holds them back instead.
//!
//! Semantics, checked on every [`poll`](crate::LivenessTracker::poll):
//!
//! - *expiring* = agents expired within the last `window` + every agent now
//!   DEGRADED (silent: each would expire within one window unless it
//!   heartbeats — this includes those held back and those due in this poll).
//!   Counting only the agents already due would let a fleet cut off over a
//!   few milliseconds expire half-way before the guard sees it;
//! - *population* = live (HEALTHY or DEGRADED) agents + agents expired within
//!   the window (so the denominator is roughly the fleet as it was when the
//!   window began);
//! - the guard is **engaged** when `population >= min_agents`,
//!   `expiring > max_expiring_fraction * population`, and there is something
//!   to hold back (held or newly due agents).
//!
//! While engaged, every agent due to expire stays DEGRADED and its expiry is
//! re-checked one `interval` later; `guard_active()` reports it, a `warn` is
//! logged once when it engages and an `info` when it disengages. It
//! disengages as soon as the condition stops holding: held agents heartbeat
//! again (they become HEALTHY and stop counting) or are deregistered, or old
//! expirations slide out of the window. Held agents that are still silent then
//! expire at their next re-check. Purges of already EXPIRED records are never
//! held.
//!
//! Because the window slides, agents that go silent one by one expire until
//! the threshold is reached, and only the rest are held; agents that go silent
//! together (the partition case) are all held.

use std::collections::VecDeque;

use tokio::time::Instant;

use crate::GuardConfig;

/// Sliding-window bookkeeping for the guard; the tracker owns the records.
#[derive(Debug)]
pub(crate) struct Guard {
    config: GuardConfig,
    active: bool,
    /// Instants of expirations, oldest first, pruned to the window.
    recent: VecDeque<Instant>,
    /// Agents currently held back (DEGRADED with a pending re-check).
    held: usize,
}

// === impl Guard ===

impl Guard {
    pub(crate) fn new(config: GuardConfig) -> Self {
        Self { config, active: false, recent: VecDeque::new(), held: 0 }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// One more agent is held back.
    pub(crate) fn hold(&mut self) {
        self.held += 1;
    }

    /// A held agent is no longer held (revived, forgotten, restored or expired).
    pub(crate) fn release(&mut self) {
        self.held = self.held.saturating_sub(1);
    }

    /// Records an expiration that happened at `at`.
    pub(crate) fn record_expired(&mut self, at: Instant) {
        self.recent.push_back(at);
    }

    /// Decides whether the `fresh` agents newly due at `now` (plus the held
    /// ones) may expire. Updates and logs the engaged state. `live` counts
    /// HEALTHY and DEGRADED agents, including the ones due.
    pub(crate) fn allows_expiry(
        &mut self,
        now: Instant,
        live: usize,
        fresh: usize,
        at_risk: usize,
    ) -> bool {
        if let Some(start) = now.checked_sub(self.config.window) {
            while self.recent.front().is_some_and(|at| *at <= start) {
                self.recent.pop_front();
            }
        }
        let recent = self.recent.len();
        let pending = self.held + fresh;
        let expiring = recent + at_risk.max(pending);
        let population = live + recent;
        let threshold = self.config.max_expiring_fraction * population as f64;
        let engage =
            pending > 0 && population >= self.config.min_agents && expiring as f64 > threshold;

        if engage && !self.active {
            tracing::warn!(
                expiring,
                population,
                held = pending,
                max_expiring_fraction = self.config.max_expiring_fraction,
                window = ?self.config.window,
                "mass-expiry guard engaged: holding back expirations until heartbeats return"
            );
        } else if !engage && self.active {
            tracing::info!(
                expiring,
                population,
                released = pending,
                "mass-expiry guard disengaged: expirations resume"
            );
        }
        self.active = engage;
        !engage
    }
}
