//! Which replica owns which agent: `<prefix>/owners/<agent>` names the
//! replica holding the agent's stream, attached to that replica's lease.
//!
//! One lease per replica, renewed every third of [`OWNER_TTL`]: owning a
//! thousand agents costs the same renewals as owning one, and a heartbeat
//! writes nothing. A claim is one put, when a stream binds or an agent
//! registers; claims waiting together go in one transaction, and a claim is
//! never dropped (they wait in a set, one entry per agent). When a replica dies its lease lapses and etcd deletes every
//! key attached to it: the other replicas see the deletions on their feed,
//! and the agents' streams reconnecting to them claim the agents again.
//! A replica that loses its lease (etcd unreachable past the TTL) takes a
//! new one and claims again everything it claimed.
//!
//! The same lease holds this replica's candidacy for the sweeper, the one
//! replica that expires agents nobody owns (an agent registered on a
//! replica that died, its stream never reconnecting): every replica puts
//! `<prefix>/sweeper/<replica>` under its lease, and the one whose key was
//! created first (lowest create revision) sweeps, as etcd's election does.
//! Exactly one replica then tracks an unowned agent, so it is expired once.
//! When the sweeper dies its lease lapses, its key goes, and the next
//! candidate in creation order takes over; a replica that took a new lease
//! joins the end of the line. Deadlines stay in each replica's tracker,
//! never in lease TTLs, which etcd resets on a leader change.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use switchboard_etcd::pb::TxnRequest;
use switchboard_etcd::{EtcdClient, LeaseKeeper, ops};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Claims;

/// Seconds a replica's ownerships outlive it.
pub(super) const OWNER_TTL: i64 = 10;

/// Claims written per transaction, below etcd's `max-txn-ops` (128).
const CLAIMS_PER_TXN: usize = 120;

/// How often a replica reads who the sweeper is: the longest a dead
/// sweeper's successor waits past the lease lapsing.
const ELECTION_POLL: Duration = Duration::from_secs(1);

/// The task that holds the lease and writes the claims.
pub(super) struct OwnerTask {
    pub client: EtcdClient,
    /// `<prefix>/owners/`.
    pub root: String,
    pub replica: String,
    pub claims: Arc<Claims>,
    /// `<prefix>/sweeper/`.
    pub candidates: String,
    /// Whether this replica is the sweeper now.
    pub sweeper: watch::Sender<bool>,
    pub stop: CancellationToken,
}

// === impl OwnerTask ===

impl OwnerTask {
    /// Runs until the store is dropped; revokes the lease then, so a replica
    /// that stops cleanly releases its agents at once.
    pub async fn run(self) {
        let mut owned: BTreeSet<String> = BTreeSet::new();
        loop {
            let Some((lease, mut keeper)) = self.lease().await else { return };
            self.put_all(&owned, lease).await;
            let mut renew = tokio::time::interval(Duration::from_secs((OWNER_TTL / 3) as u64));
            renew.tick().await;
            let mut elect = tokio::time::interval(ELECTION_POLL);
            elect.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = self.stop.cancelled() => {
                        self.sweeper.send_replace(false);
                        // Best effort: the lease lapses by itself otherwise.
                        let revoke = self.client.revoke_lease(lease);
                        let _ = tokio::time::timeout(Duration::from_secs(1), revoke).await;
                        return;
                    }
                    claimed = self.claims.take() => {
                        self.put_all(&claimed, lease).await;
                        owned.extend(claimed);
                    }
                    _ = renew.tick() => {
                        if let Err(error) = keeper.keep_alive().await {
                            tracing::warn!(%error, "the ownership lease lapsed; taking a new one");
                            // Its candidacy went with it.
                            self.sweeper.send_replace(false);
                            break;
                        }
                    }
                    _ = elect.tick() => self.elect(lease).await,
                }
            }
        }
    }

    /// A new lease and its keeper, retried until etcd grants one; `None`
    /// when the store is closing.
    async fn lease(&self) -> Option<(i64, LeaseKeeper)> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let granted = async {
                let (id, _) = self.client.grant_lease(OWNER_TTL).await?;
                let keeper = self.client.lease_keeper(id).await?;
                Ok::<_, switchboard_etcd::EtcdError>((id, keeper))
            };
            let granted = tokio::select! {
                () = self.stop.cancelled() => return None,
                granted = granted => granted,
            };
            match granted {
                Ok(lease) => return Some(lease),
                Err(error) => tracing::warn!(%error, "no ownership lease yet; retrying"),
            }
            tokio::select! {
                () = self.stop.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Stands as a candidate under `lease` (unless already one) and
    /// publishes whether this replica's candidacy is the oldest. etcd not
    /// answering changes nothing: the lease decides, and it outlives a
    /// short outage.
    async fn elect(&self, lease: i64) {
        let key = format!("{}{}", self.candidates, self.replica).into_bytes();
        let stand = TxnRequest {
            compare: vec![ops::absent(key.clone())],
            success: vec![ops::put_with_lease(key.clone(), self.replica.as_str(), lease)],
            failure: vec![],
        };
        if let Err(error) = self.client.txn(stand).await {
            tracing::debug!(%error, "could not stand for sweeper");
            return;
        }
        let candidates = match self.client.get_prefix(self.candidates.as_bytes()).await {
            Ok((candidates, _)) => candidates,
            Err(error) => {
                tracing::debug!(%error, "could not read the sweeper candidates");
                return;
            }
        };
        let first = candidates.iter().min_by_key(|kv| (kv.create_revision, kv.key.clone()));
        let elected = first.is_some_and(|kv| kv.key == key);
        if self.sweeper.send_if_modified(|was| std::mem::replace(was, elected) != elected) {
            tracing::info!(elected, "sweeper election changed");
        }
    }

    /// Records this replica as the owner of `ids`, many per transaction:
    /// thousands of streams binding at once cost a few writes, not one each.
    async fn put_all(&self, ids: &BTreeSet<String>, lease: i64) {
        let ids: Vec<&String> = ids.iter().collect();
        for chunk in ids.chunks(CLAIMS_PER_TXN) {
            let puts = chunk.iter().map(|id| {
                let key = format!("{}{id}", self.root).into_bytes();
                ops::put_with_lease(key, self.replica.as_str(), lease)
            });
            let claims = TxnRequest { compare: vec![], success: puts.collect(), failure: vec![] };
            if let Err(error) = self.client.txn(claims).await {
                tracing::warn!(%error, agents = chunk.len(), "could not record this replica as the owner");
            }
        }
    }
}
