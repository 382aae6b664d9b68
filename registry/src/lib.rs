//! The Switchboard registry: agents register all their tools in one call,
//! get their dependencies resolved, keep a heartbeat stream on which new
//! wiring is pushed, and watchers follow every change by revision.
//!
//! The crate is a library so tests and the `switchboard` binary drive the
//! same code: [`Registry::start`] loads a [`store::Store`] and starts the
//! writer and liveness tasks; [`server::serve_grpc`] and
//! [`server::serve_admin`] put it on the network; [`serve`] assembles the
//! whole process (store, core, both ports) the way the binary runs it.
//! [`access`] decides who may call what when the registry runs with auth.

pub mod access;
pub mod resolution;
pub mod server;
pub mod store;

mod audit;
mod change;
mod condition;
mod config;
mod error;
mod feed;
mod liveness_driver;
mod metrics;
mod mutation;
mod registry;
mod sd;
mod serve;
mod service;
mod shared;
mod state;
mod streams;
mod validate;
mod writer;

pub use access::{Access, AuthConfig, Caller};
pub use change::Change;
pub use config::{Limits, RegistryConfig};
pub use error::{RegistryError, RegistryResult};
pub use metrics::Metrics;
pub use registry::{AgentReadiness, HeartbeatOutcome, Registered, Registry, RegistryTasks};
pub use serve::{
    BOOTSTRAP_TOKEN_FILE, Listen, LoadedRegistry, RunError, RunningRegistry, StoreSpec, load, serve,
};
pub use service::watch::RESUME_REVISION_KEY;
pub use state::{Snapshot, Wiring};
pub use store::{EtcdStore, SledStore, Store};
pub use switchboard_etcd::EtcdConfig;
pub use validate::registration as validate_registration;
