//! Which store a test registry runs on. Every suite runs against the back
//! end named by `SWITCHBOARD_TEST_BACKEND` (read here and nowhere else), so
//! adding a back end means adding a variant, not editing the suites.

use std::path::Path;

use switchboard_registry::StoreSpec;

/// The environment variable that picks the back end for every suite.
pub const BACKEND_ENV: &str = "SWITCHBOARD_TEST_BACKEND";

/// A store back end for test registries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The embedded sled store in the registry's data directory.
    #[default]
    Sled,
}

// === impl Backend ===

impl Backend {
    /// The back end named by `SWITCHBOARD_TEST_BACKEND` (`sled` when unset).
    pub fn from_env() -> Self {
        match std::env::var(BACKEND_ENV) {
            Err(std::env::VarError::NotPresent) => Self::default(),
            Ok(name) => Self::named(&name),
            Err(error) => panic!("{BACKEND_ENV}: {error}"),
        }
    }

    fn named(name: &str) -> Self {
        match name.trim() {
            "" | "sled" => Self::Sled,
            other => panic!("{BACKEND_ENV}: unknown back end {other:?} (known: sled)"),
        }
    }

    /// The store of an in-process registry whose data lives in `dir`.
    pub(crate) fn store(self, dir: &Path) -> StoreSpec {
        match self {
            Self::Sled => StoreSpec::Sled { data_dir: dir.to_path_buf() },
        }
    }

    /// The same store as `switchboard registry` flags.
    pub(crate) fn flags(self, dir: &Path) -> Vec<String> {
        match self {
            Self::Sled => {
                vec!["--data-dir".to_owned(), dir.to_str().expect("utf-8 path").to_owned()]
            }
        }
    }
}
