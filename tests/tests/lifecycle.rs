//! `switchboard up` and `switchboard registry` start, serve, and stop cleanly.

mod common;

use switchboard_proto::v1::GetAgentRequest;
use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_tests::{RegistryProcess, switchboard_bin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_and_stops_on_sigterm_with_exit_0_and_data_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = [
        "up",
        "--data-dir",
        data,
        "--registry-addr",
        "127.0.0.1:0",
        "--registry-admin-addr",
        "127.0.0.1:0",
        "--gateway-addr",
        "127.0.0.1:0",
    ];
    let process = RegistryProcess::spawn(&args, &["registry-grpc", "registry-admin", "gateway"]);
    let channel = switchboard_client::connect(&process.grpc_addr()).await.unwrap();
    let id = RegistryServiceClient::new(channel)
        .register_agent(common::provider("weather", "forecast", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    let status = process.terminate();
    assert!(status.success(), "exit status {status:?}");

    let process = RegistryProcess::registry(dir.path(), &[]);
    let channel = switchboard_client::connect(&process.grpc_addr()).await.unwrap();
    let agent = RegistryServiceClient::new(channel)
        .get_agent(GetAgentRequest { agent_id: id.clone() })
        .await
        .expect("agent kept across a graceful restart");
    assert_eq!(agent.into_inner().agent.unwrap().id, id);
    assert!(process.terminate().success());
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
