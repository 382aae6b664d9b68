//! Compiles `switchboard/v1/*.proto` with the pure-Rust `protox` compiler, so
//! a fresh machine needs no system `protoc`. The encoded descriptor set is kept
//! for gRPC server reflection.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "switchboard/v1/types.proto",
    "switchboard/v1/registry.proto",
    "switchboard/v1/watch.proto",
    "switchboard/v1/access.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("switchboard_descriptor.bin"), descriptors.encode_to_vec())?;
    // Small per-stream buffers: see `src/codec.rs`.
    // `bytes` fields (MCP definitions, held verbatim) become `bytes::Bytes`:
    // the snapshot, the history, the store and the wire share one buffer.
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .bytes(".")
        // A tool's JSON Schema stays the bytes the agent sent: see
        // `src/encoded_struct.rs`.
        .extern_path(".google.protobuf.Struct", "crate::EncodedStruct")
        .codec_path("crate::codec::CompactCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
