//! Switchboard's MCP gateway: one Streamable HTTP endpoint in front of every
//! agent of the mesh.
//!
//! The registry's Watch stream feeds a local cache ([`switchboard_client::WatchCache`]);
//! each change builds a new immutable [`RoutingTable`] swapped in atomically.
//! `tools/list` is the union of routable agents' tools; `tools/call` is
//! routed by name to a replica chosen by the power of two choices, with a
//! circuit breaker per endpoint and failover when a request never reached
//! its first replica. Every way a call can fail is one [`CallError`]. While
//! the registry is down the last table keeps serving; the cache resumes the
//! Watch from its last revision.
//!
//! ```no_run
//! use switchboard_gateway::{DEFAULT_GATEWAY_ADDR, GatewayConfig, serve};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let listener = tokio::net::TcpListener::bind(DEFAULT_GATEWAY_ADDR).await?;
//!     // The registry at `switchboard_client::DEFAULT_REGISTRY_ADDR`, default timeouts.
//!     let config = GatewayConfig::default();
//!     serve(config, listener, async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
//!     Ok(())
//! }
//! ```

pub mod access;
mod breaker;
mod call;
mod call_error;
mod config;
mod envelope;
mod federation;
mod forward;
mod gateway;
mod guard;
mod handler;
mod metrics;
mod relay;
mod routing_table;
mod server;
mod session_stream;
mod sse;
mod trace;
mod upstream;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use call::DEADLINE_META;
pub use call_error::CallError;
pub use config::{DEFAULT_GATEWAY_ADDR, GatewayConfig};
pub use federation::{Catalog, Listed, TemplateRoute};
pub use gateway::Gateway;
pub use guard::Guard;
pub use handler::GatewayHandler;
pub use metrics::GatewayMetrics;
pub use routing_table::{Endpoint, Replica, Route, RoutingTable, ToolFacts, prefixed};
pub use server::{GatewayError, router, serve};
