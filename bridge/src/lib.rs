//! `switchboard bridge`: existing MCP servers in the mesh, with no code.
//!
//! A bridged server is a stdio program (`npx -y @modelcontextprotocol/server-filesystem DIR`)
//! the bridge spawns and supervises, or a Streamable HTTP server someone else runs. Each becomes
//! one agent: the bridge lists everything the server offers (tools, resources, templates,
//! prompts, with their full MCP definitions and annotations), registers it in one call with the
//! mesh metadata of the configuration, heartbeats, and registers again when the server announces
//! `list_changed`.
//!
//! A stdio server is served on an MCP endpoint of the bridge (both protocol eras, legacy
//! sessions on). A stdio program is one MCP session, so by default (`session = "shared"`)
//! every downstream client shares the program's single session and a stateful server sees
//! one client (see [`relay`] for where its notifications and mid-call requests go). With
//! `session = "per-client"` every downstream session gets a program of its own, started on
//! its first request and stopped when it ends; the first program still serves the
//! registration's lists and the stateless (2026-07-28) requests, which have no session. A remote server is
//! registered at its own URL — the gateway calls it directly — and the bridge only probes it
//! (`ping` every `probe_interval`), taking the agent out of routing when it stops answering.
//!
//! ```no_run
//! # async fn run() -> Result<(), switchboard_bridge::BridgeError> {
//! use switchboard_bridge::BridgeConfig;
//! let command = ["npx".to_owned(), "-y".into(), "@modelcontextprotocol/server-filesystem".into(), "/tmp".into()];
//! let config = BridgeConfig::single(Some("files"), &command, None, None)?;
//! let stop = tokio_util::sync::CancellationToken::new();
//! switchboard_bridge::run(config, "127.0.0.1:7600".into(), stop).await
//! # }
//! ```

mod clients;
pub mod config;
mod endpoint;
mod env;
mod error;
mod forward;
pub mod relay;
mod supervisor;
mod upstream;

pub use config::{BridgeConfig, ServerConfig, SessionMode, Source};
pub use endpoint::serves_tls;
pub use error::{BridgeError, Result};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Checks what can be checked before anything starts: every configured
/// variable resolves (secrets are read, never shown) and every program
/// exists (on the `PATH` the program itself gets).
pub fn validate(config: &BridgeConfig) -> Result<()> {
    for server in &config.servers {
        if let Source::Command(spec) = &server.source {
            let env = env::child_env(&spec.env, &server.name)?;
            let path = env.iter().find(|(key, _)| key == "PATH").map(|(_, value)| value.as_str());
            if !env::program_exists(&spec.program, spec.cwd.as_deref(), path) {
                return Err(BridgeError::Config(format!(
                    "server {:?}: command {:?} not found (PATH {:?})",
                    server.name,
                    spec.program,
                    path.unwrap_or_default()
                )));
            }
        }
    }
    let mut names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(BridgeError::Config(format!("two servers are named {:?}", pair[0])));
    }
    Ok(())
}

/// Bridges every server of `config` into the mesh of `registry` until
/// `stop`; then deregisters each and stops its program. Returns the first
/// server's error (a crash loop past its restart limit) after stopping the
/// others.
pub async fn run(config: BridgeConfig, registry: String, stop: CancellationToken) -> Result<()> {
    validate(&config)?;
    // A `--url` server is reached with rmcp's HTTP client, which takes
    // rustls' process default.
    switchboard_tls::ensure_crypto_provider();
    let mut servers = JoinSet::new();
    for server in config.servers {
        servers.spawn(supervisor::supervise(server, registry.clone(), stop.child_token()));
    }
    let mut first_error = None;
    while let Some(joined) = servers.join_next().await {
        let result = joined.unwrap_or_else(|error| {
            Err(BridgeError::Upstream {
                server: "?".into(),
                reason: format!("supervisor failed: {error}"),
            })
        });
        if let Err(error) = result {
            stop.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}
