//! The store's ordered change feed, as the writer applies it.
//!
//! Several registry replicas may share one store (etcd). Each builds its
//! snapshot, Watch history and resolution index from the same ordered
//! sequence of changes: its own commits, and the batches the others commit,
//! which the store's feed delivers. The writer applies a feed batch exactly
//! as it applies its own commit — new snapshot, then the revision that wakes
//! watchers, then wiring pushes to the streams this replica holds — so a
//! watcher or an agent cannot tell on which replica a change was made.
//!
//! Registry revisions stay the dense sequence the store keeps in its
//! revision record, not the store's own revision numbers: one commit is one
//! store transaction holding several events, so the store numbers a batch,
//! not each of its changes, and watchers need one revision per change to
//! resume without a gap or a duplicate. Every replica's commit compares the
//! stored revision with the one its batch was built on, which orders all
//! replicas' batches into one sequence.
//!
//! When another replica committed first, the batch wrote nothing: the writer
//! applies the feed until its snapshot has the store's revision, then
//! applies the batch's mutations again on that snapshot (ownership and
//! validation checked again) and retries. Callers are answered only once
//! their write is committed.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::change::Change;
use crate::condition::{to_cause, to_liveness, to_status};
use crate::error::{RegistryError, RegistryResult};
use crate::mutation::{BatchBuilder, Built, Outcome};
use crate::shared::Shared;
use crate::store::{FeedBatch, StoreError};

/// Longest wait for the feed to deliver what another replica committed
/// before a retry; past it the callers get UNAVAILABLE.
const CATCH_UP: Duration = Duration::from_secs(10);

/// How many times one batch is built again after losing to another
/// replica: each loss means another batch committed, so the registry as a
/// whole always progresses; this only bounds one caller's wait.
pub(crate) const MAX_RETRIES: u32 = 32;

/// The feed of a shared store; nothing for a store this registry writes
/// alone.
pub(crate) struct Feed {
    inbox: Option<mpsc::Receiver<FeedBatch>>,
}

// === impl Feed ===

impl Feed {
    /// Wraps the store's feed (`None`: the registry is the only writer).
    pub fn new(inbox: Option<mpsc::Receiver<FeedBatch>>) -> Self {
        Self { inbox }
    }

    /// True when other writers share the store, so a batch may have to be
    /// built again.
    pub fn is_shared(&self) -> bool {
        self.inbox.is_some()
    }

    /// The next batch other writers committed; never returns when there is
    /// no feed.
    pub async fn recv(&mut self) -> FeedBatch {
        if let Some(inbox) = &mut self.inbox
            && let Some(batch) = inbox.recv().await
        {
            return batch;
        }
        if self.inbox.take().is_some() {
            tracing::error!("the store's feed ended: changes of other replicas no longer arrive");
        }
        std::future::pending().await
    }

    /// Applies feed batches until the snapshot is at `revision` or past it.
    pub async fn catch_up(&mut self, shared: &Shared, revision: u64) -> RegistryResult<()> {
        let wait = async {
            while shared.snapshot.load().revision < revision {
                let batch = self.recv().await;
                apply(shared, batch);
            }
        };
        tokio::time::timeout(CATCH_UP, wait).await.map_err(|_| {
            let at = shared.snapshot.load().revision;
            tracing::warn!(at, revision, "the store's feed did not catch up");
            RegistryError::Store(StoreError::Behind { stored: revision })
        })
    }
}

/// The refusal of a write while the store says it cannot take one.
pub(crate) fn unreachable(shared: &Shared) -> Option<RegistryError> {
    let reachable = shared.store_reachable.as_ref()?;
    if *reachable.borrow() {
        return None;
    }
    Some(RegistryError::Store(StoreError::Unavailable(
        "etcd is unreachable (no quorum answers): this registry refuses writes until it \
         answers again; reads and heartbeats are still served"
            .to_owned(),
    )))
}

/// Returns when the store becomes reachable again; never for a store that
/// cannot lose its service.
pub(crate) async fn reachable_again(reachable: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    if let Some(receiver) = reachable {
        loop {
            if receiver.changed().await.is_err() {
                break;
            }
            if *receiver.borrow_and_update() {
                return;
            }
        }
    }
    *reachable = None;
    std::future::pending().await
}

/// Applies a batch other writers committed, publishing it like a commit.
pub(crate) fn apply(shared: &Shared, mut batch: FeedBatch) {
    if let Some(access) = &shared.access {
        for token in std::mem::take(&mut batch.tokens) {
            access.learn(token);
        }
    }
    if let Some(agents) = batch.agents.take()
        && past_history(shared, &batch)
    {
        resync(shared, batch, agents);
        return;
    }
    let current = shared.snapshot.load_full();
    let mut builder = BatchBuilder::new(
        &current,
        shared.config.history_max_events,
        shared.config.history_max_age,
    );
    let mut removed = Vec::new();
    let mut stored = Vec::new();
    {
        let mut tracker = shared.liveness.lock();
        for event in batch.events {
            let change = Change::from_event(event);
            let id = change.agent.id.clone();
            let removal = change.kind == switchboard_proto::v1::EventType::Removed;
            let status = change.agent.status();
            if builder.replay(change, &mut tracker) {
                if removal {
                    removed.push(id);
                } else {
                    stored.push((id, status));
                }
            }
        }
    }
    if builder.is_empty() {
        owners(shared, batch.owners);
        return;
    }
    let Built { snapshot, pushes, .. } = builder.finish();
    let revision = snapshot.revision;
    shared.snapshot.store(std::sync::Arc::new(snapshot));
    shared.published.send_replace(revision);
    crate::writer::push_wiring(shared, pushes);
    {
        let mut mailboxes = shared.mailboxes.lock();
        for id in removed {
            mailboxes.remove(&id);
        }
    }
    owners(shared, batch.owners);
    speak_for_held(shared, stored);
}

/// Whether a read of the whole store no longer has the events between this
/// replica's revision and the store's: they were trimmed from the store's
/// history while the replica was cut off.
fn past_history(shared: &Shared, batch: &FeedBatch) -> bool {
    let at = shared.snapshot.load().revision;
    let oldest = batch.events.first().map_or(batch.revision + 1, |event| event.revision);
    batch.revision > at && oldest > at + 1
}

/// Replaces this replica's state with the store's whole state, as a fresh
/// load would, for a replica cut off past the store's history: the changes
/// it missed cannot be replayed one by one. Its watchers are behind the new
/// history's start and resync (a snapshot, as after a compaction); the
/// streams it holds get their agents' new wiring; agents gone are forgotten.
fn resync(shared: &Shared, batch: FeedBatch, agents: Vec<switchboard_proto::v1::Agent>) {
    let current = shared.snapshot.load_full();
    let history_start = batch.events.first().map_or(batch.revision + 1, |event| event.revision);
    tracing::warn!(
        from = current.revision,
        to = batch.revision,
        "this replica was cut off past the store's history: loading the store's whole state"
    );
    let snapshot = crate::state::Snapshot::restore(
        current.epoch.to_string(),
        batch.revision,
        history_start,
        agents,
        batch.events,
    );
    let gone: Vec<String> =
        current.agents.keys().filter(|id| !snapshot.agents.contains_key(*id)).cloned().collect();
    {
        let mut tracker = shared.liveness.lock();
        for id in &gone {
            tracker.forget(id);
        }
    }
    let snapshot = std::sync::Arc::new(snapshot);
    shared.snapshot.store(snapshot.clone());
    shared.published.send_replace(snapshot.revision);
    {
        let mut mailboxes = shared.mailboxes.lock();
        mailboxes.retain(|id, _| snapshot.agents.contains_key(id));
        for (id, mailbox) in mailboxes.iter() {
            if let Some(wiring) = snapshot.wiring.get(id) {
                mailbox.send_if_modified(|sent| {
                    let changed = sent.revision != wiring.revision;
                    if changed {
                        *sent = wiring.clone();
                    }
                    changed
                });
            }
        }
    }
    owners(shared, batch.owners);
}

/// An agent whose stream this replica holds is this replica's to speak
/// for. When another replica stored a status this replica's tracker
/// disagrees with — that replica saw its own stream of the agent break
/// while this one still carries the agent's heartbeats — this replica
/// claims the agent and writes what its tracker says. Otherwise the agent
/// would stay DEGRADED while heartbeating, and its old owner, hearing
/// nothing, would expire it.
fn speak_for_held(shared: &Shared, stored: Vec<(String, switchboard_proto::v1::AgentStatus)>) {
    let held: Vec<_> = {
        let streams = shared.streams.lock();
        stored.into_iter().filter(|(id, _)| streams.holds(id)).collect()
    };
    if held.is_empty() {
        return;
    }
    let disagreeing: Vec<String> = {
        let tracker = shared.liveness.lock();
        held.into_iter()
            .filter(|(id, stored)| tracker.status(id).is_some_and(|own| to_status(own) != *stored))
            .map(|(id, _)| id)
            .collect()
    };
    for id in &disagreeing {
        shared.claim(id);
    }
    if !disagreeing.is_empty() {
        shared.mark_dirty(disagreeing);
    }
}

/// Makes this replica the sweeper or not: the sweeper tracks every agent
/// no replica owns (from a fresh grace, so one whose stream reconnects in
/// time never expires); the others stop tracking those unless they hold
/// their streams.
pub(crate) fn sweep(shared: &Shared, sweeper: bool) {
    let was = shared.sweeper.swap(sweeper, std::sync::atomic::Ordering::AcqRel);
    shared.metrics.sweeper.set(i64::from(sweeper));
    if was == sweeper {
        return;
    }
    let snapshot = shared.snapshot.load();
    let unowned: Vec<(String, bool)> = {
        let owners = shared.owners.lock();
        let streams = shared.streams.lock();
        snapshot
            .agents
            .keys()
            .filter(|id| !owners.contains_key(*id))
            .map(|id| (id.clone(), streams.holds(id)))
            .collect()
    };
    let now = tokio::time::Instant::now();
    let mut tracker = shared.liveness.lock();
    for (id, held) in unowned {
        if held {
            continue;
        }
        if !sweeper {
            tracker.forget(&id);
        } else if let Some(agent) = snapshot.agents.get(&id)
            && !tracker.is_tracked(&id)
        {
            let (status, cause) = (to_liveness(agent.status()), to_cause(agent.cause()));
            tracker.restore(id, status, cause, now);
        }
    }
    drop(tracker);
    shared.liveness_changed.notify_one();
}

/// The agents this replica registered are its own until a stream binds
/// elsewhere (one claim per registration, none per heartbeat).
pub(crate) fn claim_registered(shared: &Shared, outcomes: &[RegistryResult<Outcome>]) {
    for outcome in outcomes {
        if let Ok(Outcome::Registered { agent_id, changed: true, .. }) = outcome {
            shared.claim(agent_id);
        }
    }
}

/// Follows who owns which agent: an agent another replica claimed is no
/// longer tracked here (unless its stream is here too); one whose owner
/// released it or died is tracked again by the sweeper, with a fresh
/// grace, so it expires unless its stream reconnects somewhere within that
/// grace — once, by one replica.
fn owners(shared: &Shared, owners: Vec<(String, Option<String>)>) {
    if owners.is_empty() {
        return;
    }
    {
        let mut known = shared.owners.lock();
        for (id, owner) in &owners {
            match owner {
                Some(owner) => known.insert(id.clone(), owner.clone()),
                None => known.remove(id),
            };
        }
    }
    let sweeper = shared.is_sweeper();
    let held: Vec<bool> = {
        let streams = shared.streams.lock();
        owners.iter().map(|(id, _)| streams.holds(id)).collect()
    };
    let snapshot = shared.snapshot.load();
    let now = tokio::time::Instant::now();
    let mut adopted = false;
    let mut tracker = shared.liveness.lock();
    for ((id, owner), held) in owners.into_iter().zip(held) {
        // Ours: tracked here whatever happened meanwhile (a sweeper that
        // lost its lease stopped tracking unowned agents, its own among
        // them, until its new lease claimed them again).
        let ours = owner.as_ref().is_some_and(|owner| Some(owner) == shared.replica.as_ref());
        match owner {
            Some(_) if !ours && !held => tracker.forget(&id),
            Some(_) if !ours => {}
            _ => {
                if let Some(agent) = snapshot.agents.get(&id)
                    && (ours || sweeper || held)
                    && !tracker.is_tracked(&id)
                {
                    let (status, cause) = (to_liveness(agent.status()), to_cause(agent.cause()));
                    tracker.restore(id, status, cause, now);
                    adopted = true;
                }
            }
        }
    }
    drop(tracker);
    if adopted {
        shared.liveness_changed.notify_one();
    }
}
