//! The file formats as written, and their validation into [`super`]'s
//! types. TOML values keep their spans so an error names its line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    CommandSpec, DEFAULT_MAX_SESSIONS, DEFAULT_PROBE_INTERVAL, DependencyMeta, RestartPolicy,
    ServerConfig, SessionMode, Source, ToolMeta,
};
use crate::env::EnvValue;
use crate::{BridgeError, Result};

/// A parsed file: its servers, and top-level tool metadata (for a command
/// given on the command line).
pub struct Parsed {
    pub servers: Vec<ServerConfig>,
    pub tools: BTreeMap<String, ToolMeta>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    servers: BTreeMap<String, Spanned<TomlServer>>,
    #[serde(default)]
    tools: BTreeMap<String, Spanned<TomlTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlServer {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, EnvValue>,
    cwd: Option<PathBuf>,
    url: Option<Spanned<String>>,
    listen: Option<String>,
    max_restarts: Option<usize>,
    restart_window: Option<Spanned<String>>,
    probe_interval: Option<Spanned<String>>,
    session: Option<Spanned<String>>,
    max_sessions: Option<Spanned<usize>>,
    #[serde(default)]
    tools: BTreeMap<String, Spanned<TomlTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlTool {
    capability: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    dependencies: Vec<Spanned<TomlDependency>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlDependency {
    capability: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    tags: Vec<String>,
}

/// A client's JSON configuration: only its servers are ours to read.
#[derive(Deserialize)]
struct JsonFile {
    #[serde(rename = "mcpServers", alias = "servers")]
    servers: Option<BTreeMap<String, JsonServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonServer {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    /// `stdio`, `http`, `streamable-http` or `sse` (VS Code, Cursor).
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A server the client keeps but does not start.
    #[serde(default)]
    disabled: bool,
}

/// Parses `text` as JSON or TOML (by its first character).
pub fn parse(text: &str, origin: &str) -> Result<Parsed> {
    if origin.ends_with(".json") || text.trim_start().starts_with('{') {
        parse_json(text, origin)
    } else {
        parse_toml(text, origin)
    }
}

fn parse_toml(text: &str, origin: &str) -> Result<Parsed> {
    let at = |span: std::ops::Range<usize>| format!("{origin}:{}", line_of(text, span.start));
    let file: TomlFile = toml::from_str(text).map_err(|error| {
        let place = error.span().map_or_else(|| origin.to_owned(), &at);
        BridgeError::Config(format!("{place}: {}", error.message()))
    })?;
    let top_tools = tools(file.tools, &at)?;
    let mut servers = Vec::new();
    for (name, server) in file.servers {
        let place = at(server.span());
        let server = server.into_inner();
        let here = format!("{place}: [servers.{name}]");
        let name = check_name(&name, &here)?;
        let session = match &server.session {
            None => SessionMode::Shared,
            Some(value) => value.get_ref().parse::<SessionMode>().map_err(|reason| {
                BridgeError::Config(format!("{}: [servers.{name}] {reason}", at(value.span())))
            })?,
        };
        let max_sessions = match &server.max_sessions {
            None => DEFAULT_MAX_SESSIONS,
            Some(value) if *value.get_ref() == 0 => {
                return Err(BridgeError::Config(format!(
                    "{}: [servers.{name}] max_sessions must be at least 1",
                    at(value.span())
                )));
            }
            Some(value) => *value.get_ref(),
        };
        if session == SessionMode::PerClient && server.url.is_some() {
            return Err(BridgeError::Config(format!(
                "{here}: session = \"per-client\" applies to a command; a url server keeps its \
                 own sessions"
            )));
        }
        let source = match (server.command, server.url) {
            (Some(_), Some(_)) => {
                return Err(BridgeError::Config(format!(
                    "{here}: give either command or url, not both"
                )));
            }
            (Some(program), None) if program.trim().is_empty() => {
                return Err(BridgeError::Config(format!("{here}: command is empty")));
            }
            (Some(program), None) => Source::Command(CommandSpec {
                program,
                args: server.args,
                env: server.env,
                cwd: server.cwd,
            }),
            (None, Some(url)) => {
                let what = format!("{}: [servers.{name}] url", at(url.span()));
                if !server.args.is_empty() || !server.env.is_empty() || server.cwd.is_some() {
                    return Err(BridgeError::Config(format!(
                        "{here}: args, env and cwd apply to a command, not to a url"
                    )));
                }
                Source::Url(check_url(url.get_ref(), &what)?)
            }
            (None, None) => {
                return Err(BridgeError::Config(format!(
                    "{here}: missing command (a stdio program) or url (a Streamable HTTP server)"
                )));
            }
        };
        let duration = |value: Option<Spanned<String>>, key: &str, default: Duration| match value {
            None => Ok(default),
            Some(value) => parse_duration(value.get_ref()).map_err(|reason| {
                BridgeError::Config(format!("{}: {key}: {reason}", at(value.span())))
            }),
        };
        let defaults = RestartPolicy::default();
        let restart = RestartPolicy {
            max_restarts: server.max_restarts.unwrap_or(defaults.max_restarts),
            window: duration(server.restart_window, "restart_window", defaults.window)?,
            ..defaults
        };
        servers.push(ServerConfig {
            name,
            source,
            tools: tools(server.tools, &at)?,
            restart,
            probe_interval: duration(
                server.probe_interval,
                "probe_interval",
                DEFAULT_PROBE_INTERVAL,
            )?,
            listen: server.listen.unwrap_or_else(|| "127.0.0.1:0".into()),
            session,
            max_sessions,
        });
    }
    Ok(Parsed { servers, tools: top_tools })
}

fn tools(
    raw: BTreeMap<String, Spanned<TomlTool>>,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<BTreeMap<String, ToolMeta>> {
    let mut tools = BTreeMap::new();
    for (tool, meta) in raw {
        let meta = meta.into_inner();
        let bad = |span: std::ops::Range<usize>, reason: String| {
            BridgeError::Config(format!("{}: tool {tool:?}: {reason}", at(span)))
        };
        let capability = match meta.capability {
            Some(c) if !is_valid_name(c.get_ref()) => {
                return Err(bad(
                    c.span(),
                    format!("bad capability {:?}: {NAME_SYNTAX}", c.get_ref()),
                ));
            }
            other => other.map(Spanned::into_inner),
        };
        let version = match meta.version {
            Some(v) if semver::Version::parse(v.get_ref()).is_err() => {
                return Err(bad(
                    v.span(),
                    format!("bad version {:?}: want semver like 1.2.0", v.get_ref()),
                ));
            }
            other => other.map(Spanned::into_inner),
        };
        if let Some(tag) = meta.tags.iter().find(|t| !is_valid_name(t.get_ref())) {
            return Err(bad(tag.span(), format!("bad tag {:?}: {NAME_SYNTAX}", tag.get_ref())));
        }
        let mut dependencies = Vec::new();
        for dependency in meta.dependencies {
            let span = dependency.span();
            let dependency = dependency.into_inner();
            if !is_valid_name(&dependency.capability) {
                let reason = format!(
                    "dependency: bad capability {:?}: {NAME_SYNTAX}",
                    dependency.capability
                );
                return Err(bad(span, reason));
            }
            let alternatives = dependency.version.split("||").map(str::trim);
            if let Some(req) = alternatives
                .filter(|a| !a.is_empty())
                .find(|a| semver::VersionReq::parse(a).is_err())
            {
                return Err(bad(span, format!("dependency: bad version requirement {req:?}")));
            }
            let tag_ok = |t: &String| is_valid_name(t.trim_start_matches(['+', '-']));
            if let Some(tag) = dependency.tags.iter().find(|t| !tag_ok(t)) {
                return Err(bad(span, format!("dependency: bad tag {tag:?}: {NAME_SYNTAX}")));
            }
            dependencies.push(DependencyMeta {
                capability: dependency.capability,
                version: dependency.version,
                tags: dependency.tags,
            });
        }
        let tags = meta.tags.into_iter().map(Spanned::into_inner).collect();
        tools.insert(tool, ToolMeta { capability, version, tags, dependencies });
    }
    Ok(tools)
}

fn parse_json(text: &str, origin: &str) -> Result<Parsed> {
    let file: JsonFile = serde_json::from_str(text)
        .map_err(|error| BridgeError::Config(format!("{origin}:{}: {error}", error.line())))?;
    let Some(raw) = file.servers else {
        return Err(BridgeError::Config(format!(
            "{origin}: no \"mcpServers\" (or \"servers\") object"
        )));
    };
    let mut servers = Vec::new();
    for (name, server) in raw {
        let here = format!("{origin}: mcpServers.{name}");
        if server.disabled {
            tracing::info!(server = %name, "skipping a server the configuration marks disabled");
            continue;
        }
        let agent_name = check_name(&name.to_ascii_lowercase(), &here)?;
        let source = match (server.command, server.url, server.kind.as_deref()) {
            (_, _, Some(kind))
                if !["stdio", "http", "streamable-http", "streamableHttp"].contains(&kind) =>
            {
                return Err(BridgeError::Config(format!(
                    "{here}: type {kind:?} is not supported (stdio or http)"
                )));
            }
            (Some(program), None, _) if !program.trim().is_empty() => {
                let env = server.env.into_iter().map(|(k, v)| (k, EnvValue::Text(v))).collect();
                Source::Command(CommandSpec { program, args: server.args, env, cwd: server.cwd })
            }
            (None, Some(url), _) => Source::Url(check_url(&url, &format!("{here}.url"))?),
            (Some(_), Some(_), _) => {
                return Err(BridgeError::Config(format!(
                    "{here}: give either command or url, not both"
                )));
            }
            _ => return Err(BridgeError::Config(format!("{here}: missing command or url"))),
        };
        servers.push(ServerConfig {
            name: agent_name,
            source,
            tools: BTreeMap::new(),
            restart: RestartPolicy::default(),
            probe_interval: DEFAULT_PROBE_INTERVAL,
            listen: "127.0.0.1:0".into(),
            session: SessionMode::Shared,
            max_sessions: DEFAULT_MAX_SESSIONS,
        });
    }
    Ok(Parsed { servers, tools: BTreeMap::new() })
}

const NAME_SYNTAX: &str = "want [a-z0-9][a-z0-9_.-]{0,63}";

/// `name` if it is a valid agent name; `what` names the setting otherwise.
pub fn check_name(name: &str, what: &str) -> Result<String> {
    if is_valid_name(name) {
        Ok(name.to_owned())
    } else {
        Err(BridgeError::Config(format!("{what}: bad name {name:?}: {NAME_SYNTAX}")))
    }
}

/// `url` if it is an `http(s)://` URL.
pub fn check_url(url: &str, what: &str) -> Result<String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(url.to_owned()),
        _ => Err(BridgeError::Config(format!(
            "{what}: bad url {url:?}: want http://HOST[:PORT]/PATH"
        ))),
    }
}

/// `text` made into a name: lowercased, other characters as `fill`, at
/// most 64 characters, no leading separator (possibly empty).
pub fn as_name(text: &str, fill: char) -> String {
    let mapped: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { fill })
        .take(64)
        .collect();
    mapped.trim_start_matches(['-', '_', '.']).to_owned()
}

/// Names, tags and capabilities: `[a-z0-9][a-z0-9_.-]{0,63}`.
pub fn is_valid_name(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && text.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

/// `500ms`, `5s`, `2m`.
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let (digits, scale) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1_000)
    } else if let Some(d) = text.strip_suffix('m') {
        (d, 60_000)
    } else {
        return Err(format!("bad duration {text:?}: want 500ms, 5s or 2m"));
    };
    digits
        .parse::<u64>()
        .map(|n| Duration::from_millis(n.saturating_mul(scale)))
        .map_err(|_| format!("bad duration {text:?}: want 500ms, 5s or 2m"))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
}
