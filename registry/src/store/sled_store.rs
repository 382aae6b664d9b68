//! The default embedded store, on sled 0.34.
//!
//! # Layout
//!
//! One sled database per data directory, with four trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `agents` | agent id (UTF-8) | prost-encoded [`Agent`] |
//! | `events` | revision, `u64` big-endian (so keys sort by revision) | prost-encoded [`Event`] |
//! | `meta` | `format`, `epoch`, `revision`, `compact_revision` | `u64` big-endian; `epoch` is a UUID string |
//! | `tokens` | SHA-256 of the token's secret (32 bytes) | prost-encoded [`TokenInfo`] |
//!
//! A token write is its own small write, flushed like a commit (through the
//! same flush gate) before it is acknowledged.
//!
//! `format` is written when the store is created and checked on every open:
//! a store written by a newer layout is refused rather than misread.
//!
//! # Durability and group commit
//!
//! [`Store::commit`] applies the batch in one multi-tree sled transaction,
//! then waits for `Db::flush_async`, and only then returns: the registry
//! acknowledges a write once it is on disk. The registry already batches
//! (it is the single writer and hands the store one batch per group of
//! mutations), so there is one flush per batch. Callers that do commit
//! concurrently still share flushes: flushes go through a gate that lets one
//! flush run at a time, and a commit whose write was covered by a flush that
//! started after it was applied returns without flushing again. The gate also
//! bounds how many of sled's shared IO threads are parked in a flush (sled's
//! flush blocks a pool thread until the log write it started, queued on the
//! same pool, completes).
//!
//! What "on disk" means with sled 0.34.7 on Linux: the flush writes sled's
//! log with `pwrite` then `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`,
//! so an acknowledged batch survives a process crash (`kill -9`) at once;
//! a full `fsync` (file metadata, device cache) comes from sled's background
//! thread every 500 ms, which bounds what a power loss can take.
//!
//! sled calls block, so they run in `spawn_blocking`: a sled transaction
//! takes sled's process-wide write lock, which an in-flight flush holds
//! (shared) until its disk write completes, and it must not stall the async
//! workers that serve heartbeats meanwhile.
//!
//! # Crash ordering
//!
//! Everything a batch changes — agents, new events, `revision`, and a raised
//! `compact_revision` — is one sled transaction, which sled recovers all or
//! nothing. Deleting the compacted events happens *after* that transaction,
//! in small non-transactional write batches (a sled transaction buffers every
//! key it touches and holds sled's process-wide write lock, so deleting a long
//! history inside it would stall every other sled user). sled recovers a
//! prefix of its log, so after a crash we find either neither step, the
//! transaction alone, or the transaction and some deletes.
//!
//! The invariant Watch relies on is "every event above `compact_revision` is
//! present". Raising `compact_revision` *before* deleting keeps it in every
//! one of those crash states: the worst case is stale events below
//! `compact_revision`, which [`Store::load`] skips and the next compaction
//! deletes. The opposite order (delete, then raise) would let a crash leave
//! a hole in the history above `compact_revision`, and a watcher resuming
//! inside the hole would silently miss events.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError, Transactional,
    TransactionalTree,
};
use switchboard_proto::v1::{Agent, Event, TokenInfo};

use super::{CommitBatch, LoadedState, Store, StoreError, StoreResult, StoredToken};

/// Version of the on-disk layout described in the module docs.
const FORMAT_VERSION: u64 = 1;

const AGENTS_TREE: &str = "agents";
const EVENTS_TREE: &str = "events";
const META_TREE: &str = "meta";
const TOKENS_TREE: &str = "tokens";

const META_FORMAT: &str = "format";
const META_EPOCH: &str = "epoch";
const META_REVISION: &str = "revision";
const META_COMPACT_REVISION: &str = "compact_revision";

/// Compacted events are deleted this many per sled write batch.
const COMPACTION_CHUNK: usize = 1024;

/// Size of sled's page cache. Agents and events are read once, at startup;
/// the registry serves from memory, so the cache only needs to hold the
/// pages that writes touch.
const CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// How long [`SledStore::open`] waits for the directory's lock. sled 0.34
/// releases its file lock from background threads shortly after the last
/// handle is dropped, so a store reopened in the same process (a restart in
/// tests, or a restart of the registry inside `switchboard up`) may briefly
/// find it held.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// The default store: an embedded sled database in a data directory.
///
/// A write is acknowledged only once it is flushed to disk, so `kill -9`
/// never loses an acknowledged batch; concurrent commits share flushes.
/// One process may hold a directory at a time.
///
/// # Example
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use switchboard_registry::store::{CommitBatch, SledStore, Store};
///
/// let store = SledStore::open(std::path::Path::new("./switchboard-data"))?;
/// let state = store.load().await?;
/// store.commit(CommitBatch { revision: state.revision, ..Default::default() }).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SledStore {
    inner: Arc<Inner>,
}

/// The database handles, shared with the blocking tasks that use them.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    db: sled::Db,
    agents: sled::Tree,
    events: sled::Tree,
    meta: sled::Tree,
    tokens: sled::Tree,
    /// Shared by writes, exclusive for [`Inner::load`]: sled iterators are
    /// not snapshots, so a load racing a commit could read the old revision
    /// with the new events. Only taken in blocking tasks, never across an
    /// `.await`.
    load_gate: RwLock<()>,
    flush_gate: FlushGate,
}

/// A batch with its records encoded, ready for the transaction.
struct EncodedBatch {
    revision: u64,
    upserts: Vec<(String, bytes::Bytes)>,
    deletes: Vec<String>,
    events: Vec<(u64, Vec<u8>)>,
    compact_before: Option<u64>,
}

/// Serialises flushes and lets each commit skip a flush that already covers
/// it (group commit).
///
/// `applied` counts finished writes and `flushed` the writes known durable.
/// The async mutex is held across the flush on purpose: its queue is the
/// group of commits waiting for the next flush, which runs once for all of
/// them.
#[derive(Debug, Default)]
struct FlushGate {
    applied: AtomicU64,
    flushed: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

// === impl SledStore ===

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// A new store gets its format version, a fresh epoch (a UUID) and
    /// revision 0, flushed before this returns. An existing store's format
    /// version is checked. Error messages name the directory.
    ///
    /// This blocks: it reads sled's log, and may wait up to two seconds for
    /// a lock that a store just dropped in this process still holds. Call it
    /// before serving, or from a blocking task.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let db = open_db(dir)?;
        let open_tree = |name: &str| db.open_tree(name).map_err(|e| with_dir(dir, e));
        let inner = Inner {
            agents: open_tree(AGENTS_TREE)?,
            events: open_tree(EVENTS_TREE)?,
            meta: open_tree(META_TREE)?,
            tokens: open_tree(TOKENS_TREE)?,
            dir: dir.to_path_buf(),
            db,
            load_gate: RwLock::default(),
            flush_gate: FlushGate::default(),
        };
        inner.init()?;
        tracing::debug!(dir = %dir.display(), "opened sled store");
        Ok(Self { inner: Arc::new(inner) })
    }
}

impl Store for SledStore {
    fn load(&self) -> BoxFuture<'_, StoreResult<LoadedState>> {
        let inner = Arc::clone(&self.inner);
        async move { run_blocking(move || inner.load()).await }.boxed()
    }

    fn commit(&self, batch: CommitBatch) -> BoxFuture<'_, StoreResult<()>> {
        let inner = Arc::clone(&self.inner);
        async move {
            let ticket = run_blocking(move || inner.apply(batch)).await?;
            self.inner.flush_gate.flush_through(&self.inner.db, Some(ticket)).await
        }
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'_, StoreResult<()>> {
        async move { self.inner.flush_gate.flush_through(&self.inner.db, None).await }.boxed()
    }

    fn load_tokens(&self) -> BoxFuture<'_, StoreResult<Vec<StoredToken>>> {
        let inner = Arc::clone(&self.inner);
        async move { run_blocking(move || inner.load_tokens()).await }.boxed()
    }

    fn put_token(&self, token: StoredToken) -> BoxFuture<'_, StoreResult<()>> {
        let inner = Arc::clone(&self.inner);
        async move {
            let ticket = run_blocking(move || inner.put_token(&token)).await?;
            self.inner.flush_gate.flush_through(&self.inner.db, Some(ticket)).await
        }
        .boxed()
    }
}

// === impl Inner ===

impl Inner {
    /// Checks the format of an existing store, or initialises a new one.
    fn init(&self) -> StoreResult<()> {
        let in_dir = |error| with_dir(&self.dir, error);
        if let Some(format) = self.meta.get(META_FORMAT).map_err(in_dir)? {
            let format = self.decode_u64(META_FORMAT, &format)?;
            if format != FORMAT_VERSION {
                return Err(self.invalid(format!(
                    "unknown format version {format} (this build reads version {FORMAT_VERSION})"
                )));
            }
            return Ok(());
        }
        if !(self.meta.is_empty() && self.agents.is_empty() && self.events.is_empty()) {
            return Err(self.invalid(format!("meta {META_FORMAT:?} is missing")));
        }
        let epoch = uuid::Uuid::new_v4().to_string();
        let mut batch = sled::Batch::default();
        batch.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes()[..]);
        batch.insert(META_EPOCH, epoch.as_bytes());
        batch.insert(META_REVISION, &0u64.to_be_bytes()[..]);
        batch.insert(META_COMPACT_REVISION, &0u64.to_be_bytes()[..]);
        self.meta.apply_batch(batch).map_err(in_dir)?;
        self.db.flush().map_err(in_dir)?;
        tracing::info!(dir = %self.dir.display(), %epoch, "created a new sled store");
        Ok(())
    }

    /// Reads the whole state. Events below the compact revision (left by a
    /// crash between a compaction's transaction and its deletes) are skipped.
    fn load(&self) -> StoreResult<LoadedState> {
        let _exclusive = self.load_gate.write().unwrap_or_else(PoisonError::into_inner);
        let epoch = self.required(META_EPOCH)?;
        let epoch = std::str::from_utf8(&epoch)
            .ok()
            .filter(|epoch| uuid::Uuid::parse_str(epoch).is_ok())
            .ok_or_else(|| self.invalid(format!("meta {META_EPOCH:?} is not a uuid")))?
            .to_owned();
        let revision = self.decode_u64(META_REVISION, &self.required(META_REVISION)?)?;
        let compact_revision =
            self.decode_u64(META_COMPACT_REVISION, &self.required(META_COMPACT_REVISION)?)?;

        let mut agents = Vec::with_capacity(self.agents.len());
        for entry in self.agents.iter() {
            let (key, value) = entry?;
            let id = String::from_utf8_lossy(&key);
            let agent = Agent::decode(&*value)
                .map_err(|source| StoreError::Corrupt { key: format!("agents/{id}"), source })?;
            if agent.id.as_bytes() != &*key {
                return Err(self.invalid(format!("agents/{id}: record holds agent {:?}", agent.id)));
            }
            agents.push(agent);
        }

        let mut events = Vec::new();
        for entry in self.events.range(compact_revision.to_be_bytes()..) {
            let (key, value) = entry?;
            let at = <[u8; 8]>::try_from(&*key).map(u64::from_be_bytes).map_err(|_| {
                self.invalid(format!("events: key {key:?} is not a big-endian revision"))
            })?;
            let event = Event::decode(&*value)
                .map_err(|source| StoreError::Corrupt { key: format!("events/{at}"), source })?;
            if event.revision != at {
                return Err(
                    self.invalid(format!("events/{at}: record holds revision {}", event.revision))
                );
            }
            if at > revision {
                return Err(
                    self.invalid(format!("events/{at}: beyond the store revision {revision}"))
                );
            }
            events.push(event);
        }

        Ok(LoadedState {
            epoch,
            revision,
            compact_revision,
            agents,
            events,
            ..LoadedState::default()
        })
    }

    /// Every stored token; a key that is not a SHA-256 hash is corruption.
    fn load_tokens(&self) -> StoreResult<Vec<StoredToken>> {
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for entry in self.tokens.iter() {
            let (key, value) = entry?;
            let hash = <[u8; 32]>::try_from(&*key).map_err(|_| {
                self.invalid(format!("tokens: key of {} bytes is not a hash", key.len()))
            })?;
            let info = TokenInfo::decode(&*value).map_err(|source| StoreError::Corrupt {
                key: format!("tokens/{}", hex(&hash[..4])),
                source,
            })?;
            tokens.push(StoredToken { hash, info });
        }
        Ok(tokens)
    }

    /// Writes one token (not yet durable) and returns its flush ticket.
    fn put_token(&self, token: &StoredToken) -> StoreResult<u64> {
        let _shared = self.load_gate.read().unwrap_or_else(PoisonError::into_inner);
        self.tokens.insert(token.hash, token.info.encode_to_vec())?;
        Ok(self.flush_gate.applied.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Applies a batch (not yet durable) and returns its flush ticket.
    fn apply(&self, batch: CommitBatch) -> StoreResult<u64> {
        let batch = EncodedBatch::new(batch)?;
        let _shared = self.load_gate.read().unwrap_or_else(PoisonError::into_inner);
        let compact_revision = self.transact(&batch)?;
        // The batch is applied: a failed delete must not report it as not
        // committed. The leftovers are harmless and the next compaction
        // retries them.
        if batch.compact_before.is_some()
            && let Err(error) = self.delete_events_below(compact_revision)
        {
            tracing::warn!(compact_revision, %error, "failed to delete compacted events");
        }
        Ok(self.flush_gate.applied.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Writes the batch in one transaction; returns the compact revision.
    ///
    /// Only transactional views may be used inside the closure: sled runs it
    /// holding its process-wide write lock, which a plain tree read would try
    /// to take again.
    fn transact(&self, batch: &EncodedBatch) -> StoreResult<u64> {
        let trees = (&self.agents, &self.events, &self.meta);
        trees.transaction(|(agents, events, meta)| batch.write(agents, events, meta)).map_err(
            |error| match error {
                TransactionError::Abort(message) => StoreError::Invalid(message),
                TransactionError::Storage(error) => StoreError::Sled(error),
            },
        )
    }

    /// Deletes the history below `compact_revision`, a chunk per write batch.
    fn delete_events_below(&self, compact_revision: u64) -> StoreResult<()> {
        let end = compact_revision.to_be_bytes();
        let mut deleted = 0usize;
        loop {
            let keys = self
                .events
                .range(..end)
                .keys()
                .take(COMPACTION_CHUNK)
                .collect::<Result<Vec<_>, _>>()?;
            if keys.is_empty() {
                break;
            }
            deleted += keys.len();
            let mut batch = sled::Batch::default();
            for key in keys {
                batch.remove(key);
            }
            self.events.apply_batch(batch)?;
        }
        if deleted > 0 {
            tracing::debug!(compact_revision, deleted, "compacted the event history");
        }
        Ok(())
    }

    fn required(&self, key: &str) -> StoreResult<sled::IVec> {
        self.meta.get(key)?.ok_or_else(|| self.invalid(format!("meta {key:?} is missing")))
    }

    fn decode_u64(&self, key: &str, value: &[u8]) -> StoreResult<u64> {
        u64_from_be(key, value).map_err(|message| self.invalid(message))
    }

    fn invalid(&self, message: String) -> StoreError {
        StoreError::Invalid(format!("store {:?}: {message}", self.dir))
    }
}

// === impl EncodedBatch ===

impl EncodedBatch {
    /// Encodes the records and checks the batch's own consistency: events
    /// strictly increasing and at most `revision`, no agent both upserted and
    /// deleted, `compact_before` at most `revision + 1`.
    fn new(batch: CommitBatch) -> StoreResult<Self> {
        let CommitBatch { revision, upserts, deletes, events, compact_before, .. } = batch;
        let mut previous = None;
        for event in events.iter().map(|event| &event.change) {
            if event.revision > revision || previous.is_some_and(|p| event.revision <= p) {
                return Err(StoreError::Invalid(format!(
                    "batch revision {revision}: event revision {} out of order",
                    event.revision
                )));
            }
            previous = Some(event.revision);
        }
        let upserted: HashSet<&str> = upserts.iter().map(|u| u.agent.id.as_str()).collect();
        if let Some(id) = deletes.iter().find(|id| upserted.contains(id.as_str())) {
            return Err(StoreError::Invalid(format!(
                "batch revision {revision}: agent {id:?} is both upserted and deleted"
            )));
        }
        if compact_before.is_some_and(|before| before > revision.saturating_add(1)) {
            return Err(StoreError::Invalid(format!(
                "batch revision {revision}: compact_before {compact_before:?} is beyond it"
            )));
        }
        Ok(Self {
            revision,
            upserts: upserts
                .iter()
                .map(|upsert| (upsert.agent.id.clone(), upsert.encode()))
                .collect(),
            deletes,
            events: events.iter().map(|event| (event.change.revision, event.encode())).collect(),
            compact_before,
        })
    }

    /// The body of the commit transaction: checks the revision against the
    /// stored one, writes everything, and returns the compact revision
    /// (raised to `compact_before` when that is higher). Rerunnable, as sled
    /// may retry a transaction.
    fn write(
        &self,
        agents: &TransactionalTree,
        events: &TransactionalTree,
        meta: &TransactionalTree,
    ) -> ConflictableTransactionResult<u64, String> {
        let abort = ConflictableTransactionError::Abort;
        let read_u64 = |key: &str| match meta.get(key)? {
            Some(value) => u64_from_be(key, &value).map_err(abort),
            None => Err(abort(format!("meta {key:?} is missing"))),
        };
        let stored = read_u64(META_REVISION)?;
        if self.revision < stored {
            return Err(abort(format!(
                "batch revision {} is below the stored revision {stored}",
                self.revision
            )));
        }
        if let Some((first, _)) = self.events.first().filter(|(at, _)| *at <= stored) {
            return Err(abort(format!(
                "event revision {first} is not above the stored revision {stored}"
            )));
        }
        for id in &self.deletes {
            agents.remove(id.as_bytes())?;
        }
        for (id, value) in &self.upserts {
            agents.insert(id.as_bytes(), &value[..])?;
        }
        for (at, value) in &self.events {
            events.insert(&at.to_be_bytes()[..], value.as_slice())?;
        }
        meta.insert(META_REVISION, &self.revision.to_be_bytes()[..])?;
        let mut compact_revision = read_u64(META_COMPACT_REVISION)?;
        if let Some(before) = self.compact_before.filter(|before| *before > compact_revision) {
            meta.insert(META_COMPACT_REVISION, &before.to_be_bytes()[..])?;
            compact_revision = before;
        }
        Ok(compact_revision)
    }
}

// === impl FlushGate ===

impl FlushGate {
    /// Returns once the write with `ticket` (every write, for `None`) is
    /// durable, flushing unless a flush that started after it already did.
    async fn flush_through(&self, db: &sled::Db, ticket: Option<u64>) -> StoreResult<()> {
        let _turn = self.turn.lock().await;
        if ticket.is_some_and(|ticket| self.flushed.load(Ordering::Acquire) >= ticket) {
            return Ok(());
        }
        // Every write counted here finished before the flush starts, so the
        // flush covers it.
        let target = self.applied.load(Ordering::Acquire);
        db.flush_async().await?;
        self.flushed.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }
}

// === helpers ===

/// Lowercase hex of bytes: names a record without printing it whole, and
/// keys the etcd store's tokens.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Opens the sled database, waiting a little for a lock a store dropped in
/// this process may still hold.
fn open_db(dir: &Path) -> StoreResult<sled::Db> {
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_CAPACITY_BYTES);
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(error) if is_lock_held(&error) && Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY_INTERVAL);
            }
            Err(error) => return Err(with_dir(dir, error)),
        }
    }
}

/// Whether sled failed to take the directory's file lock (sled 0.34 reports
/// it as an `Other` IO error with this message).
fn is_lock_held(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(e) if e.to_string().starts_with("could not acquire lock"))
}

/// Adds the directory to an error from opening the store.
fn with_dir(dir: &Path, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(e) => StoreError::Sled(sled::Error::Io(io::Error::new(
            e.kind(),
            format!("store {dir:?}: {e}"),
        ))),
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => {
            StoreError::Invalid(format!("store {dir:?}: {error}"))
        }
        sled::Error::ReportableBug(message) => {
            StoreError::Sled(sled::Error::ReportableBug(format!("store {dir:?}: {message}")))
        }
        other => StoreError::Sled(other),
    }
}

fn u64_from_be(key: &str, value: &[u8]) -> Result<u64, String> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| format!("meta {key:?}: expected 8 bytes, found {}", value.len()))
}

/// Runs blocking sled work off the async workers (see the module docs). A
/// panic in the work resumes in the caller.
async fn run_blocking<T, F>(work: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> StoreResult<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(StoreError::Sled(sled::Error::Io(io::Error::other(
                "store task cancelled: the runtime is shutting down",
            )))),
        },
    }
}

#[cfg(test)]
mod tests;
