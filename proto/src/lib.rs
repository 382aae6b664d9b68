//! The Switchboard gRPC contract, package `switchboard.v1`, and the only
//! generated code of the workspace.
//!
//! Every other crate speaks to the registry through these types: the
//! registry implements the server traits, the client crate, the agent SDK,
//! the gateway and the CLI use the generated clients.

pub mod codec;
mod encoded_struct;
mod routability;

/// Generated messages, clients and servers of `switchboard.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used, clippy::expect_used)]
pub mod v1 {
    tonic::include_proto!("switchboard.v1");
}

/// Encoded `FileDescriptorSet` of the contract (with its imports), served by
/// gRPC reflection so `grpcurl` can list, describe and call every RPC.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/switchboard_descriptor.bin"));

pub use encoded_struct::EncodedStruct;
pub use prost_types;

/// Where a registry serves gRPC unless told otherwise: loopback only, so a
/// registry started without flags is never reachable from the network.
///
/// ```
/// assert_eq!(switchboard_proto::DEFAULT_REGISTRY_ADDR, "127.0.0.1:7600");
/// ```
pub const DEFAULT_REGISTRY_ADDR: &str = "127.0.0.1:7600";

/// Where a registry serves its admin HTTP port (`/healthz`, `/readyz`,
/// `/metrics`) unless told otherwise.
///
/// ```
/// assert_eq!(switchboard_proto::DEFAULT_REGISTRY_ADMIN_ADDR, "127.0.0.1:7601");
/// ```
pub const DEFAULT_REGISTRY_ADMIN_ADDR: &str = "127.0.0.1:7601";
pub use routability::{Routability, routability};
