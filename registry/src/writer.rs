//! The single writer: group commit of every mutation, pipelined.
//!
//! One task owns all writes. Mutations are applied, in arrival order, to an
//! open batch built on top of the newest snapshot (which may not be durable
//! yet). A batch closes when the store is free: at once when nothing is
//! being flushed, otherwise as soon as the previous batch's flush ends. So
//! the size of a batch follows the latency of a flush, not a count (a cap,
//! `max_batch`, only bounds its memory), and the writer keeps applying the
//! next batch while the previous one is on its way to disk instead of
//! waiting idle for the fsync.
//!
//! A closed batch is made durable with one `Store::commit` (one flush for
//! every registration in it). Batches are committed one at a time, in
//! order, so batch N+1 reaches the store only after batch N is durable.
//! Once a batch is durable it is published: snapshot first, then the
//! revision that wakes watchers (they read the events from the snapshot's
//! history, so none can be missed), then its own bookkeeping, then
//! replies — each carrying what the caller needs (a registration's wiring),
//! so no caller re-reads the snapshot — then wiring pushes. Nothing of a
//! batch is visible to readers, and no caller is answered, before it is
//! durable; a batch that changed nothing is answered only after every
//! batch before it was published.
//!
//! Replicas sharing a store (etcd) write one batch at a time instead
//! ([`replicated`]): another replica may commit first, and then the batch
//! is built again on a snapshot that has the other's changes. A pipelined
//! batch is built on a head that is not durable yet, so losing that race
//! would mean rebuilding every batch behind it too; with etcd the round
//! trip to a quorum, not the building, is what a batch waits for.

mod replicated;

use std::sync::Arc;

use switchboard_proto::v1::EventType;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit;
use crate::change::{Change, PURGED};
use crate::error::{RegistryError, RegistryResult};
use crate::feed::Feed;
use crate::mutation::{BatchBuilder, Built, Mutation, Outcome};
use crate::shared::Shared;
use crate::state::{Snapshot, Wiring};
use crate::store::{CommitBatch, Store, StoreError, StoreResult};

/// A mutation and where to send its outcome.
pub(crate) struct Command {
    /// What to change.
    pub mutation: Mutation,
    /// Receives the outcome once it is durable.
    pub reply: oneshot::Sender<RegistryResult<Outcome>>,
}

type Reply = oneshot::Sender<RegistryResult<Outcome>>;

/// The batch mutations are applied to until it closes.
struct Open {
    builder: BatchBuilder,
    replies: Vec<Reply>,
    outcomes: Vec<RegistryResult<Outcome>>,
}

/// A closed batch whose commit is running, and what to publish once it is
/// durable.
struct Flushing {
    commit: JoinHandle<StoreResult<()>>,
    published: Published,
}

/// What a durable batch publishes.
struct Published {
    snapshot: Arc<Snapshot>,
    pushes: Vec<(String, Arc<Wiring>)>,
    replies: Vec<Reply>,
    outcomes: Vec<RegistryResult<Outcome>>,
    transitions: Vec<Arc<Change>>,
    started: tokio::time::Instant,
}

/// The writer's state between wake-ups.
struct Writer {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    /// The newest snapshot: the published one, or the one the batch being
    /// flushed will publish. The open batch builds on it.
    head: Arc<Snapshot>,
    open: Option<Open>,
    flushing: Option<Flushing>,
}

/// Runs until the registry closes, then commits what is queued and flushes.
pub(crate) async fn run(
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    mut inbox: mpsc::Receiver<Command>,
    feed: Feed,
) {
    if feed.is_shared() {
        return replicated::run(shared, store, inbox, feed).await;
    }
    let head = shared.snapshot.load_full();
    let mut writer = Writer { shared, store, head, open: None, flushing: None };
    let max_batch = writer.shared.config.max_batch;
    loop {
        let room = writer.open.as_ref().is_none_or(|open| open.replies.len() < max_batch);
        tokio::select! {
            biased;
            result = flushed(&mut writer.flushing) => {
                if !writer.finish_flush(result) {
                    return writer.stop();
                }
            }
            command = inbox.recv(), if room => match command {
                Some(command) => {
                    writer.apply(command);
                    // Take what else is queued now: one wake-up per batch,
                    // not per command.
                    while writer.open.as_ref().is_some_and(|open| open.replies.len() < max_batch) {
                        match inbox.try_recv() {
                            Ok(command) => writer.apply(command),
                            Err(_) => break,
                        }
                    }
                }
                None => break,
            },
            // The agents are taken from `dirty_status` when the batch closes.
            () = writer.shared.status_changed.notified() => {}
            () = writer.shared.closing.cancelled() => break,
        }
        if writer.flushing.is_none() {
            writer.close_batch();
        }
    }
    // Closing: refuse new work, commit what was already queued.
    inbox.close();
    while let Ok(command) = inbox.try_recv() {
        writer.apply(command);
    }
    if writer.flushing.is_some() {
        let result = flushed(&mut writer.flushing).await;
        if !writer.finish_flush(result) {
            return writer.stop();
        }
    }
    writer.close_batch();
    if writer.flushing.is_some() {
        let result = flushed(&mut writer.flushing).await;
        if !writer.finish_flush(result) {
            return writer.stop();
        }
    }
    if let Err(error) = writer.store.flush().await {
        tracing::error!(%error, "final flush failed");
    }
}

/// Waits for the running commit; never ready when none runs.
async fn flushed(flushing: &mut Option<Flushing>) -> StoreResult<()> {
    let Some(flushing) = flushing else { return std::future::pending().await };
    match (&mut flushing.commit).await {
        Ok(result) => result,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => {
                Err(StoreError::Invalid("commit cancelled: the runtime is shutting down".into()))
            }
        },
    }
}

// === impl Writer ===

impl Writer {
    /// A new batch on the newest snapshot.
    fn new_batch(&self) -> Open {
        let config = &self.shared.config;
        Open {
            builder: BatchBuilder::new(
                &self.head,
                config.history_max_events,
                config.history_max_age,
            ),
            replies: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    /// Applies one mutation to the open batch (opening one if needed).
    fn apply(&mut self, command: Command) {
        let mut open = self.open.take().unwrap_or_else(|| self.new_batch());
        let outcome = open.builder.apply(command.mutation, &mut self.shared.liveness.lock());
        open.outcomes.push(outcome);
        open.replies.push(command.reply);
        self.open = Some(open);
    }

    /// Closes the open batch, with the agents whose status may have changed,
    /// and starts its commit. Only called while no commit runs.
    fn close_batch(&mut self) {
        let dirty = std::mem::take(&mut *self.shared.dirty_status.lock());
        if self.open.is_none() && dirty.is_empty() {
            return;
        }
        let mut open = self.open.take().unwrap_or_else(|| self.new_batch());
        {
            let mut tracker = self.shared.liveness.lock();
            for id in dirty {
                open.builder.sync_status(&id, &mut tracker);
            }
        }
        let Open { builder, replies, mut outcomes } = open;
        if builder.is_empty() {
            // Nothing to write, and every earlier batch is published (the
            // store is free): the head is what callers may see.
            fill_wiring(&self.head, &mut outcomes);
            send_replies(replies, outcomes);
            return;
        }
        let Built { snapshot, batch, pushes } = builder.finish();
        let transitions =
            if self.shared.audit.is_enabled() { transitions(&batch) } else { Vec::new() };
        let snapshot = Arc::new(snapshot);
        self.head = Arc::clone(&snapshot);
        let store = Arc::clone(&self.store);
        let started = tokio::time::Instant::now();
        let commit = tokio::spawn(async move { store.commit(batch).await });
        let published = Published { snapshot, pushes, replies, outcomes, transitions, started };
        self.flushing = Some(Flushing { commit, published });
    }

    /// Publishes the batch whose commit ended; false when it failed.
    fn finish_flush(&mut self, result: StoreResult<()>) -> bool {
        let Some(Flushing { published, .. }) = self.flushing.take() else { return true };
        if let Err(error) = result {
            let Published { replies, outcomes, .. } = published;
            fail(&self.shared, replies, outcomes, &error);
            return false;
        }
        publish(&self.shared, published);
        true
    }

    /// The store failed a write: its state is unknown, so nothing more is
    /// written — not the open batch, not what is queued, not a final flush
    /// (after ENOSPC, sled's flush never returns). Their callers get
    /// "shutting down" when their replies drop.
    fn stop(self) {
        tracing::error!("storage failed: the writer stops without a final flush");
        // sled also flushes when its last handle drops, and that flush never
        // returns after an I/O error: leak the handle, the process is ending.
        std::mem::forget(self.store);
    }
}
/// Answers the callers of a batch whose commit failed, and stops the
/// registry: after a failed write the store's state is unknown (sled
/// poisons itself after an I/O error), so it refuses to go on, like etcd
/// does on a failed fsync; a supervisor restarts it from what is durable.
fn fail(
    shared: &Shared,
    replies: Vec<Reply>,
    outcomes: Vec<RegistryResult<Outcome>>,
    error: &StoreError,
) {
    tracing::error!(%error, "commit failed; stopping the registry");
    shared.closing.cancel();
    let message = error.to_string();
    let failed = || Err(RegistryError::Store(StoreError::Invalid(message.clone())));
    let outcomes = outcomes.into_iter().map(|outcome| outcome.and_then(|_| failed())).collect();
    send_replies(replies, outcomes);
}

/// Publishes a durable batch: snapshot, then the revision that wakes
/// watchers, then bookkeeping, then replies, then wiring pushes.
fn publish(shared: &Shared, published: Published) {
    let Published { snapshot, pushes, replies, mut outcomes, transitions, started } = published;
    shared.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
    fill_wiring(&snapshot, &mut outcomes);
    let revision = snapshot.revision;
    shared.snapshot.store(snapshot);
    // Watchers read the new events from the snapshot's history; this only
    // wakes them, however many there are.
    shared.published.send_replace(revision);
    after_commit(shared, &outcomes);
    // Callers first: a provider joining a popular capability is answered
    // before its thousand dependents are woken. Pushes still follow batch
    // order (one writer, latest value per mailbox), so no dependent is ever
    // pushed a wiring older than one it already got.
    send_replies(replies, outcomes);
    push_wiring(shared, pushes);
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
}

/// The status changes and evictions the registry made by itself in `batch`
/// (callers' changes are recorded by their RPC handlers).
fn transitions(batch: &CommitBatch) -> Vec<Arc<Change>> {
    let own = |change: &&Arc<Change>| match change.kind {
        EventType::StatusChanged => true,
        EventType::Removed => change.reason == PURGED,
        _ => false,
    };
    batch.events.iter().map(|event| &event.change).filter(own).cloned().collect()
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
