//! `command-agent`: the reference command agent. Tool `run_command` runs an
//! allow-listed program with arguments matching its patterns; tool
//! `allowed_commands` tells a client what it may run.
//!
//! No shell is involved: the program is executed directly with the
//! arguments as given, so quoting, globbing and `;` mean nothing; shell
//! metacharacters are refused anyway (see [`policy`]). Each run gets a
//! cleared environment plus the allow-listed variables, a working directory
//! confined under `--work-dir`, a timeout after which its whole process
//! group is killed, and stdout/stderr each capped (`truncated: true` says
//! so). A refusal, or a run killed by the timeout, is a tool error naming
//! the rule; a program that ran and exited non-zero is a result, with its
//! exit code.

mod config;
pub mod policy;
mod run;

use std::ffi::OsString;
use std::sync::Arc;

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{schemars, tool, tool_router};
use switchboard_agent::{Agent, AgentError, RunningAgent};

pub use config::{
    CommandAgentConfig, CommandAgentFlags, DEFAULT_MAX_ARGS, DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT,
};
pub use policy::{Policy, Program, SHELL_METACHARACTERS};
pub use run::RunOutput;

use crate::confine::Confinement;
use crate::error::ToolError;
use run::Runner;

/// Arguments of `run_command`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct RunArgs {
    /// The program: its absolute path, or its file name when that is unique
    /// on the allow-list.
    pub program: String,
    /// Its arguments, each passed as is (no shell).
    #[serde(default)]
    pub args: Vec<String>,
    /// Working directory relative to the agent's work directory (default:
    /// the work directory itself).
    #[serde(default)]
    pub cwd: Option<String>,
}

/// What a client may run.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AllowList {
    /// The allowed programs.
    pub programs: Vec<AllowedProgram>,
    /// Longest run, in seconds.
    pub timeout_seconds: f64,
    /// Most bytes kept of each of stdout and stderr.
    pub max_output_bytes: usize,
    /// Most arguments of one run.
    pub max_args: usize,
    /// Characters no argument may contain.
    pub refused_characters: String,
}

/// One allowed program.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct AllowedProgram {
    /// Its absolute path.
    pub path: String,
    /// Patterns an argument must match one of, in full; none: no arguments.
    pub args: Vec<String>,
}

/// The command agent.
#[derive(Clone)]
pub struct CommandAgent {
    shared: Arc<Shared>,
}

struct Shared {
    policy: Policy,
    runner: Runner,
    work_dir: Confinement,
    /// One permit per run allowed at once.
    runs: Arc<tokio::sync::Semaphore>,
    max_concurrent: usize,
}

/// Starts the command agent as `agent` with `config`, and registers it.
pub async fn start(agent: Agent, config: CommandAgentConfig) -> Result<RunningAgent, AgentError> {
    let commands = CommandAgent::new(config).map_err(|e| AgentError::Config(e.to_string()))?;
    agent
        .tool("run_command", |t| t.capability("command.run"))
        .start(commands, CommandAgent::tool_router())
        .await
}

// === impl CommandAgent ===

impl CommandAgent {
    /// The agent for `config`, once its settings are valid. The allowed
    /// variables' values are read from this process's environment now.
    pub fn new(config: CommandAgentConfig) -> Result<Self, ToolError> {
        let policy = Policy::new(&config.programs, config.max_args)?;
        let work_dir = Confinement::new(&config.work_dir)
            .map_err(|error| ToolError::config(format!("work directory (--work-dir): {error}")))?;
        let env = config
            .env_allow
            .iter()
            .filter_map(|name| {
                let value = std::env::var_os(name)?;
                Some((OsString::from(name), value))
            })
            .collect();
        let runner =
            Runner { timeout: config.timeout, max_output_bytes: config.max_output_bytes, env };
        if config.max_concurrent == 0 {
            return Err(ToolError::config("most runs at once (--max-concurrent): must be above 0"));
        }
        let runs = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent));
        let max_concurrent = config.max_concurrent;
        Ok(Self { shared: Arc::new(Shared { policy, runner, work_dir, runs, max_concurrent }) })
    }

    async fn run(&self, args: RunArgs) -> Result<RunOutput, ToolError> {
        let shared = &self.shared;
        let program = shared.policy.check(&args.program, &args.args)?;
        let cwd = args.cwd.as_deref().unwrap_or(".");
        let work_dir = shared.work_dir.resolve(cwd)?;
        match std::fs::metadata(&work_dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(ToolError::WrongKind {
                    path: cwd.to_owned(),
                    why: "is not a directory",
                });
            }
            Err(error) => return Err(ToolError::io(cwd, error)),
        }
        // Refused rather than queued: a caller learns at once that the
        // agent is saturated, and nothing waits unbounded.
        let Ok(_permit) = Arc::clone(&shared.runs).try_acquire_owned() else {
            return Err(ToolError::Busy { program: args.program, max: shared.max_concurrent });
        };
        shared.runner.run(&program.path, &args.args, &work_dir).await
    }
}

#[tool_router(server_handler)]
impl CommandAgent {
    #[tool(
        description = "Run an allow-listed program (no shell) with arguments matching its patterns; see allowed_commands",
        annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn run_command(
        &self,
        Parameters(args): Parameters<RunArgs>,
    ) -> Result<Json<RunOutput>, CallToolResult> {
        match self.run(args).await {
            Ok(output) if output.timed_out => {
                let error = ToolError::TimedOut {
                    program: output.program.clone(),
                    seconds: self.shared.runner.timeout.as_secs_f64(),
                };
                tracing::info!(%error, "command agent killed a run");
                // The partial output travels with the error.
                let structured = serde_json::to_value(&output).unwrap_or_default();
                let mut result = CallToolResult::structured_error(structured);
                result.content.insert(0, ContentBlock::text(error.to_string()));
                Err(result)
            }
            Ok(output) => Ok(Json(output)),
            Err(error) => {
                tracing::info!(%error, "command agent refused a call");
                Err(CallToolResult::error(vec![ContentBlock::text(error.to_string())]))
            }
        }
    }

    #[tool(
        description = "The programs run_command may run, their argument patterns and the limits",
        annotations(read_only_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn allowed_commands(&self) -> Json<AllowList> {
        let shared = &self.shared;
        Json(AllowList {
            programs: shared
                .policy
                .programs()
                .iter()
                .map(|p| AllowedProgram {
                    path: p.path.display().to_string(),
                    args: p.patterns.clone(),
                })
                .collect(),
            timeout_seconds: shared.runner.timeout.as_secs_f64(),
            max_output_bytes: shared.runner.max_output_bytes,
            max_args: shared.policy.max_args(),
            refused_characters: SHELL_METACHARACTERS
                .iter()
                .collect::<String>()
                .escape_default()
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
