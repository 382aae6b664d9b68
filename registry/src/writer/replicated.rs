//! The writer of a registry that shares its store with other replicas.
//!
//! One batch at a time: the batch is built on the published snapshot and
//! committed with a compare on the stored revision. When another replica
//! committed first, the writer applies the store's feed up to the stored
//! revision and builds the batch again from the same mutations (ownership
//! and validation checked again on the new snapshot), so a caller is only
//! answered once its write is committed, and a lost race costs a retry,
//! never a stop. Between batches it applies what the other replicas
//! committed, so its next batch starts from their changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Command, Published, Reply, fail, fill_wiring, publish, send_replies, transitions};
use crate::error::{RegistryError, RegistryResult};
use crate::feed::{self, Feed};
use crate::mutation::{BatchBuilder, Built, Mutation, Outcome};
use crate::shared::Shared;
use crate::store::{Store, StoreError};

/// Runs until the registry closes, then commits what is queued and flushes.
pub(super) async fn run(
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
            // The store's state is unknown: nothing more is written.
            tracing::error!("storage failed: the writer stops without a final flush");
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

/// Commits one batch, building it again each time another replica commits
/// first; false when the store failed (the registry is closing).
async fn commit_batch(
    shared: &Shared,
    store: &dyn Store,
    feed: &mut Feed,
    commands: Vec<Command>,
) -> bool {
    let dirty = std::mem::take(&mut *shared.dirty_status.lock());
    commit_batch_with(shared, store, feed, commands, dirty).await
}

/// [`commit_batch`] of `commands` and the status changes of `dirty`; one
/// too large for one atomic write is committed in halves.
async fn commit_batch_with(
    shared: &Shared,
    store: &dyn Store,
    feed: &mut Feed,
    commands: Vec<Command>,
    dirty: BTreeSet<String>,
) -> bool {
    let (mutations, replies): (Vec<Mutation>, Vec<Reply>) =
        commands.into_iter().map(|command| (command.mutation, command.reply)).unzip();
    let mut retries = 0;
    loop {
        let current = shared.snapshot.load_full();
        let mut builder = BatchBuilder::new(
            &current,
            shared.config.history_max_events,
            shared.config.history_max_age,
        );
        let mut outcomes = Vec::with_capacity(mutations.len());
        {
            let mut tracker = shared.liveness.lock();
            for mutation in mutations.iter().cloned() {
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
        let started = tokio::time::Instant::now();
        if let Some(error) = feed::unreachable(shared) {
            refuse(shared, replies, outcomes, dirty, &error);
            return true;
        }
        match store.commit(batch).await {
            Ok(()) => {
                feed::claim_registered(shared, &outcomes);
                let snapshot = Arc::new(snapshot);
                publish(
                    shared,
                    Published { snapshot, pushes, replies, outcomes, transitions, started },
                );
                return true;
            }
            Err(StoreError::Behind { stored }) if retries < feed::MAX_RETRIES => {
                retries += 1;
                tracing::debug!(stored, retries, "another replica committed first; building again");
                // Two busy replicas retrying at once collide again: a random
                // pause, growing with the losses, lets one of them through.
                let ceiling = (1u64 << retries.min(6)).min(50);
                let pause = rand::random_range(0..=ceiling * 1000);
                tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
                if let Err(error) = feed.catch_up(shared, stored).await {
                    refuse(shared, replies, outcomes, dirty, &error);
                    return true;
                }
            }
            Err(error @ StoreError::TooLarge { .. }) => {
                let commands = replies
                    .into_iter()
                    .zip(mutations)
                    .map(|(reply, mutation)| Command { mutation, reply })
                    .collect();
                return match halves(commands, dirty) {
                    Ok([(first, first_dirty), (second, second_dirty)]) => {
                        Box::pin(commit_batch_with(shared, store, feed, first, first_dirty)).await
                            && Box::pin(commit_batch_with(
                                shared,
                                store,
                                feed,
                                second,
                                second_dirty,
                            ))
                            .await
                    }
                    Err((replies, dirty)) => {
                        let error = RegistryError::Store(error);
                        refuse(shared, replies, outcomes, dirty, &error);
                        true
                    }
                };
            }
            Err(error @ StoreError::Behind { .. }) => {
                refuse(shared, replies, outcomes, dirty, &RegistryError::Store(error));
                return true;
            }
            // The store lost its service: nothing is known to be broken, the
            // write may even have been applied (the feed then brings it).
            // Refuse, and go on serving.
            Err(StoreError::Etcd(error)) if error.is_unavailable() => {
                let error = RegistryError::Store(StoreError::Unavailable(format!(
                    "etcd is unreachable ({error}): writes are refused until it answers again"
                )));
                refuse(shared, replies, outcomes, dirty, &error);
                return true;
            }
            Err(error) => {
                fail(shared, replies, outcomes, &error);
                return false;
            }
        }
    }
}

/// Commands and status changes committed as one batch.
type Part = (Vec<Command>, BTreeSet<String>);

/// A batch too large for one atomic write, in two halves; a single change
/// cannot be split (its replies and statuses come back).
fn halves(
    commands: Vec<Command>,
    dirty: BTreeSet<String>,
) -> Result<[Part; 2], (Vec<Reply>, BTreeSet<String>)> {
    if commands.len() + dirty.len() <= 1 {
        return Err((commands.into_iter().map(|command| command.reply).collect(), dirty));
    }
    let mut commands = commands;
    let later_commands = commands.split_off(commands.len() / 2);
    let mut dirty = dirty;
    let later_dirty = match dirty.iter().nth(dirty.len() / 2).cloned() {
        Some(middle) => dirty.split_off(&middle),
        None => BTreeSet::new(),
    };
    Ok([(commands, dirty), (later_commands, later_dirty)])
}

/// Refuses a batch that could not commit, without stopping: the store is
/// fine, another replica kept winning (or its changes did not arrive in
/// time). The status changes it carried stay due.
fn refuse(
    shared: &Shared,
    replies: Vec<Reply>,
    outcomes: Vec<RegistryResult<Outcome>>,
    dirty: BTreeSet<String>,
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
