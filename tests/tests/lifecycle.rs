//! `switchboard up` and `switchboard registry` start, serve, and stop cleanly.

mod common;

use std::sync::Arc;

use switchboard_proto::v1::GetAgentRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_tests::{SwitchboardProcess, TestRegistry, switchboard_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_and_stops_on_sigterm_with_exit_0_and_data_flushed() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let process = SwitchboardProcess::up(dir.path());
    let channel =
        switchboard_client::connect(&process.addr("registry-grpc").to_string()).await.unwrap();
    let id = RegistryServiceClient::new(channel)
        .register_agent(common::provider("weather", "forecast", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    let status = process.terminate();
    assert!(status.success(), "exit status {status:?}");

    let registry = TestRegistry::builder().child_process(&[]).data_dir(dir).start().await;
    let channel = registry.channel().await;
    let agent = RegistryServiceClient::new(channel)
        .get_agent(GetAgentRequest { agent_id: id.clone() })
        .await
        .expect("agent kept across a graceful restart");
    assert_eq!(agent.into_inner().agent.unwrap().id, id);
    registry.stop().await;
}

#[test]
fn invalid_configuration_is_rejected_before_binding_and_names_the_setting() {
    let output = std::process::Command::new(switchboard_bin())
        .args(["registry", "--registry-addr", "not-an-address", "--data-dir", "/nonexistent/x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("registry_addr"), "{stderr}");

    let output = std::process::Command::new(switchboard_bin())
        .args(["registry", "--degraded-after", "1s", "--heartbeat-interval", "5s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("degraded_after"));
}
