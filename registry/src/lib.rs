//! The Switchboard registry: agents register all their tools in one call,
//! get their dependencies resolved, keep a heartbeat stream on which new
//! wiring is pushed, and watchers follow every change by revision.
//!
//! The crate is a library so tests and the `switchboard` binary drive the
//! same code: [`Registry::start`] loads a [`store::Store`] and starts the
//! writer and liveness tasks; [`server::serve_grpc`] and
//! [`server::serve_admin`] put it on the network; [`serve`] assembles the
//! whole process (store, core, both ports) the way the binary runs it.

pub mod change;
pub mod config;
pub mod error;
pub mod metrics;
pub mod mutation;
pub mod registry;
pub mod resolution;
pub mod serve;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod validate;

mod condition;
mod liveness_driver;
mod shared;
mod streams;
mod writer;

pub use config::{Limits, RegistryConfig};
pub use error::{RegistryError, RegistryResult};
pub use registry::{HeartbeatOutcome, Registered, Registry, RegistryTasks};
pub use serve::{Listen, LoadedRegistry, RunError, RunningRegistry, StoreSpec, load, serve};
pub use service::watch::RESUME_REVISION_KEY;
pub use store::{SledStore, Store};
