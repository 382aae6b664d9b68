//! Why a reference agent refused or failed a tool call.
//!
//! A refusal reaches the caller as a tool error (`isError: true`) whose text
//! is this message, so each one names the rule and, where an operator can
//! change it, the flag that sets the limit: a model or a person reading the
//! error knows whether to fix the request or the agent's settings.

/// A refused or failed call of the file agent or the command agent.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The path contains a NUL byte.
    #[error("path {path:?}: refused: contains a NUL byte")]
    NulByte {
        /// The path as given.
        path: String,
    },
    /// The whole path is longer than the limit.
    #[error("path {path:?}: refused: {len} bytes long, over the {max}-byte path limit")]
    PathTooLong {
        /// The path as given (cut to its first 64 characters).
        path: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// One component of the path is longer than a file name may be.
    #[error(
        "path {path:?}: refused: a component is {len} bytes long, over the {max}-byte name limit"
    )]
    NameTooLong {
        /// The path as given (cut to its first 64 characters).
        path: String,
        /// The component's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The path is absolute.
    #[error(
        "path {path:?}: refused: absolute paths are not allowed, give a path relative to the base directory"
    )]
    Absolute {
        /// The path as given.
        path: String,
    },
    /// The path has a `..` component.
    #[error("path {path:?}: refused: \"..\" components are not allowed")]
    ParentComponent {
        /// The path as given.
        path: String,
    },
    /// The path resolves (through a symbolic link) outside the base directory.
    #[error("path {path:?}: refused: resolves outside the base directory")]
    Escapes {
        /// The path as given.
        path: String,
    },
    /// The path is, or runs through, a symbolic link that cannot be followed
    /// safely: a loop, or a link where a plain file was required.
    #[error("path {path:?}: refused: {why}")]
    Symlink {
        /// The path as given.
        path: String,
        /// What is wrong with the link.
        why: &'static str,
    },
    /// The file is larger than the size limit.
    #[error("file {path:?}: refused: larger than the {max}-byte limit (--max-file-bytes)")]
    TooLarge {
        /// The path as given.
        path: String,
        /// The limit.
        max: u64,
    },
    /// The file's extension is not on the allow-list.
    #[error(
        "file {path:?}: refused: extension {extension:?} is not allowed (--allow-ext: {allowed})"
    )]
    Extension {
        /// The path as given.
        path: String,
        /// The extension found (empty when there is none).
        extension: String,
        /// The allowed extensions, comma-separated.
        allowed: String,
    },
    /// A write while the agent is read-only.
    #[error("file {path:?}: refused: the agent is read-only (--read-only)")]
    ReadOnly {
        /// The path as given.
        path: String,
    },
    /// The path names nothing.
    #[error("path {path:?}: not found")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// The path names the wrong kind of entry (a directory to read, a file
    /// to list).
    #[error("path {path:?}: {why}")]
    WrongKind {
        /// The path as given.
        path: String,
        /// What it is and what was needed.
        why: &'static str,
    },
    /// The file is not UTF-8 text.
    #[error("file {path:?}: not UTF-8 text; only text files can be read")]
    NotText {
        /// The path as given.
        path: String,
    },
    /// The program is not on the allow-list.
    #[error("program {program:?}: refused: not on the allow-list (allowed: {allowed})")]
    ProgramNotAllowed {
        /// The program as given.
        program: String,
        /// The allowed programs, comma-separated.
        allowed: String,
    },
    /// An argument matches none of the program's patterns.
    #[error(
        "program {program:?}: argument {index} {arg:?}: refused: matches none of the allowed patterns"
    )]
    ArgumentNotAllowed {
        /// The program's configured path.
        program: String,
        /// The argument's position (0 is the first argument).
        index: usize,
        /// The argument.
        arg: String,
    },
    /// An argument holds a shell metacharacter.
    #[error(
        "program {program:?}: argument {index} {arg:?}: refused: contains the shell metacharacter {ch:?}"
    )]
    ShellMetacharacter {
        /// The program's configured path.
        program: String,
        /// The argument's position.
        index: usize,
        /// The argument.
        arg: String,
        /// The first metacharacter found.
        ch: char,
    },
    /// More arguments than the program allows.
    #[error("program {program:?}: refused: {count} arguments, over the limit of {max}")]
    TooManyArguments {
        /// The program's configured path.
        program: String,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// As many runs as allowed are in progress.
    #[error(
        "program {program:?}: refused: busy, the limit of {max} runs at once is reached (--max-concurrent)"
    )]
    Busy {
        /// The program as given.
        program: String,
        /// The limit.
        max: usize,
    },
    /// The program could not be started.
    #[error("program {program:?}: could not start: {source}")]
    Spawn {
        /// The program's configured path.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The program ran past its timeout and was killed.
    #[error(
        "program {program:?}: killed after the {seconds}s timeout (--timeout); the output so far is in the result"
    )]
    TimedOut {
        /// The program's configured path.
        program: String,
        /// The timeout in seconds (fractional).
        seconds: f64,
    },
    /// Any other failure of the file system.
    #[error("path {path:?}: {source}")]
    Io {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A setting of the agent is wrong (at start-up, never during a call).
    #[error("{0}")]
    Config(String),
}

/// Result of the reference agents' operations.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;

// === impl ToolError ===

impl ToolError {
    /// A failure of the file system at `path` (as given), mapped to the
    /// refusal it amounts to where there is one.
    pub(crate) fn io(path: &str, source: std::io::Error) -> Self {
        let path = path.to_owned();
        match source.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound { path },
            _ if source.raw_os_error() == Some(libc::ELOOP) => {
                Self::Symlink { path, why: "too many levels of symbolic links (a link loop)" }
            }
            _ => Self::Io { path, source },
        }
    }

    /// A setting error naming `what`.
    pub(crate) fn config(what: impl std::fmt::Display) -> Self {
        Self::Config(what.to_string())
    }
}

/// The first 64 characters of `path`, for messages about over-long paths.
pub(crate) fn shortened(path: &str) -> String {
    let mut short: String = path.chars().take(64).collect();
    if short.len() < path.len() {
        short.push('…');
    }
    short
}
