//! The client side of the Switchboard contract, shared by the agent SDK, the
//! gateway and the CLI.
//!
//! - [`connect`]: a tuned gRPC channel to a registry (default address
//!   [`DEFAULT_REGISTRY_ADDR`]);
//! - [`RegistryAddrs`], [`Registries`]: several registry replicas
//!   (`a:7600,b:7600`, or a DNS name that resolves to several), and the one a
//!   client uses until it fails;
//! - [`Bearer`]: the token sent to a registry that runs with auth;
//! - [`Backoff`]: exponential backoff with full jitter for every reconnect loop;
//! - [`WatchCache`]: a local, always-consistent map of agents fed by the
//!   registry's Watch stream, resuming by revision;
//! - [`McpPool`]: reused MCP client sessions to agents, whose errors
//!   ([`McpCallError`], [`FailureClass`]) say whether a call may be tried on
//!   another replica.

mod backoff;
mod bearer;
mod connect;
mod mcp_call_error;
mod mcp_pool;
pub mod proto_json;
mod registries;
mod registry_addrs;
mod watch_cache;

pub use backoff::Backoff;
pub use bearer::{AuthChannel, BadToken, Bearer, TOKEN_ENV};
pub use connect::{
    ConnectError, DEFAULT_REGISTRY_ADDR, connect, connect_lazy, connect_lazy_with, connect_with,
    endpoint_uri, error_chain,
};
pub use mcp_call_error::{FailureClass, McpCallError};
pub use mcp_pool::{McpPool, McpPoolConfig};
pub use registries::{Current, Registries, connect_any, moves_on};
pub use registry_addrs::RegistryAddrs;
pub use watch_cache::{CacheView, WatchCache, WatchCacheConfig};
