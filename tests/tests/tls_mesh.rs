//! TLS and mTLS end to end, with certificates from the real `switchboard
//! cert dev`: a registry process serving TLS and requiring client
//! certificates, a gateway serving TLS, two SDK agents (mTLS to the
//! registry, TLS MCP endpoints) and the CLI.
//!
//! What a user relies on: a tool call through the gateway works over TLS;
//! the CLI works with the flags `cert dev` prints; a plaintext client and a
//! certificate of another CA are refused with messages that say so; running
//! `cert dev` again (a new CA) is picked up by the running registry without
//! a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use switchboard_agent::Agent;
use switchboard_client::{McpPool, McpPoolConfig};
use switchboard_gateway::GatewayConfig;
use switchboard_tests::{
    CliRun, InProcessGateway, TestRegistry, TestRegistryBuilder, cli, eventually, start_echo,
};
use switchboard_tls::{ClientTls, ClientTlsConfig, ServerTls, ServerTlsConfig};

const DEADLINE: Duration = Duration::from_secs(30);

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// `switchboard cert dev --out DIR --name …`, checked.
async fn cert_dev(dir: &Path, names: &[&str]) {
    let out = dir.display().to_string();
    let mut args = vec!["cert", "dev", "--out", out.as_str()];
    for name in names {
        args.extend(["--name", name]);
    }
    let run = cli(&args).await;
    assert_eq!(run.code, 0, "cert dev:\n{run:#?}");
    assert!(run.stdout.contains("--tls-cert"), "cert dev prints the flags to use:\n{}", run.stdout);
}

fn server_files(dir: &Path, mtls: bool) -> ServerTlsConfig {
    ServerTlsConfig {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        client_ca: mtls.then(|| dir.join("ca.pem")),
    }
}

fn client_files(dir: &Path, name: &str) -> ClientTlsConfig {
    ClientTlsConfig {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join(format!("client-{name}.pem"))),
        key: Some(dir.join(format!("client-{name}-key.pem"))),
    }
}

/// A registry process serving TLS with `dir`'s server certificate;
/// `mtls`: requiring client certificates of `dir`'s CA.
async fn tls_registry(builder: TestRegistryBuilder, dir: &Path, mtls: bool) -> TestRegistry {
    let mut flags = vec![
        "--no-ui".to_owned(),
        "--tls-cert".to_owned(),
        path(dir, "server.pem"),
        "--tls-key".to_owned(),
        path(dir, "server-key.pem"),
    ];
    if mtls {
        flags.extend(["--tls-client-ca".to_owned(), path(dir, "ca.pem")]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    builder.child_process(&flags).start().await
}

/// `switchboard agents -o json` against `registry` with `tls` flags.
async fn agents(registry: &str, tls: &[String]) -> CliRun {
    let mut args = vec!["agents", "--registry", registry, "-o", "json"];
    args.extend(tls.iter().map(String::as_str));
    cli(&args).await
}

fn cli_tls(ca: &str, cert_dir: &Path, name: &str) -> Vec<String> {
    vec![
        "--tls-ca".into(),
        ca.into(),
        "--tls-client-cert".into(),
        path(cert_dir, &format!("client-{name}.pem")),
        "--tls-client-key".into(),
        path(cert_dir, &format!("client-{name}-key.pem")),
    ]
}

#[tokio::test]
async fn a_tls_mesh_serves_calls_refuses_strangers_and_follows_a_rotation() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    cert_dev(dir, &["gateway", "alpha", "beta", "cli"]).await;

    let registry = tls_registry(TestRegistry::builder(), dir, true).await;
    let registry_addr = registry.addr.to_string();

    // The gateway: TLS on its port, mTLS to the registry, TLS to agents.
    let gateway = InProcessGateway::start_with(GatewayConfig {
        registry: registry_addr.clone(),
        tls: Some(ServerTls::load(&server_files(dir, false)).unwrap()),
        client_tls: Some(ClientTls::load(&client_files(dir, "gateway")).unwrap()),
        ..GatewayConfig::default()
    })
    .await;

    // Two SDK agents: mTLS to the registry, HTTPS MCP endpoints.
    let mut running = Vec::new();
    for name in ["alpha", "beta"] {
        let agent = Agent::new(name)
            .registry(&registry_addr)
            .listen("127.0.0.1:0")
            .tls(server_files(dir, false))
            .client_tls(client_files(dir, name));
        let agent = start_echo(agent, name).await;
        assert!(agent.endpoint.starts_with("https://"), "{}", agent.endpoint);
        running.push(agent);
    }

    // The CLI, with the flags `cert dev` printed.
    let ca = path(dir, "ca.pem");
    let listed = eventually("both agents listed over TLS", DEADLINE, || async {
        let run = agents(&registry_addr, &cli_tls(&ca, dir, "cli")).await;
        (run.code == 0 && run.stdout.contains("alpha") && run.stdout.contains("beta"))
            .then_some(run)
    })
    .await;
    assert!(
        listed.stdout.contains("https://"),
        "agents advertise https endpoints:\n{}",
        listed.stdout
    );

    // A tool call through the gateway, end to end over TLS.
    let pool = McpPool::new(McpPoolConfig {
        tls: Some(
            ClientTls::load(&ClientTlsConfig {
                ca: Some(dir.join("ca.pem")),
                ..Default::default()
            })
            .unwrap(),
        ),
        ..McpPoolConfig::default()
    });
    let url = format!("https://localhost:{}/mcp", gateway.addr.port());
    let answered = eventually("both agents answer through the gateway", DEADLINE, || async {
        let tools = pool.list_tools(&url).await.ok()?;
        let mut identities = BTreeSet::new();
        for tool in tools {
            let result = pool
                .call_tool(&url, CallToolRequestParams::new(tool.name.to_string()))
                .await
                .ok()?;
            identities.insert(switchboard_tests::mcp::text(&result));
        }
        (identities.len() == 2).then_some(identities)
    })
    .await;
    assert_eq!(answered, BTreeSet::from(["alpha".to_owned(), "beta".to_owned()]));

    // Plaintext to the TLS port: refused, and the message says TLS.
    let plain = agents(&registry_addr, &[]).await;
    assert_eq!(plain.code, 3, "{plain:#?}");
    assert!(plain.stderr.contains("TLS"), "the message names TLS:\n{}", plain.stderr);

    // A client certificate of another CA: refused by the registry.
    let other = tempfile::tempdir().unwrap();
    cert_dev(other.path(), &["cli"]).await;
    let stranger = agents(&registry_addr, &cli_tls(&ca, other.path(), "cli")).await;
    assert_ne!(stranger.code, 0, "{stranger:#?}");
    assert!(!stranger.stdout.contains("alpha"), "{stranger:#?}");
    // A client without a certificate at all: refused too.
    let anonymous = agents(&registry_addr, &["--tls-ca".into(), ca.clone()]).await;
    assert_ne!(anonymous.code, 0, "{anonymous:#?}");
    // A client that trusts the other CA does not trust the registry.
    let wrong_ca =
        agents(&registry_addr, &cli_tls(&path(other.path(), "ca.pem"), dir, "cli")).await;
    assert!(wrong_ca.stderr.contains("not trusted (unknown issuer)"), "{wrong_ca:#?}");

    // Rotation: a new `cert dev` into the same directory (a new CA). The
    // registry serves the new certificate to new connections without a
    // restart; the old CA no longer verifies it.
    let before = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("ca.pem"), before.path().join("ca.pem")).unwrap();
    let old_ca = path(before.path(), "ca.pem");
    cert_dev(dir, &["gateway", "alpha", "beta", "cli"]).await;
    eventually("the rotated certificate is served", DEADLINE, || async {
        let run = agents(&registry_addr, &cli_tls(&ca, dir, "cli")).await;
        (run.code == 0 && run.stdout.contains("alpha")).then_some(())
    })
    .await;
    let stale = agents(&registry_addr, &cli_tls(&old_ca, dir, "cli")).await;
    assert!(stale.stderr.contains("not trusted (unknown issuer)"), "{stale:#?}");
    assert!(registry.pid().is_some(), "the same registry process served throughout");

    for agent in running {
        agent.shutdown().await.unwrap();
    }
    gateway.stop().await.unwrap();
}

/// TLS and a token together, on a list of registry addresses whose first
/// replica is down: the CLI, an SDK agent and the gateway each dial every
/// replica over TLS with their token, and reach the one that answers.
#[tokio::test]
async fn a_token_rides_tls_to_whichever_registry_of_a_list_answers() {
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    cert_dev(dir, &["cli"]).await;
    let registry = tls_registry(TestRegistry::builder().auth(), dir, false).await;
    let admin = registry.admin_token();
    // Port 1 on loopback: nothing listens there.
    let list = format!("127.0.0.1:1,{}", registry.addr);
    let ca = path(dir, "ca.pem");
    let trusting = || ClientTlsConfig { ca: Some(dir.join("ca.pem")), ..Default::default() };

    // An SDK agent, starting on either replica, registers with its token.
    let agent = Agent::new("alpha")
        .registry(&list)
        .listen("127.0.0.1:0")
        .client_tls(trusting())
        .token(&admin);
    let agent = start_echo(agent, "alpha").await;

    // The CLI: TLS and the token on each replica it tries.
    let tls = ["--tls-ca".to_owned(), ca.clone()];
    let listed = eventually("the agent listed through the list", DEADLINE, || async {
        let with_token = [&tls[..], &["--token".to_owned(), admin.clone()]].concat();
        let run = agents(&list, &with_token).await;
        (run.code == 0 && run.stdout.contains("alpha")).then_some(run)
    })
    .await;
    assert!(listed.stdout.contains("token:bootstrap"), "owned by the token:\n{}", listed.stdout);
    let anonymous = agents(&list, &tls).await;
    assert_eq!(anonymous.code, 5, "TLS alone is not a credential: {anonymous:#?}");
    let plaintext = agents(&list, &["--token".to_owned(), admin.clone()]).await;
    assert_eq!(plaintext.code, 3, "{plaintext:#?}");
    assert!(plaintext.stderr.contains("TLS"), "{}", plaintext.stderr);

    // The gateway's Watch: the same list, TLS and a token.
    let gateway = InProcessGateway::start_with(GatewayConfig {
        registry: list.clone(),
        client_tls: Some(ClientTls::load(&trusting()).unwrap()),
        registry_token: switchboard_client::Bearer::new(Some(&admin)).unwrap(),
        ..GatewayConfig::default()
    })
    .await;
    let pool = McpPool::default();
    let url = format!("http://127.0.0.1:{}/mcp", gateway.addr.port());
    let answer = eventually("the agent answers through the gateway", DEADLINE, || async {
        let tool = pool.list_tools(&url).await.ok()?.into_iter().next()?;
        let result =
            pool.call_tool(&url, CallToolRequestParams::new(tool.name.to_string())).await.ok()?;
        Some(switchboard_tests::mcp::text(&result))
    })
    .await;
    assert_eq!(answer, "alpha");

    agent.shutdown().await.unwrap();
    gateway.stop().await.unwrap();
}
