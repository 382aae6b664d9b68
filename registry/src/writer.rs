//! The single writer: group commit of every mutation.
//!
//! One task owns all writes. It waits for work, takes every mutation that is
//! queued (up to `max_batch`) plus the agents whose liveness changed, applies
//! them to a new snapshot, makes the batch durable with one `Store::commit`
//! (so concurrent registrations share one flush), then publishes: snapshot
//! first, then the revision that wakes watchers (they read the events from
//! the snapshot's history, so none can be missed), then wiring pushes, then its own
//! bookkeeping, then replies — each carrying what the caller needs (a
//! registration's wiring), so no caller re-reads the snapshot.

use std::sync::Arc;

use switchboard_proto::v1::EventType;
use tokio::sync::{mpsc, oneshot};

use crate::audit;
use crate::change::{Change, PURGED};
use crate::error::{RegistryError, RegistryResult};
use crate::feed::{self, Feed};
use crate::mutation::{BatchBuilder, Built, Mutation, Outcome};
use crate::shared::Shared;
use crate::state::{Snapshot, Wiring};
use crate::store::{CommitBatch, Store, StoreError};

/// A mutation and where to send its outcome.
pub(crate) struct Command {
    /// What to change.
    pub mutation: Mutation,
    /// Receives the outcome once it is durable.
    pub reply: oneshot::Sender<RegistryResult<Outcome>>,
}

type Reply = oneshot::Sender<RegistryResult<Outcome>>;

/// Runs until the registry closes, then commits what is queued and flushes.
pub(crate) async fn run(
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    mut inbox: mpsc::Receiver<Command>,
    mut feed: Feed,
) {
    let mut reachable = shared.store_reachable.clone();
    loop {
        let mut commands = Vec::new();
        tokio::select! {
            biased;
            // What other replicas committed first: a batch built on it
            // does not lose to them.
            batch = feed.recv() => {
                feed::apply(&shared, batch);
                continue;
            }
            command = inbox.recv() => match command {
                Some(command) => commands.push(command),
                None => break,
            },
            () = shared.status_changed.notified() => {}
            // Status changes refused while the store was unreachable.
            () = feed::reachable_again(&mut reachable) => {}
            () = shared.closing.cancelled() => break,
        }
        while commands.len() < shared.config.max_batch {
            match inbox.try_recv() {
                Ok(command) => commands.push(command),
                Err(_) => break,
            }
        }
        if !commit_batch(&shared, store.as_ref(), &mut feed, commands).await {
            // The store failed a write: its state is unknown, so nothing more is
            // written — not what is queued, not a final flush (after ENOSPC,
            // sled's flush never returns). Queued callers get "shutting down".
            tracing::error!("storage failed: the writer stops without a final flush");
            // sled also flushes when its last handle drops, and that flush never
            // returns after an I/O error: leak the handle, the process is ending.
            std::mem::forget(store);
            return;
        }
    }
    // Closing: refuse new work, commit what was already queued.
    inbox.close();
    let mut rest = Vec::new();
    while let Ok(command) = inbox.try_recv() {
        rest.push(command);
    }
    if !rest.is_empty() {
        commit_batch(&shared, store.as_ref(), &mut feed, rest).await;
    }
    if let Err(error) = store.flush().await {
        tracing::error!(%error, "final flush failed");
    }
}

/// Commits one batch; false when the store failed (the registry is closing).
async fn commit_batch(
    shared: &Shared,
    store: &dyn Store,
    feed: &mut Feed,
    commands: Vec<Command>,
) -> bool {
    let (mut mutations, replies): (Vec<_>, Vec<Reply>) =
        commands.into_iter().map(|command| (command.mutation, command.reply)).unzip();
    let dirty = std::mem::take(&mut *shared.dirty_status.lock());
    let mut retries = 0;
    // Built again (from copies of the mutations) each time another replica
    // of a shared store commits first.
    let (snapshot, pushes, mut outcomes, transitions, started, result) = loop {
        let current = shared.snapshot.load_full();
        let mut builder = BatchBuilder::new(
            &current,
            shared.config.history_max_events,
            shared.config.history_max_age,
        );
        let round =
            if feed.is_shared() { mutations.clone() } else { std::mem::take(&mut mutations) };
        let mut outcomes = Vec::with_capacity(round.len());
        {
            let mut tracker = shared.liveness.lock();
            for mutation in round {
                outcomes.push(builder.apply(mutation, &mut tracker));
            }
            for id in &dirty {
                builder.sync_status(id, &mut tracker);
            }
        }
        if builder.is_empty() {
            fill_wiring(&current, &mut outcomes);
            send_replies(replies, outcomes);
            return true;
        }
        let Built { snapshot, batch, pushes } = builder.finish();
        let transitions = if shared.audit.is_enabled() { transitions(&batch) } else { Vec::new() };
        let started = std::time::Instant::now();
        if let Some(error) = feed::unreachable(shared) {
            refuse(shared, replies, outcomes, dirty, &error);
            return true;
        }
        match store.commit(batch).await {
            Err(StoreError::Behind { stored }) if retries < feed::MAX_RETRIES => {
                retries += 1;
                tracing::debug!(stored, retries, "another replica committed first; building again");
                if let Err(error) = feed.catch_up(shared, stored).await {
                    refuse(shared, replies, outcomes, dirty, &error);
                    return true;
                }
            }
            Err(error @ StoreError::Behind { .. }) => {
                refuse(shared, replies, outcomes, dirty, &RegistryError::Store(error));
                return true;
            }
            // A shared store that lost its service: nothing is known to be
            // broken, the write may even have been applied (the feed then
            // brings it). Refuse, and go on serving.
            Err(StoreError::Etcd(error)) if feed.is_shared() && error.is_unavailable() => {
                let error = RegistryError::Store(StoreError::Unavailable(format!(
                    "etcd is unreachable ({error}): writes are refused until it answers again"
                )));
                refuse(shared, replies, outcomes, dirty, &error);
                return true;
            }
            result => break (snapshot, pushes, outcomes, transitions, started, result),
        }
    };
    if let Err(error) = result {
        // After a failed write the store's state is unknown (sled poisons
        // itself after an I/O error): refuse to go on, like etcd does on a
        // failed fsync. Callers get an error; the registry shuts down and a
        // supervisor restarts it from what is durable.
        tracing::error!(%error, "commit failed; stopping the registry");
        shared.closing.cancel();
        let message = error.to_string();
        let failed =
            || Err(RegistryError::Store(crate::store::StoreError::Invalid(message.clone())));
        let outcomes = outcomes.into_iter().map(|outcome| outcome.and_then(|_| failed())).collect();
        send_replies(replies, outcomes);
        return false;
    }
    shared.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
    fill_wiring(&snapshot, &mut outcomes);
    let revision = snapshot.revision;
    shared.snapshot.store(Arc::new(snapshot));
    // Watchers read the new events from the snapshot's history; this only
    // wakes them, however many there are.
    shared.published.send_replace(revision);
    push_wiring(shared, pushes);
    after_commit(shared, &outcomes);
    feed::claim_registered(shared, &outcomes);
    send_replies(replies, outcomes);
    // Recorded once durable, after the callers and watchers have been
    // served: a mass expiry's records must not delay its publication.
    for change in transitions {
        audit::transition(
            &shared.audit,
            &change.agent,
            change.revision,
            change.kind == EventType::Removed,
        );
    }
    true
}

/// The status changes and evictions the registry made by itself in `batch`
/// (callers' changes are recorded by their RPC handlers).
fn transitions(batch: &CommitBatch) -> Vec<Arc<Change>> {
    let own = |change: &&Arc<Change>| match change.kind {
        EventType::StatusChanged => true,
        EventType::Removed => change.reason == PURGED,
        _ => false,
    };
    batch.events.iter().filter(own).cloned().collect()
}

/// Gives every registration the agent's wiring as of `snapshot`.
fn fill_wiring(snapshot: &Snapshot, outcomes: &mut [RegistryResult<Outcome>]) {
    for outcome in outcomes {
        if let Ok(Outcome::Registered { agent_id, wiring, .. }) = outcome
            && let Some(current) = snapshot.wiring.get(agent_id.as_str())
        {
            *wiring = current.clone();
        }
    }
}

/// What follows from durable outcomes: a (re-)registered agent may have an
/// earlier deadline for the liveness driver; a removed one gets no more
/// wiring.
fn after_commit(shared: &Shared, outcomes: &[RegistryResult<Outcome>]) {
    let mut registered = false;
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Registered { .. }) => {
                registered = true;
                shared.metrics.registrations.inc();
            }
            Ok(Outcome::Deregistered { agent_id, .. }) => {
                shared.mailboxes.lock().remove(agent_id);
            }
            Ok(Outcome::LabelsSet { .. }) | Err(_) => {}
        }
    }
    if registered {
        shared.liveness_changed.notify_one();
    }
}

/// Refuses a batch that could not commit, without stopping: the store is
/// fine, another replica kept winning (or its changes did not arrive in
/// time). The status changes it carried stay due.
fn refuse(
    shared: &Shared,
    replies: Vec<Reply>,
    outcomes: Vec<RegistryResult<Outcome>>,
    dirty: std::collections::BTreeSet<String>,
    error: &RegistryError,
) {
    tracing::warn!(%error, "batch refused after losing to other replicas");
    let message = error.to_string();
    let refused = || Err(RegistryError::Store(StoreError::Unavailable(message.clone())));
    let outcomes = outcomes.into_iter().map(|outcome| outcome.and_then(|_| refused())).collect();
    send_replies(replies, outcomes);
    if dirty.is_empty() {
        return;
    }
    if feed::unreachable(shared).is_some() {
        // Retried when the store is back, not in a loop until then.
        shared.dirty_status.lock().extend(dirty);
    } else {
        shared.mark_dirty(dirty);
    }
}

pub(crate) fn push_wiring(shared: &Shared, pushes: Vec<(String, Arc<Wiring>)>) {
    let mailboxes = shared.mailboxes.lock();
    for (agent_id, wiring) in pushes {
        if let Some(mailbox) = mailboxes.get(&agent_id) {
            mailbox.send_replace(wiring);
            shared.metrics.pushes.inc();
        }
    }
}

fn send_replies(replies: Vec<Reply>, outcomes: Vec<RegistryResult<Outcome>>) {
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        // The caller may have gone away (cancelled RPC); the write stands.
        let _ = reply.send(outcome);
    }
}
