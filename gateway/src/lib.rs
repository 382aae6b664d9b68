//! Switchboard's MCP gateway: one Streamable HTTP endpoint in front of every
//! agent of the mesh.
//!
//! The registry's Watch stream feeds a local cache ([`switchboard_client::WatchCache`]);
//! each change builds a new immutable [`RoutingTable`] swapped in atomically.
//! `tools/list` is the union of routable agents' tools; `tools/call` is
//! routed by name to a replica chosen by the power of two choices, with a
//! circuit breaker per endpoint and failover when a request never reached
//! its first replica. While the registry is down the last table keeps
//! serving; the cache resumes the Watch from its last revision.

mod breaker;
mod config;
pub mod errors;
mod gateway;
mod handler;
mod metrics;
mod routing_table;
mod server;
mod trace;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use config::GatewayConfig;
pub use gateway::Gateway;
pub use handler::GatewayHandler;
pub use metrics::GatewayMetrics;
pub use routing_table::{Endpoint, Replica, Route, RoutingTable, prefixed};
pub use server::{GatewayError, router, serve};
