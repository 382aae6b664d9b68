//! The file agent's settings: flags, each with an environment variable.

use std::path::PathBuf;

use crate::error::ToolError;

/// Default size limit of a read or written file: 1 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Settings of the file agent.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "file-agent", version, about = "Switchboard's reference file agent")]
pub struct FileAgentConfig {
    /// The directory served; nothing outside it can be read, listed or written.
    #[arg(long, env = "SWITCHBOARD_FILE_BASE_DIR")]
    pub base_dir: PathBuf,
    /// Refuse every write.
    #[arg(long, env = "SWITCHBOARD_FILE_READ_ONLY")]
    pub read_only: bool,
    /// Largest file read or written, in bytes.
    #[arg(long, env = "SWITCHBOARD_FILE_MAX_BYTES", default_value_t = DEFAULT_MAX_FILE_BYTES)]
    pub max_file_bytes: u64,
    /// Extensions files may have to be read or written (comma-separated,
    /// e.g. `txt,md`); empty allows any.
    #[arg(long, env = "SWITCHBOARD_FILE_ALLOW_EXT", value_delimiter = ',')]
    pub allow_ext: Vec<String>,
}

// === impl FileAgentConfig ===

impl FileAgentConfig {
    /// Defaults for serving `base_dir`: writable, 1 MiB files, any extension.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_dir: base_dir.into(),
            read_only: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            allow_ext: Vec::new(),
        }
    }

    /// The settings with extensions normalised (no dot, lowercase), or
    /// the first one that is wrong.
    pub fn validated(mut self) -> Result<Self, ToolError> {
        if self.max_file_bytes == 0 {
            return Err(ToolError::config("max file bytes (--max-file-bytes): must be above 0"));
        }
        let mut extensions = Vec::new();
        for extension in &self.allow_ext {
            let normal = extension.trim().trim_start_matches('.').to_lowercase();
            if normal.is_empty() || normal.contains(['/', '\0', '.']) {
                return Err(ToolError::config(format!(
                    "allowed extension (--allow-ext) {extension:?}: not a file extension"
                )));
            }
            extensions.push(normal);
        }
        self.allow_ext = extensions;
        Ok(self)
    }
}
