//! The environment a bridged program gets: an explicit allow-list of the
//! bridge's own variables plus what the configuration sets, never the whole
//! environment (a shell's tokens and keys stay out of third-party code).
//!
//! A configured value is text with `${VAR}` (or VS Code's `${env:VAR}`)
//! taken from the bridge's environment, or `{ file = "…" }`: the contents of
//! a file (one trailing newline dropped), where secrets mounted by an
//! orchestrator live. Values are never logged; errors name the variable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::{BridgeError, Result};

/// Variables passed through from the bridge's environment when set.
pub const ALLOWED: [&str; 16] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TMPDIR",
    "TZ",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
];

/// One configured variable's value.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// Text, with `${VAR}` references expanded.
    Text(String),
    /// The contents of a file.
    File {
        /// The file.
        file: PathBuf,
    },
}

impl std::fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: only the kind is shown.
        match self {
            EnvValue::Text(_) => f.write_str("Text(<redacted>)"),
            EnvValue::File { file } => write!(f, "File({})", file.display()),
        }
    }
}

// === impl EnvValue ===

impl EnvValue {
    /// The value, with references resolved; `key` and `server` name it in
    /// errors.
    pub fn resolve(&self, key: &str, server: &str) -> Result<String> {
        let failed =
            |reason: String| BridgeError::Config(format!("server {server:?}: env {key}: {reason}"));
        match self {
            EnvValue::File { file } => std::fs::read_to_string(file)
                .map(|mut text| {
                    if text.ends_with('\n') {
                        text.pop();
                    }
                    text
                })
                .map_err(|error| failed(format!("cannot read {}: {error}", file.display()))),
            EnvValue::Text(text) => expand(text).map_err(failed),
        }
    }
}

/// `${VAR}` and `${env:VAR}` replaced by the bridge's variables.
fn expand(text: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unclosed ${ in the value".into());
        };
        let name = after[..end].strip_prefix("env:").unwrap_or(&after[..end]);
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => return Err(format!("references ${{{name}}}, which is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The whole environment of a program: allow-listed variables of ours plus
/// the configured ones, resolved.
pub fn child_env(
    configured: &BTreeMap<String, EnvValue>,
    server: &str,
) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = ALLOWED
        .iter()
        .filter_map(|key| std::env::var(key).ok().map(|value| ((*key).to_owned(), value)))
        .collect();
    for (key, value) in configured {
        let value = value.resolve(key, server)?;
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value));
    }
    Ok(env)
}

/// Whether `program` names an executable file: a path (relative ones from
/// `cwd`), or a name found in one of `path`'s directories.
pub fn program_exists(program: &str, cwd: Option<&std::path::Path>, path: Option<&str>) -> bool {
    let executable = |candidate: &std::path::Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        candidate.is_file()
    };
    if program.contains('/') {
        let candidate = std::path::Path::new(program);
        return match cwd {
            Some(cwd) if candidate.is_relative() => executable(&cwd.join(candidate)),
            _ => executable(candidate),
        };
    }
    path.unwrap_or_default()
        .split(':')
        .filter(|dir| !dir.is_empty())
        .any(|dir| executable(&std::path::Path::new(dir).join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_references_and_names_a_missing_one() {
        assert_eq!(expand("plain"), Ok("plain".into()));
        let home = std::env::var("PATH").unwrap_or_default();
        assert_eq!(expand("a${PATH}b"), Ok(format!("a{home}b")));
        assert_eq!(expand("${env:PATH}"), Ok(home));
        let missing = expand("${SWITCHBOARD_SURELY_UNSET_VARIABLE}").unwrap_err();
        assert!(missing.contains("SWITCHBOARD_SURELY_UNSET_VARIABLE"), "{missing}");
        assert!(expand("${OPEN").is_err());
    }

    #[test]
    fn reads_secrets_from_files_without_showing_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let value = EnvValue::File { file: path };
        assert_eq!(value.resolve("TOKEN", "files").unwrap(), "s3cret");
        assert!(!format!("{:?}", EnvValue::Text("s3cret".into())).contains("s3cret"));
    }

    #[test]
    fn finds_programs_on_the_path_or_by_path() {
        let path = std::env::var("PATH").ok();
        assert!(program_exists("sh", None, path.as_deref()));
        assert!(!program_exists("switchboard-no-such-program", None, path.as_deref()));
        assert!(program_exists("/bin/sh", None, None));
        assert!(!program_exists("sh", None, Some("/nonexistent")));
        assert!(!program_exists("sh", Some(std::path::Path::new("/bin")), Some("/nonexistent")));
        assert!(program_exists("./sh", Some(std::path::Path::new("/bin")), None));
    }

    #[test]
    fn passes_only_allowed_variables_and_configured_ones() {
        let configured = BTreeMap::from([("GREETING".to_owned(), EnvValue::Text("hello".into()))]);
        let env = child_env(&configured, "x").unwrap();
        assert!(env.iter().all(|(k, _)| ALLOWED.contains(&k.as_str()) || k == "GREETING"));
        assert!(env.contains(&("GREETING".into(), "hello".into())));
    }
}
