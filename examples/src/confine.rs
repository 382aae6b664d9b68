//! Confinement of caller-given paths to one base directory.
//!
//! The rules, in the order they are checked:
//! 1. before the file system is touched, the path as text: no NUL byte, at
//!    most [`MAX_PATH_BYTES`] bytes, no component over [`MAX_NAME_BYTES`],
//!    not absolute, no `..` component (`.` components are dropped);
//! 2. the deepest ancestor that exists is canonicalised (every symbolic link
//!    in it resolved) and must still lie under the canonical base directory,
//!    so a link leading out is refused however it is reached, and a link
//!    loop is refused as one;
//! 3. the first component that does not exist must not be a dangling
//!    symbolic link (writing through one could create a file outside).
//!
//! Between this check and the use of the path, someone with write access
//! inside the base directory could replace a directory on the path with a
//! symbolic link. So the path is checked again through the handle once it
//! is open ([`Confinement::verify_handle`]: where `/proc/self/fd` says the
//! open file lies), files are opened with `O_NOFOLLOW`, and directories are
//! listed through the verified handle. What remains: a write renames its
//! verified temporary file by path, and `file_info` reads metadata by path;
//! a directory moved out of the base and replaced by a link to its new
//! place in that instant would redirect them. Closing that needs
//! `openat2(RESOLVE_BENEATH)` on every access; until then the base
//! directory must not be writable by anyone less trusted than the agent's
//! callers.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::error::{Result, ToolError, shortened};

/// Longest path accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest component accepted, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// A canonical base directory that caller-given paths are confined to.
#[derive(Debug, Clone)]
pub struct Confinement {
    base: PathBuf,
}

// === impl Confinement ===

impl Confinement {
    /// Confinement to `base`, which must be an existing directory.
    pub fn new(base: &Path) -> Result<Self> {
        let canonical = std::fs::canonicalize(base).map_err(|error| {
            ToolError::config(format!("base directory {:?}: {error}", base.display().to_string()))
        })?;
        if !canonical.is_dir() {
            return Err(ToolError::config(format!(
                "base directory {:?}: not a directory",
                base.display().to_string()
            )));
        }
        Ok(Self { base: canonical })
    }

    /// The canonical base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `path` (relative to the base; empty or `.` is the base itself) as an
    /// absolute path under the base with no symbolic link in its existing
    /// part, or the rule it breaks.
    pub fn resolve(&self, path: &str) -> Result<PathBuf> {
        let parts = components(path)?;
        for depth in (0..=parts.len()).rev() {
            let prefix: PathBuf = parts[..depth].iter().fold(self.base.clone(), |p, c| p.join(c));
            let real = match std::fs::canonicalize(&prefix) {
                Ok(real) => real,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(ToolError::io(path, error)),
            };
            if !real.starts_with(&self.base) {
                return Err(ToolError::Escapes { path: path.to_owned() });
            }
            if let Some(missing) = parts.get(depth) {
                // It was not found by canonicalize, yet has an entry: a
                // link to nowhere, whose target may lie outside.
                if std::fs::symlink_metadata(real.join(missing)).is_ok() {
                    return Err(ToolError::Symlink {
                        path: path.to_owned(),
                        why: "is a dangling symbolic link",
                    });
                }
            }
            return Ok(parts[depth..].iter().fold(real, |p, c| p.join(c)));
        }
        // Even the base itself is gone.
        Err(ToolError::NotFound { path: path.to_owned() })
    }

    /// Refuses an opened `file` (opened as `path`) that does not lie under
    /// the base: the check of a handle, which a swap of any directory on
    /// the path between [`Confinement::resolve`] and the open cannot fool.
    /// Where `/proc` is not mounted the check before the open stands alone.
    pub fn verify_handle(&self, path: &str, file: &std::fs::File) -> Result<()> {
        match std::fs::read_link(handle_path(file)) {
            Ok(real) if !real.starts_with(&self.base) => {
                Err(ToolError::Escapes { path: path.to_owned() })
            }
            _ => Ok(()),
        }
    }

    /// `resolved` relative to the base, for answers (`.` for the base).
    pub fn relative(&self, resolved: &Path) -> String {
        match resolved.strip_prefix(&self.base) {
            Ok(rest) if rest.as_os_str().is_empty() => ".".to_owned(),
            Ok(rest) => rest.display().to_string(),
            Err(_) => resolved.display().to_string(),
        }
    }
}

/// A path naming what the opened `file` is (`/proc/self/fd/N`), for
/// calls that take a path but must act on exactly that handle.
pub fn handle_path(file: &std::fs::File) -> PathBuf {
    use std::os::fd::AsRawFd as _;
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The normal components of `path`, or the textual rule it breaks.
pub fn components(path: &str) -> Result<Vec<&OsStr>> {
    let refused = || path.to_owned();
    if path.contains('\0') {
        return Err(ToolError::NulByte { path: path.replace('\0', "\\0") });
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(ToolError::PathTooLong {
            path: shortened(path),
            len: path.len(),
            max: MAX_PATH_BYTES,
        });
    }
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) if name.len() > MAX_NAME_BYTES => {
                return Err(ToolError::NameTooLong {
                    path: shortened(path),
                    len: name.len(),
                    max: MAX_NAME_BYTES,
                });
            }
            Component::Normal(name) => parts.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(ToolError::ParentComponent { path: refused() }),
            Component::RootDir | Component::Prefix(_) => {
                return Err(ToolError::Absolute { path: refused() });
            }
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
