//! Compiles our own subset of etcd's v3 API (`proto/etcdserverpb/etcd.proto`)
//! with the pure-Rust `protox` compiler, so a plain `cargo build` needs no
//! system `protoc` (the `etcd-client` crate's build does).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/etcdserverpb/etcd.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
