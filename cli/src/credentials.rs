//! Registry credentials on the command line: the token a command presents
//! (`--token`, `--token-file`, `SWITCHBOARD_TOKEN`) and the registry's own
//! auth settings (`--auth`, `--bootstrap-token-file`, `--no-reflection`).

use std::path::{Path, PathBuf};

use clap::Args;
use switchboard_client::Bearer;

use crate::settings::ConfigError;

/// The token a command sends to the registry.
#[derive(Debug, Clone, Args, Default)]
pub struct TokenArgs {
    /// Registry token (for a registry started with --auth). Prefer --token-file or the
    /// environment: a flag shows in the process list.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the registry token (e.g. the bootstrap `admin.token`).
    #[arg(long, env = "SWITCHBOARD_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
}

/// `switchboard registry` and `up`: authentication of every call.
#[derive(Debug, Clone, Args, Default)]
pub struct AuthArgs {
    /// Authenticate every call (bearer tokens or client certificates) and check roles.
    #[arg(long, env = "SWITCHBOARD_AUTH")]
    pub auth: bool,
    /// Where the first admin token's secret is written (mode 0600) on the first start with
    /// --auth [default: <data-dir>/admin.token].
    #[arg(long, env = "SWITCHBOARD_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<PathBuf>,
    /// Do not serve gRPC reflection (served to everyone by default, like grpc.health.v1).
    #[arg(long, env = "SWITCHBOARD_NO_REFLECTION")]
    pub no_reflection: bool,
}

// === impl TokenArgs ===

impl TokenArgs {
    /// The token to send: `--token`, else the file's content, else none.
    pub fn secret(&self) -> Result<Option<String>, ConfigError> {
        match (&self.token, &self.token_file) {
            (Some(token), _) => Ok(Some(token.clone())),
            (None, Some(path)) => read_token_file(path).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// [`secret`](Self::secret), ready to send.
    pub fn bearer(&self) -> Result<Bearer, ConfigError> {
        bearer(self.secret()?.as_deref())
    }
}

/// `token` (or none) ready to send.
pub fn bearer(token: Option<&str>) -> Result<Bearer, ConfigError> {
    Bearer::new(token).map_err(|e| ConfigError(format!("token: {e}")))
}

/// A token file's content, trimmed.
pub fn read_token_file(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("token_file: cannot read {}: {e}", path.display())))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ConfigError(format!("token_file: {} is empty", path.display())));
    }
    Ok(token.to_owned())
}
