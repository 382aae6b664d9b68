//! The feed of an etcd store: what the other replicas sharing the prefix
//! commit, read from one etcd watch on the whole prefix from the revision
//! the load read at, so nothing committed after the load is missed.
//!
//! A batch is complete once its `meta/revision` write arrives: a batch too
//! large for one transaction writes its events first, and a replica that
//! loses the race part-way leaves events that never committed (the winner
//! overwrites them). So events wait, by registry revision, until a
//! revision write covers them; then they go to the writer in order.
//!
//! This replica's own batches come too: the writer skips the revisions its
//! snapshot has, and a commit whose answer was lost (etcd unreachable)
//! arrives this way once it is known to have been applied. Changes to agent
//! keys update the modification revisions this store compares on before
//! their batch is handed on, so a commit built on the applied batch passes
//! those compares.

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

use super::Known;
use crate::store::FeedBatch;

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

    /// Logs a watch failure and waits before the next attempt; false when
    /// the store is closing.
    async fn pause(&self, error: &EtcdError, backoff: &mut Duration) -> bool {
        if let EtcdError::Compacted { .. } = error {
            // etcd dropped revisions this replica never read: it cannot
            // follow the others from here and must be restarted (it then
            // loads the whole state).
            tracing::error!(%error, "the store's feed lost changes to etcd's compaction");
        } else {
            tracing::warn!(%error, "the store's feed broke; watching again");
        }
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
        (!events.is_empty() || !owners.is_empty()).then_some(FeedBatch { revision, events, owners })
    }
}
