//! The command agent's settings: flags (each with an environment variable)
//! and an optional TOML allow-list file, turned into a checked
//! [`CommandAgentConfig`].

use std::path::PathBuf;
use std::time::Duration;

use super::policy::Program;
use crate::error::ToolError;

/// Default timeout of one run: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap of each of stdout and stderr: 64 KiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;
/// Default most arguments of one run.
pub const DEFAULT_MAX_ARGS: usize = 32;
/// Default most runs at once.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;

/// Flags of the `command-agent` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "command-agent", version, about = "Switchboard's reference command agent")]
pub struct CommandAgentFlags {
    /// A TOML allow-list: `[[program]]` tables with `path` (absolute) and
    /// `args` (regular expressions an argument must match one of, in full).
    #[arg(long, env = "SWITCHBOARD_COMMAND_ALLOW_FILE")]
    pub allow_file: Option<PathBuf>,
    /// An allowed program and one argument pattern, `PATH` or `PATH=REGEX`;
    /// repeat it for more programs or patterns.
    #[arg(long = "allow", value_name = "PATH[=REGEX]")]
    pub allow: Vec<String>,
    /// Longest run in seconds (fractions allowed); the process group is
    /// killed after it.
    #[arg(long, env = "SWITCHBOARD_COMMAND_TIMEOUT", default_value = "10")]
    pub timeout: f64,
    /// Most bytes kept of each of stdout and stderr.
    #[arg(long, env = "SWITCHBOARD_COMMAND_MAX_OUTPUT_BYTES", default_value_t = DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_output_bytes: usize,
    /// Most arguments of one run.
    #[arg(long, env = "SWITCHBOARD_COMMAND_MAX_ARGS", default_value_t = DEFAULT_MAX_ARGS)]
    pub max_args: usize,
    /// Most runs at once; a call beyond it is refused, not queued.
    #[arg(long, env = "SWITCHBOARD_COMMAND_MAX_CONCURRENT", default_value_t = DEFAULT_MAX_CONCURRENT)]
    pub max_concurrent: usize,
    /// Environment variables passed on from the agent's own environment
    /// (comma-separated names); programs see no other.
    #[arg(long, env = "SWITCHBOARD_COMMAND_ENV_ALLOW", value_delimiter = ',')]
    pub env_allow: Vec<String>,
    /// The directory programs run in; a call's `cwd` must lie under it.
    #[arg(long, env = "SWITCHBOARD_COMMAND_WORK_DIR", default_value = ".")]
    pub work_dir: PathBuf,
}

/// Settings of the command agent.
#[derive(Debug, Clone)]
pub struct CommandAgentConfig {
    /// The allowed programs.
    pub programs: Vec<Program>,
    /// Longest run.
    pub timeout: Duration,
    /// Most bytes kept of each of stdout and stderr.
    pub max_output_bytes: usize,
    /// Most arguments of one run.
    pub max_args: usize,
    /// Most runs at once.
    pub max_concurrent: usize,
    /// Names of the variables passed on from the agent's environment.
    pub env_allow: Vec<String>,
    /// The directory programs run in.
    pub work_dir: PathBuf,
}

/// The TOML allow-list file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    program: Vec<Program>,
}

// === impl CommandAgentFlags ===

impl CommandAgentFlags {
    /// The settings these flags give, or the first one that is wrong.
    pub fn config(self) -> Result<CommandAgentConfig, ToolError> {
        let mut programs = Vec::new();
        if let Some(file) = &self.allow_file {
            let shown = file.display().to_string();
            let text = std::fs::read_to_string(file)
                .map_err(|e| ToolError::config(format!("allow-list file {shown:?}: {e}")))?;
            let parsed: AllowFile = toml::from_str(&text)
                .map_err(|e| ToolError::config(format!("allow-list file {shown:?}: {e}")))?;
            programs.extend(parsed.program);
        }
        for entry in &self.allow {
            let (path, pattern) = match entry.split_once('=') {
                Some((path, pattern)) => (path, Some(pattern.to_owned())),
                None => (entry.as_str(), None),
            };
            programs.push(Program { path: path.into(), args: pattern.into_iter().collect() });
        }
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| {
                ToolError::config(format!(
                    "timeout (--timeout) {}: must be above 0 seconds",
                    self.timeout
                ))
            })?;
        Ok(CommandAgentConfig {
            programs,
            timeout,
            max_output_bytes: self.max_output_bytes,
            max_args: self.max_args,
            max_concurrent: self.max_concurrent,
            env_allow: self.env_allow,
            work_dir: self.work_dir,
        })
    }
}

// === impl CommandAgentConfig ===

impl CommandAgentConfig {
    /// Defaults for running `programs` in `work_dir`: 10 s timeout, 64 KiB
    /// of each output stream, 32 arguments, 4 runs at once, an empty
    /// environment.
    pub fn new(programs: Vec<Program>, work_dir: impl Into<PathBuf>) -> Self {
        Self {
            programs,
            timeout: DEFAULT_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_args: DEFAULT_MAX_ARGS,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            env_allow: Vec::new(),
            work_dir: work_dir.into(),
        }
    }
}
