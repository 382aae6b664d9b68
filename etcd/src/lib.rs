//! A thin typed client for the part of etcd's v3 gRPC API that Switchboard
//! uses: key-value reads, writes and compare-and-swap transactions, prefix
//! watches, leases, the cluster id and user/password authentication, over
//! plaintext or TLS (a CA and an optional client certificate, from files
//! reloaded when they change: [`EtcdConfig::with_tls`]).
//!
//! The `.proto` is our own subset of etcd's API, compiled with `protox`, so
//! the crate builds with no system `protoc`. Field numbers and service paths
//! are etcd's; everything else etcd offers is left out on purpose.
//!
//! ```no_run
//! # async fn demo() -> Result<(), switchboard_etcd::EtcdError> {
//! use switchboard_etcd::{EtcdClient, EtcdConfig};
//!
//! let client = EtcdClient::connect(EtcdConfig::new(["127.0.0.1:2379"])).await?;
//! client.put(b"/demo/key".to_vec(), b"value".to_vec(), 0).await?;
//! let kv = client.get(b"/demo/key".to_vec()).await?;
//! assert_eq!(kv.map(|kv| kv.value), Some(b"value".to_vec()));
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod error;
pub mod ops;

pub use client::{EtcdClient, LeaseKeeper, WatchStream};
pub use config::EtcdConfig;
pub use error::{EtcdError, EtcdResult};

/// Generated messages and clients of our subset of `etcdserverpb`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used, clippy::expect_used)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}

/// The end of the key range that holds every key starting with `prefix`
/// (etcd's "prefix end": the prefix with its last byte below 0xff
/// incremented and the rest dropped; `\0`, every key, when there is none).
///
/// ```
/// assert_eq!(switchboard_etcd::prefix_end(b"/sb/agents/"), b"/sb/agents0".to_vec());
/// assert_eq!(switchboard_etcd::prefix_end(b"a\xff"), b"b".to_vec());
/// assert_eq!(switchboard_etcd::prefix_end(b""), vec![0]);
/// ```
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
