//! Which store a test registry runs on. Every suite runs against the back
//! end named by `SWITCHBOARD_TEST_BACKEND` (read here and nowhere else), so
//! adding a back end means adding a variant, not editing the suites.
//!
//! `etcd` needs a running etcd cluster named by `SWITCHBOARD_TEST_ETCD_ENDPOINTS`
//! (tests/run starts one with `sb-etcd-cluster`): every test process shares
//! it, and each registry keeps its state under its own prefix, named after
//! its data directory, so a restarted registry finds its state again.

use std::path::Path;

use switchboard_registry::{EtcdConfig, StoreSpec};

/// The environment variable that picks the back end for every suite.
pub const BACKEND_ENV: &str = "SWITCHBOARD_TEST_BACKEND";

/// The etcd endpoints (comma-separated) the `etcd` back end uses.
pub const ETCD_ENDPOINTS_ENV: &str = "SWITCHBOARD_TEST_ETCD_ENDPOINTS";

/// A store back end for test registries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The embedded sled store in the registry's data directory.
    #[default]
    Sled,
    /// The etcd store at `SWITCHBOARD_TEST_ETCD_ENDPOINTS`, under a prefix
    /// named after the registry's data directory.
    Etcd,
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
            "etcd" => Self::Etcd,
            other => panic!("{BACKEND_ENV}: unknown back end {other:?} (known: sled, etcd)"),
        }
    }

    /// The store of an in-process registry whose data lives in `dir`.
    pub(crate) fn store(self, dir: &Path) -> StoreSpec {
        match self {
            Self::Sled => StoreSpec::Sled { data_dir: dir.to_path_buf() },
            Self::Etcd => StoreSpec::Etcd {
                config: EtcdConfig::new(etcd_endpoints()),
                prefix: etcd_prefix(dir),
            },
        }
    }

    /// The same store as `switchboard registry` flags.
    pub(crate) fn flags(self, dir: &Path) -> Vec<String> {
        match self {
            Self::Sled => {
                vec!["--data-dir".to_owned(), dir.to_str().expect("utf-8 path").to_owned()]
            }
            Self::Etcd => vec![
                "--store".to_owned(),
                "etcd".to_owned(),
                "--etcd-endpoints".to_owned(),
                etcd_endpoints().join(","),
                "--etcd-prefix".to_owned(),
                etcd_prefix(dir),
                // The embedded store's directory still holds nothing else.
                "--data-dir".to_owned(),
                dir.to_str().expect("utf-8 path").to_owned(),
            ],
        }
    }
}

fn etcd_endpoints() -> Vec<String> {
    let list = std::env::var(ETCD_ENDPOINTS_ENV).unwrap_or_else(|_| {
        panic!(
            "{BACKEND_ENV}=etcd needs {ETCD_ENDPOINTS_ENV}=host:port,...: start a cluster with \
             `cargo run -p switchboard-tests --bin sb-etcd-cluster`"
        )
    });
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

/// One prefix per data directory: temporary directories have unique names.
fn etcd_prefix(dir: &Path) -> String {
    let name = dir.file_name().and_then(|name| name.to_str()).unwrap_or("registry");
    format!("/sb-test/{name}")
}
