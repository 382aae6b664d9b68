//! The Switchboard gRPC contract, package `switchboard.v1`, and the only
//! generated code of the workspace.
//!
//! Every other crate speaks to the registry through these types: the
//! registry implements the server traits, the client crate, the agent SDK,
//! the gateway and the CLI use the generated clients.

pub mod codec;
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

pub use prost_types;
pub use routability::{Routability, routability};
