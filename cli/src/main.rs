//! `switchboard`: one binary for the registry, the gateway and operators.
//!
//! `main` only parses the command line, sets up logging and hands over to a
//! command module; the logic lives in the library crates.

mod audit_cmd;
mod bench_cmd;
mod bridge_cmd;
mod cert_cmd;
mod credentials;
mod duration;
mod gateway_cmd;
mod ops;
mod probe_cmd;
mod registry_cmd;
mod settings;
mod shutdown;
mod store_cmd;
mod telemetry;
mod up_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use settings::{GatewayArgs, RegistryArgs, UpArgs};

/// mimalloc instead of glibc's allocator: a forwarded call allocates and
/// frees many small buffers across threads, where glibc's arenas spent a
/// sixth of the gateway's CPU (`malloc`, `_int_free`, `malloc_consolidate`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Control plane for meshes of MCP agents.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the registry and the gateway in one process on the embedded store.
    Up(Box<UpArgs>),
    /// Run the registry alone.
    Registry(Box<RegistryArgs>),
    /// Run the MCP gateway alone, fed by a registry's Watch stream.
    Gateway(Box<GatewayArgs>),
    /// Operator commands: agents, agent, resolve, watch, call, status, token, whoami, key.
    #[command(flatten)]
    Ops(ops::OpsCommand),
    /// Read the registry's audit log (`--audit-log FILE`): who changed what, when, from where.
    Audit(audit_cmd::AuditArgs),
    /// Measure this machine with the separate `switchboard-bench` binary installed next to
    /// this one (heartbeat, register, watch-fanout, rewire, gateway, restart).
    #[command(disable_help_flag = true)]
    Bench(bench_cmd::BenchArgs),
    /// Health check for containers: exit 0 when a gRPC health service or an HTTP probe is healthy.
    Probe(probe_cmd::ProbeArgs),
    /// Bring existing MCP servers into the mesh: a stdio program (`-- COMMAND ARGS…`), a remote
    /// server (`--url`), or several (`--config servers.toml`), supervised and restarted.
    Bridge(bridge_cmd::BridgeArgs),
    /// Certificates: `cert dev` writes a development CA and certificates for a local mesh.
    Cert(cert_cmd::CertArgs),
    /// Store maintenance: `store copy --from sled:DIR --to etcd:ENDPOINTS` (and back).
    Store(store_cmd::StoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any HTTP client is built: reqwest and rmcp take rustls' process default.
    switchboard_tls::ensure_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up_cmd::run(*args).await,
            Command::Registry(args) => registry_cmd::run(*args).await,
            Command::Gateway(args) => gateway_cmd::run(*args).await,
            Command::Ops(command) => ops::run(command).await,
            Command::Audit(args) => audit_cmd::run(args),
            Command::Bench(args) => bench_cmd::run(args),
            Command::Probe(args) => probe_cmd::run(args).await,
            Command::Bridge(args) => bridge_cmd::run(args).await,
            Command::Cert(args) => cert_cmd::run(args),
            Command::Store(args) => store_cmd::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::from(error_code(&error))
        }
    }
}

/// 2 for configuration mistakes (nothing was started), 1 otherwise; operator
/// commands choose their own codes (see `ops`).
fn error_code(error: &anyhow::Error) -> u8 {
    if let Some(code) = error.downcast_ref::<ops::ExitCode>() {
        return code.0;
    }
    if error.downcast_ref::<settings::ConfigError>().is_some() { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn bench_hands_every_argument_over() {
        let cli =
            Cli::try_parse_from(["switchboard", "bench", "heartbeat", "--agents", "5", "--help"])
                .unwrap();
        let Command::Bench(args) = cli.command else { panic!("not bench") };
        assert_eq!(args.args, ["heartbeat", "--agents", "5", "--help"]);
    }

    #[test]
    fn up_takes_the_gateway_options_too() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "up",
            "--call-timeout",
            "2s",
            "--allowed-hosts",
            "mesh.internal,gw.internal",
        ])
        .unwrap();
        let Command::Up(args) = cli.command else { panic!("not up") };
        assert_eq!(args.gateway.call_timeout.as_deref(), Some("2s"));
        assert_eq!(args.gateway.allowed_hosts, ["mesh.internal", "gw.internal"]);
    }
}
