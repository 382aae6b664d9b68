//! Which store a test registry runs on. Every suite runs against the back
//! end named by `SWITCHBOARD_TEST_BACKEND` (read here and nowhere else), so
//! adding a back end means adding a variant, not editing the suites.
//!
//! `etcd` and `etcd-replicas` need a running etcd cluster named by `SWITCHBOARD_TEST_ETCD_ENDPOINTS`
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
    /// Three replicas on that etcd store, sharing one prefix, behind one
    /// round-robin address (see `front`): a test's connections spread over
    /// them. The test's registry is the first replica; the two others
    /// start, stop and restart with it.
    EtcdReplicas,
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
            "etcd-replicas" => Self::EtcdReplicas,
            other => panic!(
                "{BACKEND_ENV}: unknown back end {other:?} (known: sled, etcd, etcd-replicas)"
            ),
        }
    }

    /// How many replicas run beside the test's registry, on its store.
    pub fn peers(self) -> usize {
        match self {
            Self::Sled | Self::Etcd => 0,
            Self::EtcdReplicas => 2,
        }
    }

    /// The store of an in-process registry whose data lives in `dir`.
    pub(crate) fn store(self, dir: &Path) -> StoreSpec {
        match self {
            Self::Sled => StoreSpec::Sled { data_dir: dir.to_path_buf() },
            Self::Etcd | Self::EtcdReplicas => StoreSpec::Etcd {
                config: EtcdConfig::new(etcd_endpoints()),
                prefix: etcd_prefix(dir),
            },
        }
    }

    /// The same store as `switchboard registry` flags, with `data_dir` as
    /// the data directory (a peer replica's own; the store is `dir`'s).
    pub(crate) fn flags(self, dir: &Path, data_dir: &Path) -> Vec<String> {
        let data_dir = data_dir.to_str().expect("utf-8 path").to_owned();
        match self {
            Self::Sled => vec!["--data-dir".to_owned(), data_dir],
            Self::Etcd | Self::EtcdReplicas => vec![
                "--store".to_owned(),
                "etcd".to_owned(),
                "--etcd-endpoints".to_owned(),
                etcd_endpoints().join(","),
                "--etcd-prefix".to_owned(),
                etcd_prefix(dir),
                // The embedded store's directory still holds nothing else.
                "--data-dir".to_owned(),
                data_dir,
            ],
        }
    }
}

fn etcd_endpoints() -> Vec<String> {
    let list = std::env::var(ETCD_ENDPOINTS_ENV).unwrap_or_else(|_| {
        panic!(
            "{BACKEND_ENV}=etcd and etcd-replicas need {ETCD_ENDPOINTS_ENV}=host:port,...: start a cluster with \
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
