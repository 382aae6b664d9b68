//! Fault injection against real registries, agents and watchers, with every
//! client operation recorded in a [`History`](crate::history::History) and
//! checked afterwards.
//!
//! The parts: a [`Cluster`] (the registry under test behind a relay with a
//! stable address, killed, frozen and restarted), [`FaultProxy`] links
//! (delay, loss, partitions, resets on loopback), [`RecordedAgent`]s and
//! [`AgentChild`] processes, [`Writers`] and a [`Reader`], and resuming
//! [`Watcher`]s. A [`scenario`] combines them under a seeded schedule; the
//! seed comes from `SWITCHBOARD_FAULT_SEED` (default 13) and is printed with
//! every failure.

mod agent;
mod cluster;
mod load;
mod netns;
mod proxy;
mod run;
pub mod scenario;
mod watcher;

pub use agent::{AgentChild, AgentSpec, CALL_TIMEOUT, RecordedAgent};
pub use cluster::{Cluster, Settings};
pub use load::{Reader, WriteLoad, Writers, read_all, registry_client};
pub use netns::NetnsLink;
pub use proxy::{FaultProxy, LinkFaults};
pub use run::{DEFAULT_SEED, Report, Run, SEED_VAR, seed, table};
pub use watcher::{Pace, Watcher};
