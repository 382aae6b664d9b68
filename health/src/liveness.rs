//! The status ladder HEALTHY → DEGRADED → EXPIRED → purged, as pure logic.
//!
//! The tracker never reads a clock and never spawns a task: every method takes
//! `now`, and time only moves when the caller says so. That keeps the ladder
//! exact and testable with `tokio::time::pause()`, and leaves the driving loop
//! to the owner, typically:
//!
//! ```text
//! loop {
//!     select! {
//!         _ = sleep_until(tracker.next_deadline()) => for t in tracker.poll(Instant::now()) { persist(t) },
//!         event = events.recv() => apply(event), // register / heartbeat / connection_lost / forget
//!     }
//! }
//! ```
//!
//! Only transitions come out of the tracker, never heartbeats, so the caller
//! writes to disk on status changes only: a heartbeat never costs a disk write.
//!
//! Deadlines live in a [`DeadlineQueue`] that is armed lazily: a heartbeat
//! only stores the last-seen instant (O(1)), and an entry that pops for an
//! agent that heartbeated since is re-armed at its real deadline instead of
//! firing. Deadlines only move *earlier* on rare events (reviving an EXPIRED
//! agent, `restore`), and those re-arm eagerly in O(log n). As a result
//! [`next_deadline`](LivenessTracker::next_deadline) can be earlier than the
//! real next transition (a `poll` then returns nothing), never later.
//!
//! Expirations go through the mass-expiry guard (see the
//! [crate docs](crate#mass-expiry-guard)); status changes to HEALTHY or
//! DEGRADED and purges never do.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

use crate::LivenessConfig;
use crate::deadline_queue::{DeadlineQueue, Slot};
use crate::guard::Guard;

#[cfg(test)]
mod tests;

/// Where an agent stands on the liveness ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Heartbeating within `degraded_after`.
    Healthy,
    /// Silent for `degraded_after`, or its heartbeat stream broke; still
    /// resolvable, but dependents should prefer healthy providers.
    Degraded,
    /// Silent for `expired_after`: out of every resolution and routing table,
    /// kept for `retention` for operators.
    Expired,
}

/// Why a DEGRADED agent is degraded. The cause decides whether it may still
/// serve as a last resort: a late agent may well be alive, one whose stream
/// broke almost certainly is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// It heartbeated before, and its heartbeats stopped arriving on time.
    HeartbeatLate,
    /// Its heartbeat stream broke without a deregister.
    StreamBroke,
    /// No heartbeat since it registered, or since the registry restarted.
    NeverHeartbeated,
    /// It heartbeats, but says it is not ready: one of its own health checks
    /// fails. Alive, so a last resort like a late agent. Silent for
    /// `degraded_after` after that, it is late like any other.
    AgentUnhealthy,
}

/// What happened to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Its status changed.
    Status {
        /// The status before.
        from: Status,
        /// The status after.
        to: Status,
    },
    /// It stayed DEGRADED, for another reason (a late agent's stream broke).
    Cause {
        /// The cause before.
        from: Cause,
        /// The cause after.
        to: Cause,
    },
    /// Its EXPIRED record's retention ended; the tracker has forgotten it and
    /// the caller should remove it too.
    Purge,
}

/// A change of one agent, for the caller to persist and publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<K> {
    /// The agent.
    pub key: K,
    /// What changed.
    pub change: Change,
}

/// Number of tracked agents with each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// HEALTHY agents.
    pub healthy: usize,
    /// DEGRADED agents (including those the guard holds back).
    pub degraded: usize,
    /// EXPIRED agents not yet purged.
    pub expired: usize,
}

/// Liveness of every tracked agent, keyed by `K`.
///
/// ```
/// use std::time::Duration;
/// use switchboard_health::{Change, LivenessConfig, LivenessTracker, Status};
/// use tokio::time::Instant;
///
/// let t0 = Instant::now();
/// let mut tracker = LivenessTracker::new(LivenessConfig::default(), t0);
/// tracker.register("weather-1", t0);
/// assert_eq!(tracker.next_deadline(), Some(t0 + Duration::from_secs(15)));
///
/// let transitions = tracker.poll(t0 + Duration::from_secs(15));
/// assert_eq!(transitions[0].change, Change::Status { from: Status::Healthy, to: Status::Degraded });
///
/// let revived = tracker.heartbeat(&"weather-1", t0 + Duration::from_secs(16));
/// assert!(revived.is_some());
/// assert_eq!(tracker.status(&"weather-1"), Some(Status::Healthy));
/// ```
#[derive(Debug)]
pub struct LivenessTracker<K> {
    records: HashMap<K, Record>,
    core: Core<K>,
    /// The latest instant seen; earlier ones are clamped to it.
    clock: Instant,
}

/// Everything but the records, so a record can be borrowed alongside.
#[derive(Debug)]
struct Core<K> {
    config: LivenessConfig,
    queue: DeadlineQueue<K>,
    guard: Guard,
    counts: StatusCounts,
    /// DEGRADED agents that report themselves unhealthy (not silent).
    unhealthy: usize,
}

#[derive(Debug)]
struct Record {
    last: Instant,
    /// Whether `last` is a heartbeat, a registration or a restore.
    contact: Contact,
    state: State,
    /// The queue entry armed for this record, at or before its real deadline.
    slot: Slot,
}

/// What the tracker last heard from an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    /// Nothing since the registry restarted: `last` is the restore instant.
    Restored,
    /// Its registration, no heartbeat since.
    Registered,
    /// A heartbeat.
    Heartbeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Healthy,
    /// `held_until` is set while the guard holds the agent's expiry back.
    Degraded {
        cause: Cause,
        held_until: Option<Instant>,
    },
    Expired {
        at: Instant,
    },
}

// === impl Status ===

impl Status {
    /// Lowercase name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Cause ===

impl Cause {
    /// Lowercase name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeartbeatLate => "heartbeat late",
            Self::StreamBroke => "stream broke",
            Self::NeverHeartbeated => "never heartbeated",
            Self::AgentUnhealthy => "agent reports unhealthy",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl StatusCounts ===

impl StatusCounts {
    /// All tracked agents.
    pub fn total(&self) -> usize {
        self.healthy + self.degraded + self.expired
    }

    fn slot(&mut self, status: Status) -> &mut usize {
        match status {
            Status::Healthy => &mut self.healthy,
            Status::Degraded => &mut self.degraded,
            Status::Expired => &mut self.expired,
        }
    }
}

// === impl LivenessTracker ===

impl<K: Clone + Eq + Hash> LivenessTracker<K> {
    /// An empty tracker starting at `now`. Instants passed later that are
    /// earlier than one already seen are treated as that one, so callers that
    /// take `Instant::now()` before waiting for a lock cannot move time back.
    ///
    /// The config is used as is; validate it first with
    /// [`LivenessConfig::validate`].
    pub fn new(config: LivenessConfig, now: Instant) -> Self {
        let core = Core {
            guard: Guard::new(config.guard.clone()),
            config,
            queue: DeadlineQueue::new(),
            counts: StatusCounts::default(),
            unhealthy: 0,
        };
        Self { records: HashMap::new(), core, clock: now }
    }

    /// The settings in use.
    pub fn config(&self) -> &LivenessConfig {
        &self.core.config
    }

    /// Starts tracking a newly registered (or re-registered) agent as HEALTHY
    /// with its last heartbeat at `now`. Returns the transition if it was
    /// tracked with another status.
    pub fn register(&mut self, key: K, now: Instant) -> Option<Transition<K>> {
        let now = self.tick(now);
        if let Some(record) = self.records.get_mut(&key) {
            record.last = now;
            record.contact = Contact::Registered;
            let change = self.core.revive(&key, record)?;
            return Some(Transition { key, change });
        }
        let record = self.core.track(key.clone(), now, Contact::Registered, State::Healthy);
        self.records.insert(key, record);
        None
    }

    /// After a registry restart, tracks a stored agent with its stored status
    /// and cause (a DEGRADED one without a stored cause counts as never
    /// heartbeated), counting from `now`: it cannot expire before
    /// `now + expired_after` (no eviction storm after a restart). An EXPIRED
    /// one is purged `retention` after `now`. Until the agent heartbeats,
    /// [`last_heartbeat`](Self::last_heartbeat) says nothing: `now` is not a
    /// heartbeat. Replaces any record of `key` without a transition.
    pub fn restore(&mut self, key: K, status: Status, cause: Option<Cause>, now: Instant) {
        let now = self.tick(now);
        if let Some(old) = self.records.remove(&key) {
            self.core.drop_record(old);
        }
        let state = match status {
            Status::Healthy => State::Healthy,
            Status::Degraded => State::Degraded {
                cause: cause.unwrap_or(Cause::NeverHeartbeated),
                held_until: None,
            },
            Status::Expired => State::Expired { at: now },
        };
        let record = self.core.track(key.clone(), now, Contact::Restored, state);
        self.records.insert(key, record);
    }

    /// Records a heartbeat: O(1) unless the agent comes back from DEGRADED or
    /// EXPIRED, which returns the transition to HEALTHY. An unknown key
    /// returns `None` (see [`is_tracked`](Self::is_tracked) to tell it apart).
    pub fn heartbeat(&mut self, key: &K, now: Instant) -> Option<Transition<K>> {
        self.heartbeat_with(key, now, true)
    }

    /// Records a heartbeat that carries the agent's own verdict on itself.
    /// `ready` is [`heartbeat`](Self::heartbeat). Not ready, the agent is
    /// DEGRADED because it reports itself unhealthy (from HEALTHY, from
    /// another cause of DEGRADED, or from EXPIRED), and the transition is
    /// returned; one that already is stays so without a transition. Either
    /// way the heartbeat keeps it from going late or expiring.
    pub fn heartbeat_with(&mut self, key: &K, now: Instant, ready: bool) -> Option<Transition<K>> {
        let now = self.tick(now);
        let record = self.records.get_mut(key)?;
        record.last = now;
        record.contact = Contact::Heartbeat;
        let change = if ready {
            self.core.revive(key, record)?
        } else {
            self.core.report_unhealthy(key, record)?
        };
        Some(Transition { key: key.clone(), change })
    }

    /// The agent's heartbeat stream broke without a deregister: a HEALTHY
    /// agent becomes DEGRADED at once, and a DEGRADED one for another cause
    /// is now degraded because its stream broke (the transition is
    /// returned). It still expires `expired_after` after its last heartbeat
    /// unless one comes.
    pub fn connection_lost(&mut self, key: &K, now: Instant) -> Option<Transition<K>> {
        self.tick(now);
        let record = self.records.get_mut(key)?;
        let to = Cause::StreamBroke;
        let change = match record.state {
            State::Healthy => {
                self.core.set_state(record, State::Degraded { cause: to, held_until: None });
                Change::Status { from: Status::Healthy, to: Status::Degraded }
            }
            State::Degraded { cause, held_until } if cause != to => {
                self.core.set_state(record, State::Degraded { cause: to, held_until });
                Change::Cause { from: cause, to }
            }
            State::Degraded { .. } | State::Expired { .. } => return None,
        };
        Some(Transition { key: key.clone(), change })
    }

    /// Stops tracking the agent (deregistered). No transition is ever
    /// returned for it afterwards.
    pub fn forget(&mut self, key: &K) {
        if let Some(record) = self.records.remove(key) {
            self.core.drop_record(record);
        }
    }

    /// Whether the agent is tracked.
    pub fn is_tracked(&self, key: &K) -> bool {
        self.records.contains_key(key)
    }

    /// The agent's status, if tracked.
    pub fn status(&self, key: &K) -> Option<Status> {
        self.records.get(key).map(|record| record.state.status())
    }

    /// Why the agent is DEGRADED; `None` when it is not, or is not tracked.
    pub fn cause(&self, key: &K) -> Option<Cause> {
        match self.records.get(key)?.state {
            State::Degraded { cause, .. } => Some(cause),
            State::Healthy | State::Expired { .. } => None,
        }
    }

    /// The agent's last heartbeat (or registration), if tracked; `None`
    /// for an agent restored after a restart that has not heartbeated since.
    pub fn last_heartbeat(&self, key: &K) -> Option<Instant> {
        let record = self.records.get(key)?;
        (record.contact != Contact::Restored).then_some(record.last)
    }

    /// Number of tracked agents, EXPIRED ones included.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no agent is tracked.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Tracked agents by status, kept up to date in O(1), for metrics.
    pub fn counts(&self) -> StatusCounts {
        self.core.counts
    }

    /// The earliest instant at which [`poll`](Self::poll) may have something
    /// to do; never later than the next transition. Re-read it after every
    /// call that changes the tracker: registering or reviving an agent can
    /// move it earlier.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.core.queue.next_deadline()
    }

    /// Applies and returns every transition due at `now`, in deadline order:
    /// HEALTHY → DEGRADED at `last + degraded_after`, → EXPIRED at
    /// `last + expired_after` (an agent due for both gets both, in that order),
    /// and EXPIRED → purge at `expired_at + retention` (the tracker forgets
    /// the key). Expirations are subject to the mass-expiry guard.
    pub fn poll(&mut self, now: Instant) -> Vec<Transition<K>> {
        let now = self.tick(now);
        let mut due = Vec::new();
        let mut first = true;
        loop {
            let expiring = self.fire_due(now, &mut due);
            // The guard is evaluated on every poll, so it can disengage even
            // when nothing is due; later rounds only purge what just expired.
            if first || !expiring.is_empty() {
                self.settle_expiries(now, expiring, &mut due);
            }
            first = false;
            if self.core.queue.next_deadline().is_none_or(|at| at > now) {
                break;
            }
        }
        // Stable: transitions with equal deadlines keep their queue order.
        due.sort_by_key(|(at, _)| *at);
        due.into_iter().map(|(_, transition)| transition).collect()
    }

    /// Whether the mass-expiry guard is currently holding expirations back.
    pub fn guard_active(&self) -> bool {
        self.core.guard.is_active()
    }

    /// Number of DEGRADED agents whose expiry the guard is holding back.
    pub fn guard_held(&self) -> usize {
        self.core.guard.held()
    }

    /// Number of armed queue entries (one per tracked key).
    #[cfg(test)]
    pub(crate) fn queue_len(&self) -> usize {
        self.core.queue.len()
    }

    fn tick(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// Pops every due entry: fires HEALTHY → DEGRADED and purges, re-arms
    /// entries whose real deadline moved later, and returns the agents due to
    /// expire (with their deadlines) for the guard to decide on.
    fn fire_due(
        &mut self,
        now: Instant,
        out: &mut Vec<(Instant, Transition<K>)>,
    ) -> Vec<(Instant, K)> {
        let mut expiring = Vec::new();
        while let Some((slot, key)) = self.core.queue.pop_due(now) {
            let Some(record) = self.records.get_mut(&key) else { continue };
            let deadline = self.core.deadline(record.last, record.state);
            if deadline > slot.at() {
                // Heartbeated since: lazily re-arm at the real deadline.
                record.slot = self.core.queue.insert(deadline, key);
                continue;
            }
            match record.state {
                State::Healthy => {
                    let cause = match record.contact {
                        Contact::Heartbeat => Cause::HeartbeatLate,
                        Contact::Registered | Contact::Restored => Cause::NeverHeartbeated,
                    };
                    self.core.set_state(record, State::Degraded { cause, held_until: None });
                    self.core.arm(key.clone(), record);
                    let change = Change::Status { from: Status::Healthy, to: Status::Degraded };
                    out.push((deadline, Transition { key, change }));
                }
                State::Degraded { cause: Cause::AgentUnhealthy, held_until } => {
                    // It said unhealthy, then went silent: late like any
                    // other, so the guard counts it among the silent ones.
                    let to = Cause::HeartbeatLate;
                    self.core.set_state(record, State::Degraded { cause: to, held_until });
                    self.core.arm(key.clone(), record);
                    let change = Change::Cause { from: Cause::AgentUnhealthy, to };
                    out.push((deadline, Transition { key, change }));
                }
                State::Degraded { .. } => expiring.push((deadline, key)),
                State::Expired { .. } => {
                    if let Some(record) = self.records.remove(&key) {
                        self.core.drop_record(record);
                    }
                    out.push((deadline, Transition { key, change: Change::Purge }));
                }
            }
        }
        expiring
    }

    /// Expires the due agents, or holds them all back if the guard engages.
    fn settle_expiries(
        &mut self,
        now: Instant,
        expiring: Vec<(Instant, K)>,
        out: &mut Vec<(Instant, Transition<K>)>,
    ) {
        let is_fresh = |key: &K| self.records.get(key).is_some_and(|r| !r.state.is_held());
        let fresh = expiring.iter().filter(|(_, key)| is_fresh(key)).count();
        let live = self.core.counts.healthy + self.core.counts.degraded;
        // Agents that heartbeat while reporting unhealthy are not silent.
        let at_risk = self.core.counts.degraded - self.core.unhealthy;
        let allowed = self.core.guard.allows_expiry(now, live, fresh, at_risk);
        let recheck = after(now, self.core.config.interval);
        for (deadline, key) in expiring {
            let Some(record) = self.records.get_mut(&key) else { continue };
            if allowed {
                self.core.set_state(record, State::Expired { at: deadline });
                self.core.guard.record_expired(deadline);
                self.core.arm(key.clone(), record);
                let change = Change::Status { from: Status::Degraded, to: Status::Expired };
                out.push((deadline, Transition { key, change }));
            } else if let State::Degraded { cause, .. } = record.state {
                self.core.set_state(record, State::Degraded { cause, held_until: Some(recheck) });
                self.core.arm(key, record);
            }
        }
    }
}

// === impl Core ===

impl<K: Clone> Core<K> {
    /// The instant of the record's next transition.
    fn deadline(&self, last: Instant, state: State) -> Instant {
        match state {
            State::Healthy | State::Degraded { cause: Cause::AgentUnhealthy, .. } => {
                after(last, self.config.degraded_after)
            }
            State::Degraded { held_until, .. } => {
                let expiry = after(last, self.config.expired_after);
                held_until.map_or(expiry, |held| held.max(expiry))
            }
            State::Expired { at } => after(at, self.config.retention),
        }
    }

    /// A new record, counted and armed.
    fn track(&mut self, key: K, last: Instant, contact: Contact, state: State) -> Record {
        *self.counts.slot(state.status()) += 1;
        self.unhealthy += usize::from(state.is_unhealthy());
        if state.is_held() {
            self.guard.hold();
        }
        let slot = self.queue.insert(self.deadline(last, state), key);
        Record { last, contact, state, slot }
    }

    /// Un-counts and disarms a record that was removed from the map.
    fn drop_record(&mut self, record: Record) {
        self.queue.remove(record.slot);
        *self.counts.slot(record.state.status()) -= 1;
        self.unhealthy -= usize::from(record.state.is_unhealthy());
        if record.state.is_held() {
            self.guard.release();
        }
    }

    /// Changes a record's state, keeping counts and the guard's held count.
    fn set_state(&mut self, record: &mut Record, state: State) {
        *self.counts.slot(record.state.status()) -= 1;
        *self.counts.slot(state.status()) += 1;
        self.unhealthy -= usize::from(record.state.is_unhealthy());
        self.unhealthy += usize::from(state.is_unhealthy());
        match (record.state.is_held(), state.is_held()) {
            (true, false) => self.guard.release(),
            (false, true) => self.guard.hold(),
            _ => {}
        }
        record.state = state;
    }

    /// Arms a record whose previous entry already popped.
    fn arm(&mut self, key: K, record: &mut Record) {
        record.slot = self.queue.insert(self.deadline(record.last, record.state), key);
    }

    /// After a heartbeat: back to HEALTHY if it was not, re-arming eagerly
    /// when the new deadline is earlier than the armed one.
    fn revive(&mut self, key: &K, record: &mut Record) -> Option<Change> {
        let from = record.state.status();
        if from == Status::Healthy {
            return None;
        }
        self.set_state(record, State::Healthy);
        self.rearm_if_earlier(key, record);
        Some(Change::Status { from, to: Status::Healthy })
    }

    /// After a heartbeat that says not ready: DEGRADED because the agent
    /// reports itself unhealthy, unless it already is. No longer held by the
    /// guard: it is not silent.
    fn report_unhealthy(&mut self, key: &K, record: &mut Record) -> Option<Change> {
        let to = Cause::AgentUnhealthy;
        let change = match record.state {
            State::Degraded { cause, .. } if cause == to => return None,
            State::Degraded { cause, .. } => Change::Cause { from: cause, to },
            State::Healthy | State::Expired { .. } => {
                Change::Status { from: record.state.status(), to: Status::Degraded }
            }
        };
        self.set_state(record, State::Degraded { cause: to, held_until: None });
        self.rearm_if_earlier(key, record);
        Some(change)
    }

    /// Re-arms eagerly when the record's real deadline is earlier than the
    /// armed one (a later one is re-armed lazily when it pops).
    fn rearm_if_earlier(&mut self, key: &K, record: &mut Record) {
        let deadline = self.deadline(record.last, record.state);
        if deadline < record.slot.at() {
            self.queue.remove(record.slot);
            record.slot = self.queue.insert(deadline, key.clone());
        }
    }
}

// === impl State ===

impl State {
    fn status(self) -> Status {
        match self {
            Self::Healthy => Status::Healthy,
            Self::Degraded { .. } => Status::Degraded,
            Self::Expired { .. } => Status::Expired,
        }
    }

    fn is_unhealthy(self) -> bool {
        matches!(self, Self::Degraded { cause: Cause::AgentUnhealthy, .. })
    }

    fn is_held(self) -> bool {
        matches!(self, Self::Degraded { held_until: Some(_), .. })
    }
}

/// `at + d`, saturating to a far future (about 30 years) instead of panicking.
fn after(at: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    at.checked_add(d).or_else(|| at.checked_add(FAR)).unwrap_or(at)
}
