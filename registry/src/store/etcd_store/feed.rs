//! The feed of an etcd store: what the other replicas sharing the prefix
//! commit, read from one etcd watch on the whole prefix from the revision
//! the load read at, so nothing committed after the load is missed.
//!
//! A batch is complete once its `meta/revision` write arrives (every batch
//! is one transaction, but `store copy` may write one in parts, events
//! first). So events wait, by registry revision, until a revision write
//! covers them; then they go to the writer in order. Token records come
//! too, so a token created or revoked on one replica holds on all.
//!
//! This replica's own batches come too: the writer skips the revisions its
//! snapshot has, and a commit whose answer was lost (etcd unreachable)
//! arrives this way once it is known to have been applied. Changes to agent
//! keys update the modification revisions this store compares on before
//! their batch is handed on, so a commit built on the applied batch passes
//! those compares.
//!
//! When etcd compacted past the revision the watch would resume from (the
//! replica was cut off from etcd for longer than etcd keeps history), the
//! feed recovers by itself: it reads the whole prefix at one revision and
//! hands on every stored event (the writer skips those it has), the current
//! owners and the modification revisions of the agent keys, then watches
//! again from just after that read. Events are keys of their own, so etcd's
//! compaction never removes them; only the registry's own history limit
//! does. For a replica cut off for longer than that, the read carries every
//! stored agent too, and the replica replaces its state with them (see the
//! registry's `feed::resync`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message as _;
use switchboard_etcd::pb::{WatchResponse, event::EventType as KeyEvent};
use switchboard_etcd::{EtcdClient, EtcdError};
use switchboard_proto::v1::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Known, parse_hash};
use crate::store::{FeedBatch, StoredToken};

/// Batches queued for the writer; the watch waits while it is full.
pub(super) const QUEUE: usize = 64;

/// Longest pause between attempts to watch again after an error.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The task that reads the watch and hands complete batches on.
pub(super) struct FeedTask {
    pub client: EtcdClient,
    /// `<prefix>/`.
    pub root: Vec<u8>,
    pub known: Arc<Mutex<Known>>,
    pub batches: mpsc::Sender<FeedBatch>,
    pub stop: CancellationToken,
}

/// Events of other replicas waiting for the revision write that commits
/// them, by registry revision.
type Pending = BTreeMap<u64, Event>;

// === impl FeedTask ===

impl FeedTask {
    /// Watches from etcd revision `start` until the store is dropped or the
    /// writer is gone, watching again after errors.
    pub async fn run(self, start: i64) {
        let mut next = start;
        let mut pending = Pending::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            let watched = tokio::select! {
                () = self.stop.cancelled() => return,
                watched = self.client.watch_prefix(&self.root, next) => watched,
            };
            let mut stream = match watched {
                Ok(stream) => stream,
                Err(error @ EtcdError::Compacted { .. }) => {
                    if !self.catch_up(&error, &mut pending, &mut next, &mut backoff).await {
                        return;
                    }
                    continue;
                }
                Err(error) => {
                    if !self.pause(&error, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            };
            loop {
                let response = tokio::select! {
                    () = self.stop.cancelled() => return,
                    response = stream.next(next) => response,
                };
                match response {
                    Ok(response) => {
                        backoff = Duration::from_millis(50);
                        match self.handle(response, &mut pending).await {
                            Some(seen) => next = next.max(seen + 1),
                            None => return,
                        }
                    }
                    Err(error @ EtcdError::Compacted { .. }) => {
                        if !self.catch_up(&error, &mut pending, &mut next, &mut backoff).await {
                            return;
                        }
                        break;
                    }
                    Err(error) => {
                        if !self.pause(&error, &mut backoff).await {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Recovers from `compacted`, moving `next` past the read, or waits
    /// before the next attempt when etcd fails meanwhile; false when the
    /// store is closing or the writer is gone.
    async fn catch_up(
        &self,
        compacted: &EtcdError,
        pending: &mut Pending,
        next: &mut i64,
        backoff: &mut Duration,
    ) -> bool {
        match self.recover(compacted, pending).await {
            Ok(Some(at)) => {
                *next = at + 1;
                true
            }
            Ok(None) => false,
            Err(error) => self.pause(&error, backoff).await,
        }
    }

    /// Catches up from a read of the whole prefix after etcd compacted
    /// past the watch (see the module docs); returns the etcd revision read
    /// at, `None` when the writer is gone.
    async fn recover(
        &self,
        compacted: &EtcdError,
        pending: &mut Pending,
    ) -> Result<Option<i64>, EtcdError> {
        tracing::warn!(%compacted, "the store's feed fell behind etcd's compaction; reading it all");
        let read = tokio::select! {
            () = self.stop.cancelled() => return Ok(None),
            read = self.client.get_prefix(&self.root) => read?,
        };
        let (kvs, at) = read;
        let batch = self.stored(&kvs, at, pending);
        let revision = batch.revision;
        if self.batches.send(batch).await.is_err() {
            return Ok(None);
        }
        tracing::info!(revision, at, "the store's feed caught up after compaction");
        Ok(Some(at))
    }

    /// Everything a read of the prefix at etcd revision `at` holds, as one
    /// batch; updates the known agent revisions and drops the pending events
    /// it covers.
    fn stored(
        &self,
        kvs: &[switchboard_etcd::pb::KeyValue],
        at: i64,
        pending: &mut Pending,
    ) -> FeedBatch {
        let mut revision = None;
        let mut events = Vec::new();
        let mut owners = Vec::new();
        let mut tokens = Vec::new();
        let mut agents = std::collections::HashSet::new();
        let mut records = Vec::new();
        let mut known = self.known.lock();
        for kv in kvs {
            let Some(key) = kv.key.strip_prefix(self.root.as_slice()) else { continue };
            let key = String::from_utf8_lossy(key);
            match key.split_once('/') {
                Some(("meta", "revision")) => {
                    revision = std::str::from_utf8(&kv.value).ok().and_then(|t| t.parse().ok());
                }
                Some(("events", _)) => match Event::decode(&*kv.value) {
                    Ok(event) => events.push(event),
                    Err(_) => tracing::error!(%key, "undecodable event in the store"),
                },
                Some(("agents", id)) => {
                    known.observed(id, kv.mod_revision, true);
                    agents.insert(id.to_owned());
                    match switchboard_proto::v1::Agent::decode(&*kv.value) {
                        Ok(agent) => records.push(agent),
                        Err(_) => tracing::error!(%key, "undecodable agent in the store"),
                    }
                }
                Some(("owners", id)) => {
                    let owner = String::from_utf8_lossy(&kv.value).into_owned();
                    owners.push((id.to_owned(), Some(owner)));
                }
                Some(("tokens", hash)) => tokens.extend(token(hash, &kv.value)),
                _ => {}
            }
        }
        let gone: Vec<String> =
            known.agents.keys().filter(|id| !agents.contains(*id)).cloned().collect();
        for id in &gone {
            known.observed(id, at, false);
        }
        drop(known);
        let revision: u64 = revision.unwrap_or(0);
        // Events above the stored revision belong to a batch not committed.
        events.retain(|event| event.revision <= revision);
        events.sort_by_key(|event| event.revision);
        let later = pending.split_off(&(revision + 1));
        *pending = later;
        // Every agent with no owner key: released while the feed was away.
        let owned: std::collections::HashSet<String> =
            owners.iter().map(|(id, _)| id.clone()).collect();
        owners.extend(agents.into_iter().filter(|id| !owned.contains(id)).map(|id| (id, None)));
        FeedBatch { revision, events, owners, tokens, agents: Some(records) }
    }

    /// Logs a watch failure and waits before the next attempt; false when
    /// the store is closing.
    async fn pause(&self, error: &EtcdError, backoff: &mut Duration) -> bool {
        tracing::warn!(%error, "the store's feed broke; watching again");
        let jitter = rand::random_range(0..=backoff.as_millis() as u64);
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(Duration::from_millis(jitter)) => true,
        }
    }

    /// Takes in one watch response; returns the last etcd revision it
    /// covers, `None` when the writer is gone.
    async fn handle(&self, response: WatchResponse, pending: &mut Pending) -> Option<i64> {
        let header = response.header.map_or(0, |header| header.revision);
        let Some(last) = response.events.last().and_then(|e| e.kv.as_ref()) else {
            // A progress notification: everything up to `header` was sent.
            return Some(header);
        };
        let last = last.mod_revision;
        let mut events = response.events.as_slice();
        while let Some(first) = events.first() {
            // One transaction: every change at the same etcd revision.
            let at = first.kv.as_ref().map_or(0, |kv| kv.mod_revision);
            let end = events
                .iter()
                .position(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision) != at)
                .unwrap_or(events.len());
            let (txn, rest) = events.split_at(end);
            events = rest;
            if let Some(batch) = self.transaction(txn, pending)
                && self.batches.send(batch).await.is_err()
            {
                return None;
            }
        }
        Some(last)
    }

    /// The changes of one transaction; a complete batch when it wrote the
    /// revision of another replica's batch.
    fn transaction(
        &self,
        txn: &[switchboard_etcd::pb::Event],
        pending: &mut Pending,
    ) -> Option<FeedBatch> {
        let mut committed = None;
        let mut owners = Vec::new();
        let mut tokens = Vec::new();
        for event in txn {
            let Some(kv) = &event.kv else { continue };
            let Some(key) = kv.key.strip_prefix(self.root.as_slice()) else { continue };
            let key = String::from_utf8_lossy(key);
            let put = event.r#type == KeyEvent::Put as i32;
            match key.split_once('/') {
                Some(("meta", "revision")) if put => {
                    committed =
                        std::str::from_utf8(&kv.value).ok().and_then(|text| text.parse().ok());
                }
                Some(("events", at)) if put => match Event::decode(&*kv.value) {
                    Ok(decoded) if at.parse() == Ok(decoded.revision) => {
                        pending.insert(decoded.revision, decoded);
                    }
                    Ok(_) | Err(_) => tracing::error!(%key, "undecodable event on the feed"),
                },
                Some(("agents", id)) => self.known.lock().observed(id, kv.mod_revision, put),
                Some(("owners", id)) => {
                    let owner = put.then(|| String::from_utf8_lossy(&kv.value).into_owned());
                    owners.push((id.to_owned(), owner));
                }
                Some(("tokens", hash)) if put => tokens.extend(token(hash, &kv.value)),
                _ => {}
            }
        }
        let mut events = Vec::new();
        if let Some(revision) = committed {
            let later = pending.split_off(&(revision + 1));
            events = std::mem::replace(pending, later).into_values().collect();
        }
        // Our own batch is in the snapshot already (the writer skips it) —
        // unless its commit's answer was lost: then this is how it arrives.
        let revision = committed.unwrap_or(0);
        let any = !events.is_empty() || !owners.is_empty() || !tokens.is_empty();
        any.then_some(FeedBatch { revision, events, owners, tokens, agents: None })
    }
}

/// The token stored under `tokens/<hash>`, unless it does not decode.
fn token(hash: &str, value: &[u8]) -> Option<StoredToken> {
    let parsed = parse_hash(hash).zip(switchboard_proto::v1::TokenInfo::decode(value).ok());
    if parsed.is_none() {
        tracing::error!(key = %format!("tokens/{hash}"), "undecodable token on the feed");
    }
    parsed.map(|(hash, info)| StoredToken { hash, info })
}
