use std::net::SocketAddr;

use switchboard_proto::v1::{RegisterAgentRequest, Tool};

use super::*;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn sled(dir: &tempfile::TempDir) -> StoreSpec {
    StoreSpec::Sled { data_dir: dir.path().to_path_buf() }
}

fn hello() -> RegisterAgentRequest {
    RegisterAgentRequest {
        name: "hello".into(),
        endpoint: "http://127.0.0.1:9/mcp".into(),
        tools: vec![Tool { name: "greet".into(), ..Tool::default() }],
        ..RegisterAgentRequest::default()
    }
}

#[tokio::test]
async fn what_was_acknowledged_before_a_stop_is_served_after_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let running =
        serve(RegistryConfig::default(), sled(&dir), any_port(), any_port()).await.unwrap();
    assert_ne!(running.grpc_addr.port(), 0);
    assert_ne!(running.admin_addr.port(), 0);
    let id = running.registry.register(hello()).await.unwrap().agent_id;
    assert!(running.until_stopped(std::future::ready(())).await, "stopped when asked");
    running.stop().await.unwrap();

    let loaded = load(RegistryConfig::default(), sled(&dir)).await.unwrap();
    assert!(loaded.registry.snapshot().agents.contains_key(&id), "{id} kept across a stop");
    let listener = TcpListener::bind(any_port()).await.unwrap();
    let given = listener.local_addr().unwrap();
    let running = loaded.serve(listener, any_port()).await.unwrap();
    assert_eq!(running.grpc_addr, given, "serves on the listener it was given");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_taken_port_is_an_error_naming_the_port_and_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind(any_port()).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let Err(error) = serve(RegistryConfig::default(), sled(&dir), any_port(), addr).await else {
        panic!("served on a taken port");
    };
    assert_eq!(error.to_string(), format!("registry-admin: cannot bind {addr}"));
    assert!(matches!(error, RunError::Bind { name: "registry-admin", .. }), "{error:?}");
}
