//! The peers' side of the side-by-side comparisons (`bench/compare-*`):
//! the same scenarios driven against etcd (feature `etcd`) and against the
//! MCP Mesh registry's HTTP API, reported in the same [`crate::Report`].

pub mod mcp_mesh;

#[cfg(feature = "etcd")]
pub mod etcd;
