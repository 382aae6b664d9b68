//! The first admin token, written to a file only the registry's user can
//! read.
//!
//! Consul's `acl bootstrap` and etcd's root user solve the same chicken and
//! egg: someone must hold the first admin credential before any token API
//! can be used. We follow Consul in issuing it once per store — on the
//! first start with auth on, when the store holds no token at all — and
//! hand it over through a mode-0600 file instead of a console line: the
//! path is logged, the secret never is. The file is written (and synced)
//! before the token is stored, so a crash in between leaves a store with
//! no token, which bootstraps again on the next start and rewrites the file.
//! Once any token exists nothing is ever bootstrapped again: a lost admin
//! secret is recovered by an admin revoking and re-issuing, or by starting
//! from an empty token keyspace.

use std::io::Write as _;
use std::path::Path;

use crate::error::{RegistryError, RegistryResult};

/// Writes `secret` to `path` with mode 0600 (replacing the file
/// atomically: a temporary file in the same directory, synced, renamed).
pub fn write_secret_file(path: &Path, secret: &str) -> RegistryResult<()> {
    let failed = |error: std::io::Error| {
        RegistryError::invalid(
            "bootstrap_token_file",
            format!("cannot write {}: {error}", path.display()),
        )
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(failed)?;
    #[cfg(unix)]
    {
        // `mode` applies only when the file is created: tighten one left
        // behind by an earlier attempt too.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    }
    file.write_all(secret.as_bytes()).map_err(failed)?;
    file.write_all(b"\n").map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)?;
    Ok(())
}
