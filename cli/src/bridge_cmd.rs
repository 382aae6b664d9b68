//! `switchboard bridge`: existing MCP servers into the mesh, supervised.
//!
//! Exit codes: 0 after SIGTERM or ctrl-c (every server deregistered and
//! stopped), 2 for a configuration mistake (nothing was started), 3 when a
//! server kept crashing past its restart limit, 1 otherwise.

use std::path::PathBuf;

use clap::Args;
use switchboard_bridge::{BridgeConfig, BridgeError, Source};
use switchboard_telemetry::exposure::Protection;

use crate::ops::ExitCode;
use crate::settings::{ConfigError, ExposureArgs, TelemetryArgs};
use crate::{shutdown, telemetry};

/// Flags of `switchboard bridge`.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Agent name of the server given after `--` or by --url [default: the package a launcher
    /// such as npx runs, or the program's name].
    #[arg(long)]
    pub name: Option<String>,
    /// A TOML file: `[servers.NAME]` tables (then no command), or `[tools.TOOL]` mesh metadata
    /// for the command given after `--`. A `.json` file is read as an MCP client's
    /// `mcpServers` configuration.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Bridge a Streamable HTTP server someone else runs (registered at this URL).
    #[arg(long)]
    pub url: Option<String>,
    /// The registry's gRPC address, or several replicas' separated by commas.
    #[arg(long, env = "SWITCHBOARD_REGISTRY", default_value = "127.0.0.1:7600")]
    pub registry: String,
    /// Listen address of the bridge's MCP endpoint for the server given after `--`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// `shared`: every client shares the one program; `per-client`: every client session gets
    /// a program of its own (for a server that keeps per-session state).
    #[arg(long, default_value = "shared")]
    pub session: switchboard_bridge::SessionMode,
    /// Most programs running for per-client sessions at once.
    #[arg(long, default_value_t = switchboard_bridge::config::DEFAULT_MAX_SESSIONS)]
    pub max_sessions: usize,
    /// Non-loopback listeners.
    #[command(flatten)]
    pub exposure: ExposureArgs,
    /// Trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// The stdio MCP server to run: `-- COMMAND ARGS…`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Runs the bridge until a shutdown signal or a server's restart limit.
pub async fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let config = configure(&args).map_err(config_error)?;
    switchboard_bridge::validate(&config).map_err(config_error)?;
    let _telemetry = telemetry::init("switchboard-bridge", &args.telemetry)?;
    check_listeners(&config, args.exposure)?;
    let stop = shutdown::on_signal();
    match switchboard_bridge::run(config, args.registry.clone(), stop).await {
        Ok(()) => Ok(()),
        Err(error @ BridgeError::GaveUp { .. }) => {
            Err(ExitCode::error(ExitCode::UNREACHABLE, error.to_string()))
        }
        Err(error @ BridgeError::Config(_)) => Err(config_error(error)),
        Err(error) => Err(error.into()),
    }
}

fn configure(args: &BridgeArgs) -> Result<BridgeConfig, BridgeError> {
    if args.command.is_empty() && args.url.is_none() {
        let Some(path) = &args.config else {
            return BridgeConfig::single(None, &[], None, None);
        };
        if args.name.is_some() {
            return Err(BridgeError::Config(
                "--name applies to a command or --url; in a config file the table names the server"
                    .into(),
            ));
        }
        return BridgeConfig::from_file(path);
    }
    let mut config = BridgeConfig::single(
        args.name.as_deref(),
        &args.command,
        args.url.as_deref(),
        args.config.as_deref(),
    )?;
    if args.max_sessions == 0 {
        return Err(BridgeError::Config("--max-sessions must be at least 1".into()));
    }
    if args.session == switchboard_bridge::SessionMode::PerClient && args.url.is_some() {
        return Err(BridgeError::Config(
            "--session per-client applies to a command; a --url server keeps its own sessions"
                .into(),
        ));
    }
    for server in &mut config.servers {
        args.listen.clone_into(&mut server.listen);
        server.session = args.session;
        server.max_sessions = args.max_sessions;
    }
    Ok(config)
}

/// Every MCP endpoint the bridge opens (one per stdio server) is held to
/// the exposure rule; an address that does not parse is the bridge's to
/// report.
fn check_listeners(config: &BridgeConfig, exposure: ExposureArgs) -> Result<(), ConfigError> {
    // The endpoints have no auth of their own yet.
    let protection = Protection { tls: switchboard_bridge::serves_tls(), auth: false };
    for server in &config.servers {
        if let (Source::Command(_), Ok(addr)) = (&server.source, server.listen.parse()) {
            exposure.check("bridge", addr, protection)?;
        }
    }
    Ok(())
}

fn config_error(error: BridgeError) -> anyhow::Error {
    ConfigError(error.to_string()).into()
}
