//! `file-agent`: the reference file agent. Tools `read_file`, `write_file`,
//! `list_directory` and `file_info`, confined to one base directory.
//!
//! Every path is relative to the base directory and checked before use
//! (no NUL, no over-long names, not absolute, no `..`, no symbolic link
//! leading out or looping); reads and writes are bounded by a size limit and
//! an optional extension allow-list; `--read-only` refuses every write.
//! Each refusal is a tool error naming the rule. The annotations tell a
//! client what a call can do: the three readers are read-only, `write_file`
//! may overwrite (destructive) and is idempotent.

mod config;
mod ops;

use std::sync::Arc;

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{schemars, tool, tool_router};
use switchboard_agent::{Agent, AgentError, RunningAgent};

pub use config::{DEFAULT_MAX_FILE_BYTES, FileAgentConfig};
pub use ops::{Entry, FileContent, Info, Listing, MAX_ENTRIES, Written};

use crate::confine::Confinement;
use crate::error::ToolError;

/// Arguments naming one path.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct PathArgs {
    /// Path relative to the base directory.
    pub path: String,
}

/// Arguments of `list_directory`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct ListArgs {
    /// Directory relative to the base directory (default: the base itself).
    #[serde(default)]
    pub path: Option<String>,
}

/// Arguments of `write_file`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    /// File path relative to the base directory; its directory must exist.
    pub path: String,
    /// The complete new text of the file.
    pub content: String,
}

/// The file agent: its settings and the confinement they imply.
#[derive(Clone)]
pub struct FileAgent {
    shared: Arc<Shared>,
}

struct Shared {
    config: FileAgentConfig,
    confinement: Confinement,
}

/// Starts the file agent as `agent` with `config`, and registers it.
pub async fn start(agent: Agent, config: FileAgentConfig) -> Result<RunningAgent, AgentError> {
    let files = FileAgent::new(config).map_err(|e| AgentError::Config(e.to_string()))?;
    agent
        .tool("read_file", |t| t.capability("files.read"))
        .tool("list_directory", |t| t.capability("files.read"))
        .tool("file_info", |t| t.capability("files.read"))
        .tool("write_file", |t| t.capability("files.write"))
        .start(files, FileAgent::tool_router())
        .await
}

// === impl FileAgent ===

impl FileAgent {
    /// The agent for `config`, once its settings are valid.
    pub fn new(config: FileAgentConfig) -> Result<Self, ToolError> {
        let config = config.validated()?;
        let confinement = Confinement::new(&config.base_dir)?;
        Ok(Self { shared: Arc::new(Shared { config, confinement }) })
    }

    /// Runs `op` on the blocking pool (file system calls block).
    async fn blocking<T, F>(&self, op: F) -> Result<Json<T>, String>
    where
        T: Send + 'static,
        F: FnOnce(&FileAgentConfig, &Confinement) -> Result<T, ToolError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        match tokio::task::spawn_blocking(move || op(&shared.config, &shared.confinement)).await {
            Ok(Ok(value)) => Ok(Json(value)),
            Ok(Err(error)) => {
                tracing::info!(%error, "file agent refused a call");
                Err(error.to_string())
            }
            Err(error) => Err(format!("file operation failed: {error}")),
        }
    }
}

#[tool_router(server_handler)]
impl FileAgent {
    #[tool(
        description = "Read a UTF-8 text file under the agent's base directory",
        annotations(read_only_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn read_file(
        &self,
        Parameters(args): Parameters<PathArgs>,
    ) -> Result<Json<FileContent>, String> {
        self.blocking(move |config, confinement| ops::read(config, confinement, &args.path)).await
    }

    #[tool(
        description = "Create or replace a text file under the agent's base directory (atomic)",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn write_file(
        &self,
        Parameters(args): Parameters<WriteArgs>,
    ) -> Result<Json<Written>, String> {
        self.blocking(move |config, confinement| {
            ops::write(config, confinement, &args.path, &args.content)
        })
        .await
    }

    #[tool(
        description = "List a directory under the agent's base directory (links are shown, not followed)",
        annotations(read_only_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn list_directory(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<Json<Listing>, String> {
        let path = args.path.unwrap_or_else(|| ".".to_owned());
        self.blocking(move |_, confinement| ops::list(confinement, &path)).await
    }

    #[tool(
        description = "Kind, size and modification time of a path under the agent's base directory",
        annotations(read_only_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn file_info(
        &self,
        Parameters(args): Parameters<PathArgs>,
    ) -> Result<Json<Info>, String> {
        self.blocking(move |config, confinement| ops::info(config, confinement, &args.path)).await
    }
}

#[cfg(test)]
mod tests;
