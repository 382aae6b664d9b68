//! Reads that see every write acknowledged before them, on a store other
//! replicas write too.
//!
//! A replica answers reads from memory, built by applying the store's
//! change feed, and the feed trails the store by the time a watch event
//! takes to arrive. Replicas sit behind one address: a client that
//! registered through one replica and reads through another must still see
//! its registration. So a read first asks the store for the revision of its
//! latest commit (one quorum read of a single key) and waits until this
//! replica has applied it — the way the Kubernetes API server serves
//! consistent reads from its watch cache. Memory then answers, with every
//! index it keeps.
//!
//! A store this registry writes alone (sled) needs none of it: its memory
//! is the latest state. A store that cannot be reached cannot say what is
//! latest: the read is served from memory, which is all this replica has
//! (it reports not ready meanwhile).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{RegistryError, RegistryResult};
use crate::state::Snapshot;
use crate::store::StoreError;

use super::Registry;

/// Longest wait for the feed to bring this replica to the store's revision;
/// past it the replica answers `UNAVAILABLE`, and a client with several
/// addresses asks another one.
const CATCH_UP: Duration = Duration::from_secs(5);

// === impl Registry ===

impl Registry {
    /// The current snapshot, once it holds every write any replica had
    /// acknowledged when the call began (see the module docs).
    pub async fn consistent_snapshot(&self) -> RegistryResult<Arc<Snapshot>> {
        if self.shared.replica.is_none() {
            // Written by this registry alone: memory is the latest state.
            return Ok(self.snapshot());
        }
        let reachable = self.shared.store_reachable.as_ref().is_none_or(|r| *r.borrow());
        if !reachable {
            return Ok(self.snapshot());
        }
        // Gone: the registry stopped, memory is all there is.
        let Some(store) = self.store.upgrade() else { return Ok(self.snapshot()) };
        let stored = match store.committed_revision().await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(self.snapshot()),
            Err(error) => {
                tracing::debug!(%error, "store revision unknown: the read is served from memory");
                return Ok(self.snapshot());
            }
        };
        self.applied(stored).await?;
        Ok(self.snapshot())
    }

    /// Waits until this replica has published revision `stored`.
    async fn applied(&self, stored: u64) -> RegistryResult<()> {
        let mut published = self.subscribe_revisions();
        let caught_up = tokio::time::timeout(CATCH_UP, published.wait_for(|at| *at >= stored))
            .await
            .map(|waited| waited.is_ok());
        match caught_up {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistryError::ShuttingDown),
            Err(_) => Err(RegistryError::Store(StoreError::Unavailable(format!(
                "this replica is behind the store: it applied revision {}, the store is at \
                 {stored}; ask another replica",
                *published.borrow()
            )))),
        }
    }
}
