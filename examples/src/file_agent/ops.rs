//! The file agent's operations on the file system, blocking (the tools run
//! them on tokio's blocking pool).
//!
//! Reads open the checked path with `O_NOFOLLOW`, so a final component
//! swapped for a link after the check fails instead of being followed,
//! verify the opened handle still lies under the base, and enforce the size
//! limit on the bytes actually read, not on what the metadata claimed a
//! moment earlier. Writes are atomic: a temporary file in
//! the same (checked) directory, fsync, rename over the target, fsync of the
//! directory; a reader sees the old content or the new, never half, and a
//! rename replaces a link swapped in at the target instead of following it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::FileAgentConfig;
use crate::confine::Confinement;
use crate::error::{Result, ToolError};

/// Most entries one `list_directory` answer holds.
pub const MAX_ENTRIES: usize = 1000;

/// A file's content.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FileContent {
    /// The file, relative to the base directory.
    pub path: String,
    /// Its text.
    pub content: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a write did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Written {
    /// The file, relative to the base directory.
    pub path: String,
    /// Bytes written.
    pub bytes: u64,
    /// Whether the file is new (false: it replaced an existing file).
    pub created: bool,
}

/// A directory's entries.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Listing {
    /// The directory, relative to the base directory.
    pub path: String,
    /// Its entries, sorted by name.
    pub entries: Vec<Entry>,
    /// Whether entries were left out (more than the answer holds).
    pub truncated: bool,
}

/// One directory entry; links are reported, never followed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: &'static str,
    /// Size in bytes (of the entry itself for a link).
    pub size: u64,
}

/// Metadata of one path.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Info {
    /// The path, relative to the base directory, links inside resolved.
    pub path: String,
    /// `file`, `directory`, `symlink` or `other`.
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (RFC 3339, UTC), when the file system keeps it.
    pub modified: Option<String>,
    /// Whether its permissions forbid writing.
    pub read_only: bool,
    /// Whether the agent would let `read_file` read it (kind, size and
    /// extension within the limits).
    pub readable: bool,
}

/// Reads the text file at `path`.
pub fn read(
    config: &FileAgentConfig,
    confinement: &Confinement,
    path: &str,
) -> Result<FileContent> {
    let resolved = confinement.resolve(path)?;
    check_extension(config, path, &resolved)?;
    let file = open_no_follow(path, &resolved)?;
    confinement.verify_handle(path, &file)?;
    let metadata = file.metadata().map_err(|e| ToolError::io(path, e))?;
    if !metadata.is_file() {
        return Err(ToolError::WrongKind { path: path.to_owned(), why: not_a_file(&metadata) });
    }
    let max = config.max_file_bytes;
    if metadata.len() > max {
        return Err(ToolError::TooLarge { path: path.to_owned(), max });
    }
    // The file may have grown since the metadata was read: the limit holds
    // for what is actually read.
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| ToolError::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(ToolError::TooLarge { path: path.to_owned(), max });
    }
    let len = bytes.len() as u64;
    let content =
        String::from_utf8(bytes).map_err(|_| ToolError::NotText { path: path.to_owned() })?;
    Ok(FileContent { path: confinement.relative(&resolved), content, bytes: len })
}

/// Writes `content` to `path` atomically, creating or replacing the file.
pub fn write(
    config: &FileAgentConfig,
    confinement: &Confinement,
    path: &str,
    content: &str,
) -> Result<Written> {
    if config.read_only {
        return Err(ToolError::ReadOnly { path: path.to_owned() });
    }
    let max = config.max_file_bytes;
    if content.len() as u64 > max {
        return Err(ToolError::TooLarge { path: path.to_owned(), max });
    }
    let resolved = confinement.resolve(path)?;
    let (Some(parent), true) = (resolved.parent(), resolved != confinement.base()) else {
        return Err(ToolError::WrongKind { path: path.to_owned(), why: "is the base directory" });
    };
    check_extension(config, path, &resolved)?;
    if !parent.is_dir() {
        return Err(ToolError::WrongKind {
            path: path.to_owned(),
            why: "its parent directory does not exist",
        });
    }
    let existing = match std::fs::symlink_metadata(&resolved) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(ToolError::WrongKind { path: path.to_owned(), why: "is a directory" });
        }
        Ok(metadata) => Some(metadata.permissions()),
        Err(_) => None,
    };
    let temporary = parent.join(temporary_name());
    let written = write_temporary(confinement, path, &temporary, content, existing.as_ref())
        .and_then(|()| {
            std::fs::rename(&temporary, &resolved)
                // The rename is durable only once the directory is.
                .and_then(|()| File::open(parent)?.sync_all())
                .map_err(|e| ToolError::io(path, e))
        });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(Written {
        path: confinement.relative(&resolved),
        bytes: content.len() as u64,
        created: existing.is_none(),
    })
}

/// Lists the directory at `path`.
pub fn list(confinement: &Confinement, path: &str) -> Result<Listing> {
    let resolved = confinement.resolve(path)?;
    let metadata = std::fs::symlink_metadata(&resolved).map_err(|e| ToolError::io(path, e))?;
    if !metadata.is_dir() {
        return Err(ToolError::WrongKind { path: path.to_owned(), why: "is not a directory" });
    }
    // Listed through the opened, verified handle: a directory swapped for
    // a link since the check is refused, not followed.
    let directory = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(&resolved)
        .map_err(|e| ToolError::io(path, e))?;
    confinement.verify_handle(path, &directory)?;
    let handle = crate::confine::handle_path(&directory);
    let listed = std::fs::read_dir(&handle).or_else(|_| std::fs::read_dir(&resolved));
    let mut entries = Vec::new();
    for entry in listed.map_err(|e| ToolError::io(path, e))? {
        let entry = entry.map_err(|e| ToolError::io(path, e))?;
        // `DirEntry::metadata` does not follow links.
        let Ok(metadata) = entry.metadata() else { continue };
        entries.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind: kind(&metadata),
            size: metadata.len(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let truncated = entries.len() > MAX_ENTRIES;
    entries.truncate(MAX_ENTRIES);
    Ok(Listing { path: confinement.relative(&resolved), entries, truncated })
}

/// Metadata of `path`.
pub fn info(config: &FileAgentConfig, confinement: &Confinement, path: &str) -> Result<Info> {
    let resolved = confinement.resolve(path)?;
    let metadata = std::fs::symlink_metadata(&resolved).map_err(|e| ToolError::io(path, e))?;
    let modified = metadata
        .modified()
        .ok()
        .map(|time| chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339());
    let readable = metadata.is_file()
        && metadata.len() <= config.max_file_bytes
        && check_extension(config, path, &resolved).is_ok();
    Ok(Info {
        path: confinement.relative(&resolved),
        kind: kind(&metadata),
        size: metadata.len(),
        modified,
        read_only: metadata.permissions().readonly(),
        readable,
    })
}

/// Refuses `resolved` (the file actually used: a link inside the base
/// counts by its target's name) unless its extension is allowed.
fn check_extension(config: &FileAgentConfig, path: &str, resolved: &Path) -> Result<()> {
    if config.allow_ext.is_empty() {
        return Ok(());
    }
    let extension =
        resolved.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    if config.allow_ext.iter().any(|allowed| allowed.eq_ignore_ascii_case(&extension)) {
        return Ok(());
    }
    Err(ToolError::Extension {
        path: path.to_owned(),
        extension,
        allowed: config.allow_ext.join(","),
    })
}

/// Opens `resolved` for reading without following a final symbolic link,
/// and without blocking on a FIFO (it is refused as not a regular file).
pub(super) fn open_no_follow(path: &str, resolved: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    options.open(resolved).map_err(|error| {
        if error.raw_os_error() == Some(libc::ELOOP) {
            // Resolution left no link here: one was swapped in since.
            return ToolError::Symlink {
                path: path.to_owned(),
                why: "became a symbolic link after it was checked",
            };
        }
        ToolError::io(path, error)
    })
}

/// Creates, verifies, fills and syncs the temporary file, with the
/// permissions of the file it replaces.
fn write_temporary(
    confinement: &Confinement,
    path: &str,
    temporary: &Path,
    content: &str,
    permissions: Option<&std::fs::Permissions>,
) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(temporary)
        .map_err(|e| ToolError::io(path, e))?;
    confinement.verify_handle(path, &file)?;
    let filled = permissions
        .map_or(Ok(()), |p| file.set_permissions(std::fs::Permissions::from_mode(p.mode())))
        .and_then(|()| file.write_all(content.as_bytes()))
        .and_then(|()| file.sync_all());
    filled.map_err(|e| ToolError::io(path, e))
}

/// A name no other write (of this process or another) uses: the process id
/// and a counter; `create_new` refuses a leftover of a crashed process.
fn temporary_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".file-agent-{}-{n}.tmp", std::process::id())
}

fn kind(metadata: &std::fs::Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "file"
    } else {
        "other"
    }
}

fn not_a_file(metadata: &std::fs::Metadata) -> &'static str {
    if metadata.is_dir() { "is a directory, not a file" } else { "is not a regular file" }
}
