//! The safe default posture: a non-loopback listener without TLS and auth
//! refuses to start and says how to fix it; `--insecure-allow-plaintext`
//! (or its variable) starts it anyway, with a warning and the
//! `switchboard_insecure_listener` metric; loopback starts as it always did.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use switchboard_agent::Agent;
use switchboard_tests::{SwitchboardProcess, TestRegistry, cli};

/// What the binary must say when it refuses.
const HOW_TO_FIX: [&str; 4] = ["--tls-cert", "--tls-key", "--auth", "--insecure-allow-plaintext"];

fn assert_refused(run: &switchboard_tests::CliRun, addr: &str) {
    assert_eq!(run.code, 2, "a configuration mistake: {}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing was started: {}", run.stdout);
    assert!(run.stderr.contains(addr), "names the address: {}", run.stderr);
    for flag in HOW_TO_FIX {
        assert!(run.stderr.contains(flag), "names {flag}: {}", run.stderr);
    }
}

/// The announced port of `name`, reached over loopback.
fn local(process: &SwitchboardProcess, name: &str) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], process.addr(name).port()))
}

async fn metrics(addr: SocketAddr) -> String {
    switchboard_tls::ensure_crypto_provider();
    let url = format!("http://{addr}/metrics");
    reqwest::get(&url).await.expect("GET /metrics").text().await.expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_on_a_non_loopback_address_without_tls_and_auth_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for (flag, addr) in [
        ("--registry-addr", "0.0.0.0:0"),
        ("--registry-addr", "[::]:0"),
        ("--registry-admin-addr", "0.0.0.0:0"),
    ] {
        let other =
            if flag == "--registry-addr" { "--registry-admin-addr" } else { "--registry-addr" };
        let args = ["registry", "--data-dir", data, flag, addr, other, "127.0.0.1:0"];
        assert_refused(&cli(&args).await, addr);
    }
    // `up` checks every listener before it binds any.
    let up = [
        "up",
        "--data-dir",
        data,
        "--registry-addr",
        "127.0.0.1:0",
        "--registry-admin-addr",
        "127.0.0.1:0",
        "--gateway-addr",
        "0.0.0.0:0",
    ];
    assert_refused(&cli(&up).await, "0.0.0.0:0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_auth_let_the_registry_listen_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let certs = switchboard_tls::dev::generate(&dir.path().join("certs"), &[], &[]).unwrap();
    let data = dir.path().join("data");
    let (cert, key) = (certs.server_cert.to_str().unwrap(), certs.server_key.to_str().unwrap());
    let open = [
        "registry",
        "--data-dir",
        data.to_str().unwrap(),
        "--registry-addr",
        "0.0.0.0:0",
        "--registry-admin-addr",
        "0.0.0.0:0",
    ];
    // One of the two is not enough; the message names what is missing.
    let tls_only = cli(&[&open[..], &["--tls-cert", cert, "--tls-key", key]].concat()).await;
    assert_refused(&tls_only, "0.0.0.0:0");
    assert!(tls_only.stderr.contains("without auth"), "{}", tls_only.stderr);
    let auth_only = cli(&[&open[..], &["--auth"]].concat()).await;
    assert_refused(&auth_only, "0.0.0.0:0");
    assert!(auth_only.stderr.contains("without TLS:"), "{}", auth_only.stderr);

    let both = [&open[..], &["--tls-cert", cert, "--tls-key", key, "--auth"]].concat();
    let registry = SwitchboardProcess::spawn(&both, &["registry-grpc", "registry-admin"]);
    // It serves TLS there and asks for a token.
    let grpc = local(&registry, "registry-grpc").to_string();
    let ca = certs.ca.to_str().unwrap();
    let anonymous = cli(&["agents", "--registry", &grpc, "--tls-ca", ca]).await;
    assert_eq!(anonymous.code, 5, "refused without a token: {anonymous:#?}");
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let agents =
        cli(&["agents", "--registry", &grpc, "--tls-ca", ca, "--token", token.trim()]).await;
    assert_eq!(agents.code, 0, "{agents:#?}");
    assert!(registry.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_tls_needs_caller_auth_too() {
    let dir = tempfile::tempdir().unwrap();
    let certs = switchboard_tls::dev::generate(dir.path(), &[], &[]).unwrap();
    let registry = TestRegistry::start().await;
    let target = registry.addr.to_string();
    let (cert, key) = (certs.server_cert.to_str().unwrap(), certs.server_key.to_str().unwrap());
    let args = ["gateway", "--gateway-addr", "0.0.0.0:0", "--registry", &target];
    let run = cli(&[&args[..], &["--tls-cert", cert, "--tls-key", key]].concat()).await;
    assert_refused(&run, "0.0.0.0:0");
    assert!(run.stderr.contains("without auth"), "{}", run.stderr);
    // With caller auth (API keys checked at the registry) it starts.
    let secured = [&args[..], &["--tls-cert", cert, "--tls-key", key, "--api-keys"]].concat();
    let gateway = SwitchboardProcess::spawn(&secured, &["gateway"]);
    assert!(gateway.terminate().success());
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_non_loopback_address_refuses_to_start() {
    let registry = TestRegistry::start().await;
    let target = registry.addr.to_string();
    let run = cli(&["gateway", "--gateway-addr", "0.0.0.0:0", "--registry", &target]).await;
    assert_refused(&run, "0.0.0.0:0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_starts_it_with_a_warning_and_the_metric() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = [
        "registry",
        "--data-dir",
        data,
        "--registry-addr",
        "0.0.0.0:0",
        "--registry-admin-addr",
        "127.0.0.1:0",
        "--insecure-allow-plaintext",
    ];
    let registry = SwitchboardProcess::spawn(&args, &["registry-grpc", "registry-admin"]);
    let text = metrics(local(&registry, "registry-admin")).await;
    assert!(text.contains("switchboard_insecure_listener{listener=\"grpc\"} 1"), "{text}");
    assert!(!text.contains("switchboard_insecure_listener{listener=\"admin\"}"), "{text}");
    // The open port serves like any other.
    let grpc = local(&registry, "registry-grpc").to_string();
    let agents = cli(&["agents", "--registry", &grpc]).await;
    assert_eq!(agents.code, 0, "{}", agents.stderr);

    // The variable does what the flag does, for the gateway too.
    let gateway_args = ["gateway", "--gateway-addr", "0.0.0.0:0", "--registry", &grpc];
    let env = [("SWITCHBOARD_INSECURE_ALLOW_PLAINTEXT", "1")];
    let gateway = SwitchboardProcess::spawn_logged(&gateway_args, &env, &["gateway"]);
    let text = metrics(local(&gateway, "gateway")).await;
    assert!(text.contains("switchboard_insecure_listener{listener=\"gateway\"} 1"), "{text}");
    let logged = gateway.logged();
    assert!(
        logged.contains("non-loopback") && logged.contains("--insecure-allow-plaintext"),
        "{logged}"
    );
    assert!(gateway.terminate().success());
    assert!(registry.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_starts_silently() {
    let dir = tempfile::tempdir().unwrap();
    let up = SwitchboardProcess::up(dir.path());
    for port in ["registry-admin", "gateway"] {
        let text = metrics(local(&up, port)).await;
        assert!(!text.contains("switchboard_insecure_listener{"), "{port}: {text}");
    }
    assert!(up.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_agent_on_a_wildcard_address_needs_the_override() {
    let registry = TestRegistry::start().await;
    let target = registry.addr.to_string();
    let agent = || Agent::new("hello").registry(&target).listen("0.0.0.0:0");
    let Err(refused) = switchboard_examples::hello::start(agent()).await else {
        panic!("an agent on 0.0.0.0 without TLS and auth must not start");
    };
    let refused = refused.to_string();
    assert!(
        refused.contains("0.0.0.0:0") && refused.contains("--insecure-allow-plaintext"),
        "{refused}"
    );

    let running = switchboard_examples::hello::start(agent().insecure_allow_plaintext(true))
        .await
        .expect("starts with the override");
    let url = SocketAddr::from(([127, 0, 0, 1], running.local_addr.port()));
    let text = metrics(url).await;
    assert!(text.contains("switchboard_insecure_listener{listener=\"agent\"} 1"), "{text}");
    running.shutdown().await.unwrap();
    registry.stop().await;
}
