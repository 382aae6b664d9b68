//! The client side of the Switchboard contract, shared by the agent SDK, the
//! gateway and the CLI.
//!
//! - [`connect`]: a tuned gRPC channel to a registry;
//! - [`Backoff`]: exponential backoff with full jitter for every reconnect loop;
//! - [`WatchCache`]: a local, always-consistent map of agents fed by the
//!   registry's Watch stream, resuming by revision;
//! - [`McpPool`]: reused MCP client sessions to agents.

mod backoff;
mod connect;
mod mcp_pool;
pub mod proto_json;
mod watch_cache;

pub use backoff::Backoff;
pub use connect::{ConnectError, connect, connect_lazy, endpoint_uri, error_chain};
pub use mcp_pool::{McpCallError, McpPool, McpPoolConfig};
pub use watch_cache::{CacheView, WatchCache, WatchCacheConfig};
