//! `switchboard up`: registry + gateway in one process on the embedded store;
//! with `--demo`, also the example agents (date-service and hello, run
//! in-process with the same code as `examples/`), so a new user sees tools at
//! the gateway within seconds.

use std::time::Duration;

use anyhow::Context as _;
use switchboard_agent::{Agent, RunningAgent};
use switchboard_examples::{date_service, hello};

use crate::settings::{ClientTlsArgs, ConfigError, GatewayArgs, ServerTlsArgs, UpArgs};
use crate::{credentials, gateway_cmd, registry_cmd, shutdown, telemetry};

/// Runs everything until a shutdown signal.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let (server_tls, client_tls) = (args.registry.tls.clone(), args.registry.client_tls.clone());
    let registry_settings = args.registry.resolve()?;
    if registry_settings.tls.is_some() && registry_settings.client_tls.is_none() {
        return Err(ConfigError(
            "tls_cert: up serves TLS and dials itself (gateway, demo agents): also give --tls-ca (the CA of --tls-cert), and --tls-client-cert/--tls-client-key with --tls-client-ca".into(),
        )
        .into());
    }
    let auth = registry_settings.registry.auth.clone();
    let bootstrap_file = auth.bootstrap_token_file.clone().unwrap_or_else(|| {
        registry_settings.data_dir.join(switchboard_registry::BOOTSTRAP_TOKEN_FILE)
    });
    let gateway_args = GatewayArgs {
        gateway_addr: args.gateway_addr,
        options: args.gateway,
        exposure: registry_settings.exposure,
        ..GatewayArgs::default()
    };
    let mut gateway_settings = gateway_args.resolve()?;
    // One dashboard switch for the whole process: both ports or neither.
    // The dashboard reads the registry without a token: not with auth.
    gateway_settings.gateway.ui = registry_settings.ui && !auth.enabled;
    // One TLS setting too: every port of the process, every connection in it.
    gateway_settings.gateway.tls = registry_settings.tls.clone();
    gateway_settings.gateway.client_tls = registry_settings.client_tls.clone();
    let _telemetry = telemetry::init("switchboard", &registry_settings.telemetry)?;
    let stop = shutdown::on_signal();
    // Every listener is checked before any is bound (the registry's in `start`).
    gateway_settings.check_exposure()?;

    let registry = registry_cmd::start(registry_settings).await?;
    gateway_settings.gateway.registry = registry.grpc_addr.to_string();
    // With auth, the parts of this process are clients of its registry like
    // any other; unless told otherwise they use the bootstrap admin token,
    // which the registry has just written if the store was new.
    let mesh_token = match args.token.secret()? {
        Some(token) => Some(token),
        None if auth.enabled => Some(credentials::read_token_file(&bootstrap_file)?),
        None => None,
    };
    gateway_settings.gateway.registry_token = credentials::bearer(mesh_token.as_deref())?;
    if gateway_settings.gateway.access.registry_token.is_none() {
        gateway_settings.gateway.access.registry_token.clone_from(&mesh_token);
    }
    let listener = gateway_cmd::bind(&gateway_settings).await?;
    let gateway_addr = listener.local_addr()?;
    let gateway = tokio::spawn(gateway_cmd::serve(gateway_settings, listener, stop.child_token()));

    let demo = if args.demo {
        let tls = (&server_tls, &client_tls);
        start_demo(&registry.grpc_addr.to_string(), tls, mesh_token.as_deref()).await?
    } else {
        Vec::new()
    };
    if args.demo {
        tracing::info!(
            "demo mesh up: point an MCP client at http://{gateway_addr}/mcp and call greet"
        );
    }
    let asked = registry.until_stopped(stop.cancelled()).await;
    stop.cancel();
    for agent in demo {
        if let Err(error) = agent.shutdown().await {
            tracing::warn!(%error, "demo agent did not stop cleanly");
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), gateway).await {
        Ok(joined) => joined.context("gateway task")??,
        Err(_) => tracing::warn!("gateway did not stop in time"),
    }
    registry.stop().await?;
    anyhow::ensure!(asked, "the registry stopped after a storage failure (see the log)");
    Ok(())
}

/// Starts date-service then hello against the registry, with the process's
/// TLS settings and token.
async fn start_demo(
    registry: &str,
    (server_tls, client_tls): (&ServerTlsArgs, &ClientTlsArgs),
    token: Option<&str>,
) -> anyhow::Result<Vec<RunningAgent>> {
    let demo_agent = |name: &str| {
        let agent = Agent::new(name).registry(registry).listen("127.0.0.1:0");
        let agent = match (&server_tls.tls_cert, &server_tls.tls_key) {
            (Some(cert), Some(key)) => agent.tls(switchboard_tls::ServerTlsConfig {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: server_tls.tls_client_ca.clone(),
            }),
            _ => agent,
        };
        let agent =
            if server_tls.enabled() { agent.client_tls(client_tls.config()) } else { agent };
        match token {
            Some(token) => agent.token(token),
            None => agent,
        }
    };
    let date =
        date_service::start(demo_agent("date-service")).await.context("demo: date-service")?;
    println!("LISTEN agent-mcp {}", date.local_addr);
    let hello = hello::start(demo_agent("hello")).await.context("demo: hello")?;
    println!("LISTEN agent-mcp {}", hello.local_addr);
    Ok(vec![date, hello])
}
