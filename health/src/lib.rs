//! Liveness for Switchboard: when an agent is HEALTHY, DEGRADED or EXPIRED,
//! and the HTTP probes of the registry and gateway.
//!
//! The registry never calls agents; liveness is only what agents send.
//! Agents heartbeat every `interval`. No heartbeat for
//! `degraded_after` makes an agent DEGRADED, for `expired_after` EXPIRED (out
//! of every resolution and routing table), and an EXPIRED record is purged
//! after `retention`. A heartbeat stream that breaks without a deregister makes
//! the agent DEGRADED at once, so dependents rewire immediately.
//!
//! [`LivenessTracker`] is that ladder as pure logic: generic over the agent
//! key, with time passed in as [`tokio::time::Instant`], no tasks and no I/O.
//! The owner feeds it events and calls [`LivenessTracker::poll`] at
//! [`LivenessTracker::next_deadline`]; what comes out are [`Transition`]s to
//! persist and publish. Heartbeats stay in memory and cost O(1) because
//! deadlines are armed lazily: a heartbeat only stores the last-seen instant,
//! and a deadline that pops for an agent that heartbeated since is re-armed at
//! its real deadline instead of firing. Nothing scans every agent per tick.
//!
//! After a registry restart, [`LivenessTracker::restore`] gives every stored
//! agent one full `expired_after` of grace, so a restart never causes an
//! eviction storm.
//!
//! # Mass-expiry guard
//!
//! When more than `guard.max_expiring_fraction` of the tracked agents would
//! expire within `guard.window` (and at least `guard.min_agents` are tracked),
//! the problem is most likely on the registry's side (a partition), so the
//! tracker stops expiring: the agents stay DEGRADED, their expiry is re-checked
//! every `interval`, [`LivenessTracker::guard_active`] reports it and a warning
//! is logged. It disengages once heartbeats return or the silent agents are
//! deregistered. This is Eureka's self-preservation mode. Purges are never
//! held back. The exact counting rules are in the `guard` module.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use switchboard_health::{Change, LivenessConfig, LivenessTracker, Status};
//! use tokio::time::Instant;
//!
//! let config = LivenessConfig::default();
//! config.validate()?;
//! let t0 = Instant::now();
//! let mut tracker = LivenessTracker::new(config, t0);
//! tracker.register("agent-a", t0);
//!
//! // Silent for 30 s: DEGRADED at 15 s, EXPIRED at 30 s, one poll gets both.
//! let changes: Vec<_> = tracker.poll(t0 + Duration::from_secs(30)).into_iter().map(|t| t.change).collect();
//! assert_eq!(
//!     changes,
//!     [
//!         Change::Status { from: Status::Healthy, to: Status::Degraded },
//!         Change::Status { from: Status::Degraded, to: Status::Expired },
//!     ]
//! );
//! # Ok::<(), switchboard_health::ConfigError>(())
//! ```

mod config;
mod deadline_queue;
mod guard;
mod liveness;
mod probes;

pub use config::{ConfigError, GuardConfig, LivenessConfig};
pub use liveness::{Cause, Change, LivenessTracker, Status, StatusCounts, Transition};
pub use probes::{
    MetricsRenderer, OPENMETRICS_CONTENT_TYPE, Readiness, ReadyTask, probe_router,
    registry_renderer,
};
