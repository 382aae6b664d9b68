//! What to bridge: one server from the command line, or several from a
//! file, validated completely before anything starts.
//!
//! Two file formats are read. The bridge's own TOML (`[servers.NAME]` with
//! `command`/`args`/`env`/`cwd` or `url`, and `[servers.NAME.tools.TOOL]`
//! mesh metadata) refuses unknown keys and names the line of every mistake.
//! The JSON `mcpServers` block of the MCP clients people already use (Claude
//! Desktop, Cursor; VS Code's `servers`) is read too, so an existing client
//! configuration can be pointed at as it is; other top-level keys of such a
//! file belong to the client and are ignored, unknown keys inside a server
//! are refused.

mod raw;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::env::EnvValue;
use crate::{BridgeError, Result};
pub(crate) use raw::as_name;

/// Default restart limit: this many restarts within [`DEFAULT_RESTART_WINDOW`].
pub const DEFAULT_MAX_RESTARTS: usize = 5;
/// Default window of the restart limit.
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Default interval between probes of a remote (`url`) server.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Default bound on the programs started for `per-client` sessions.
pub const DEFAULT_MAX_SESSIONS: usize = 16;

/// Everything one bridge process serves.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The servers, each a mesh agent of its own.
    pub servers: Vec<ServerConfig>,
}

/// One bridged server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Its agent name (`[a-z0-9][a-z0-9_.-]{0,63}`).
    pub name: String,
    /// How it is reached.
    pub source: Source,
    /// Mesh metadata per tool name.
    pub tools: BTreeMap<String, ToolMeta>,
    /// When to give up restarting a crashing server.
    pub restart: RestartPolicy,
    /// How often a remote server is probed.
    pub probe_interval: Duration,
    /// Listen address of the bridge's MCP endpoint for a stdio server.
    pub listen: String,
    /// Whether downstream clients share the program's one session.
    pub session: SessionMode,
    /// Most programs running for `per-client` sessions at once.
    pub max_sessions: usize,
}

/// How downstream clients map onto a stdio program, which serves exactly
/// one MCP session per process.
///
/// `Shared` is the default: whether a server keeps per-session state
/// (a log level, subscriptions, its own memory) cannot be seen from outside,
/// most servers keep none, and one process is what an MCP client would run.
/// A stateful server is set to `PerClient` by whoever knows it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    /// Every downstream client shares the one program.
    #[default]
    Shared,
    /// Every downstream session gets a program of its own.
    PerClient,
}

// === impl SessionMode ===

impl std::str::FromStr for SessionMode {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "shared" => Ok(Self::Shared),
            "per-client" => Ok(Self::PerClient),
            other => Err(format!("bad session {other:?}: want \"shared\" or \"per-client\"")),
        }
    }
}

/// How a server is reached.
#[derive(Debug, Clone)]
pub enum Source {
    /// A stdio program the bridge spawns and supervises.
    Command(CommandSpec),
    /// A Streamable HTTP server someone else runs.
    Url(String),
}

/// A stdio program.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The program (looked up on `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables set for it on top of the allow-listed ones.
    pub env: BTreeMap<String, EnvValue>,
    /// Its working directory.
    pub cwd: Option<PathBuf>,
}

/// Mesh metadata of one tool; unset fields take the defaults (capability =
/// the tool's name, version = the server's `serverInfo.version`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolMeta {
    /// The capability it provides.
    pub capability: Option<String>,
    /// The capability's semver version.
    pub version: Option<String>,
    /// Tags of this provider.
    pub tags: Vec<String>,
    /// What it needs from the mesh.
    pub dependencies: Vec<DependencyMeta>,
}

/// A dependency of a tool.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencyMeta {
    /// The capability needed.
    pub capability: String,
    /// Semver requirement (`>=1.2`, `^1`, `a || b`); empty = any.
    pub version: String,
    /// Tag constraints (`eu`, `+fast`, `-beta`).
    pub tags: Vec<String>,
}

/// Restart limit of a crashing server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; one more and the bridge gives up.
    pub max_restarts: usize,
    /// The sliding window.
    pub window: Duration,
    /// First backoff delay (doubles per restart, full jitter).
    pub backoff_base: Duration,
    /// Longest backoff delay.
    pub backoff_max: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: DEFAULT_MAX_RESTARTS,
            window: DEFAULT_RESTART_WINDOW,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
        }
    }
}

// === impl BridgeConfig ===

impl BridgeConfig {
    /// Reads a config file: JSON (`mcpServers`) when it ends in `.json` or
    /// starts with `{`, the bridge's TOML otherwise.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read(path)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let file = raw::parse(text, origin)?;
        if !file.tools.is_empty() {
            return Err(BridgeError::Config(format!(
                "{origin}: top-level [tools] applies to a command given on the command line; \
                 with [servers.NAME], put it under [servers.NAME.tools]"
            )));
        }
        if file.servers.is_empty() {
            return Err(BridgeError::Config(format!(
                "{origin}: no servers: add a [servers.NAME] table (or an mcpServers entry)"
            )));
        }
        Ok(Self { servers: file.servers })
    }

    /// One server from the command line: `command` (program and arguments)
    /// or `url`, with the mesh metadata of an optional file's `[tools]`.
    pub fn single(
        name: Option<&str>,
        command: &[String],
        url: Option<&str>,
        metadata: Option<&Path>,
    ) -> Result<Self> {
        let tools = match metadata {
            Some(path) => {
                let origin = path.display().to_string();
                let file = raw::parse(&read(path)?, &origin)?;
                if !file.servers.is_empty() {
                    return Err(BridgeError::Config(format!(
                        "{origin}: [servers.*] tables cannot be combined with a command or --url \
                         on the command line; use either one"
                    )));
                }
                file.tools
            }
            None => BTreeMap::new(),
        };
        let source = match (command.split_first(), url) {
            (Some(_), Some(_)) => {
                return Err(BridgeError::Config(
                    "give either a command after `--` or --url, not both".into(),
                ));
            }
            (Some((program, args)), None) => Source::Command(CommandSpec {
                program: program.clone(),
                args: args.to_vec(),
                env: BTreeMap::new(),
                cwd: None,
            }),
            (None, Some(url)) => Source::Url(raw::check_url(url, "--url")?),
            (None, None) => {
                return Err(BridgeError::Config(
                    "nothing to bridge: give a command after `--`, --url, or --config with \
                     [servers.NAME] tables"
                        .into(),
                ));
            }
        };
        let name = match name {
            Some(name) => raw::check_name(name, "--name")?,
            None => default_name(&source)?,
        };
        Ok(Self {
            servers: vec![ServerConfig {
                name,
                source,
                tools,
                restart: RestartPolicy::default(),
                probe_interval: DEFAULT_PROBE_INTERVAL,
                listen: "127.0.0.1:0".into(),
                session: SessionMode::Shared,
                max_sessions: DEFAULT_MAX_SESSIONS,
            }],
        })
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|error| BridgeError::Config(format!("cannot read {}: {error}", path.display())))
}

/// The agent name when `--name` is not given: the package a launcher runs
/// (`npx -y @scope/server-x` → `server-x`), or the program's file name; the
/// host of a URL.
fn default_name(source: &Source) -> Result<String> {
    const LAUNCHERS: [&str; 9] =
        ["npx", "uvx", "node", "python", "python3", "bunx", "pipx", "deno", "docker"];
    let candidate = match source {
        Source::Command(spec) => {
            let program = file_name(&spec.program);
            if LAUNCHERS.contains(&program) {
                let package = spec.args.iter().find(|a| !a.starts_with('-'));
                package.map_or(program, |p| {
                    file_name(p.split('@').find(|s| !s.is_empty()).unwrap_or(p))
                })
            } else {
                program
            }
        }
        Source::Url(url) => {
            url.split("://").nth(1).and_then(|r| r.split([':', '/']).next()).unwrap_or(url)
        }
    };
    raw::check_name(&raw::as_name(candidate, '-'), "--name (derived from the command; give --name)")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
