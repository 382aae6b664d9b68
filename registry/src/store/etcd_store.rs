//! The etcd store: the registry's state in an etcd cluster, for operators who
//! want it off the registry's machine, shared by several registry replicas.
//!
//! # Layout
//!
//! Every key sits under one prefix (`--etcd-prefix`, default
//! `/switchboard`), one keyspace per kind, so another keyspace is one more
//! directory and keys this version does not know are left alone:
//!
//! | key | value |
//! |---|---|
//! | `<prefix>/agents/<id>` | prost-encoded [`Agent`]: the agent and all its tools, one value |
//! | `<prefix>/events/<revision, 20 digits>` | prost-encoded [`Event`] (zero-padded so keys sort by revision) |
//! | `<prefix>/meta/format` | `1` |
//! | `<prefix>/meta/epoch` | a UUID, created once with the store |
//! | `<prefix>/meta/revision`, `<prefix>/meta/compact_revision` | decimal |
//! | `<prefix>/writers/<replica>` | the id of the last transaction that replica wrote (see below) |
//! | `<prefix>/owners/<id>` | the replica that owns the agent, attached to that replica's lease (see `owners`) |
//! | `<prefix>/sweeper/<replica>` | a replica standing for sweeper, attached to its lease (see `owners`) |
//!
//! # Epoch
//!
//! The epoch the registry reports is derived from etcd's cluster id and the
//! UUID in `meta/epoch`: an etcd wiped and recreated, or restored from a
//! snapshot (which gets a new cluster id), is a new epoch, so clients
//! resync instead of trusting revisions from another history.
//!
//! # Writes
//!
//! A batch is one etcd transaction that holds only if `meta/revision` still
//! holds the revision the batch was built on and every agent key it touches
//! still has the modification revision this store last saw (from its own
//! commits and its feed). Several replicas on one prefix are so ordered into
//! one dense sequence of registry revisions: when another replica committed
//! first, the transaction writes nothing and the commit fails with
//! [`StoreError::Behind`], naming the stored revision; the registry applies
//! the feed up to it and builds the batch again. etcd acknowledges a
//! transaction once a quorum has it on disk, so an acknowledged batch
//! survives any minority of members failing.
//!
//! # Feed
//!
//! [`Store::feed`] watches the prefix from the revision the load read at and
//! hands the registry the batches the other replicas commit (see `feed`).
//!
//! etcd refuses a transaction over `max-txn-ops` (128 operations) or
//! `max-request-bytes` (1.5 MiB). An agent is one value, and its event
//! carries it again, so an agent may encode to at most
//! [`MAX_AGENT_BYTES`] (registrations above get `INVALID_ARGUMENT`). A batch
//! too large for one transaction is refused unwritten
//! ([`StoreError::TooLarge`]) and the writer commits it as several smaller
//! batches (only `store copy`, the store's sole writer, writes one in
//! parts): one written in parts would compare the same base revision in
//! every part while only the last moves it, so another replica's batch
//! could commit between two parts with the same revisions and one of the
//! two would lose its events.
//!
//! # Reachability
//!
//! A background probe reads `meta/format` linearizably (which needs a
//! quorum) every [`PROBE_INTERVAL`]; commits report too. The registry is
//! not ready (`/readyz` answers 503 naming `etcd`) while etcd cannot take
//! writes, so a load balancer sends clients to a registry that can.
//!
//! etcd being briefly unreachable (a leader election, a member down) does
//! not fail a commit: the transaction is retried with backoff, for up to
//! [`COMMIT_RETRY`] while the probe finds a quorum, for a leader election's
//! time ([`ELECTION`]) once it does not — a replica without etcd refuses
//! writes with UNAVAILABLE (and the registry refuses them before they reach
//! etcd while the probe says it is unreachable) instead of holding callers. A commit whose answer never
//! came may still have been applied: the feed then delivers it, like any
//! other batch. A retry after an answer that never came first reads
//! this replica's `writers/` key to learn whether the earlier attempt was
//! applied, so a batch is never written twice (one key per replica: another
//! replica's commit in between does not hide the answer).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use prost::Message;
use sha2::{Digest as _, Sha256};
use switchboard_etcd::pb::{Compare, KeyValue, RequestOp, TxnRequest, TxnResponse, response_op};
use switchboard_etcd::{EtcdClient, EtcdConfig, ops};
use switchboard_proto::v1::{Agent, Event, TokenInfo};

use super::{
    Claims, CommitBatch, FeedBatch, LoadedState, Store, StoreError, StoreResult, StoredToken,
};

mod feed;
mod owners;

/// Version of the layout described in the module docs.
const FORMAT_VERSION: &str = "1";

/// Largest encoded agent: its value and its event share one transaction,
/// which must stay under etcd's 1.5 MiB request limit.
pub const MAX_AGENT_BYTES: usize = 700 * 1024;

/// Operations per transaction, below etcd's default `max-txn-ops` (128) with
/// room for the bookkeeping writes.
const MAX_TXN_OPS: usize = 120;

/// Bytes of keys and values per transaction, below etcd's default
/// `max-request-bytes` (1.5 MiB) with room for framing.
const MAX_TXN_BYTES: usize = 1_450 * 1024;

/// How often the store checks that etcd has a quorum.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// How long a commit keeps retrying while the probe still finds a quorum
/// (a member down, a leader election).
pub const COMMIT_RETRY: Duration = Duration::from_secs(30);

/// How long a commit keeps retrying once the probe finds no quorum: a
/// leader election, not an outage.
const ELECTION: Duration = Duration::from_secs(3);

/// Failed probes in a row before etcd counts as unreachable: one call to a
/// member that just died fails before the client stops using it.
const PROBE_FAILURES: u32 = 2;

/// The etcd store (see the module docs).
///
/// ```no_run
/// # async fn demo() -> Result<(), switchboard_registry::store::StoreError> {
/// use switchboard_etcd::EtcdConfig;
/// use switchboard_registry::store::{EtcdStore, Store};
///
/// let config = EtcdConfig::new(["127.0.0.1:2379"]);
/// let store = EtcdStore::open(config, "/switchboard").await?;
/// let state = store.load().await?;
/// println!("{} agents at revision {}", state.agents.len(), state.revision);
/// # Ok(()) }
/// ```
pub struct EtcdStore {
    client: EtcdClient,
    prefix: String,
    /// This store's id among the replicas sharing the prefix: names its
    /// `writers/` key (the id of its last transaction).
    replica: String,
    known: Arc<Mutex<Known>>,
    /// Claims for the owner task, once the feed started it.
    claims: Mutex<Option<Arc<Claims>>>,
    reachable: tokio::sync::watch::Sender<bool>,
    /// Whether this replica is the sweeper (see `owners`).
    sweeper: tokio::sync::watch::Sender<bool>,
    /// Stops the background tasks (probe, feed).
    stop: tokio_util::sync::CancellationToken,
    /// Cancels `stop` when the store is dropped.
    _tasks: tokio_util::sync::DropGuard,
}

/// What the store last saw of the keys it compares on.
///
/// The feed reports other replicas' changes after this store may have
/// committed newer ones to the same keys: a change older than what is known
/// of a key is ignored, and a key this store deleted keeps the revision of
/// the deletion until the feed has passed it.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// Modification revision of each existing agent's key.
    pub agents: HashMap<String, i64>,
    /// Agents this store deleted, and the etcd revision of the deletion,
    /// until the feed reaches it.
    pub deleted: HashMap<String, i64>,
    /// The etcd revision the last load read at: the feed starts after it.
    pub loaded_at: i64,
}

// === impl Known ===

impl Known {
    /// The feed saw agent `id` written (or deleted, `written` false) at
    /// etcd revision `at`.
    pub fn observed(&mut self, id: &str, at: i64, written: bool) {
        let newer_known = self.agents.get(id).is_some_and(|&known| known > at)
            || self.deleted.get(id).is_some_and(|&known| known > at);
        if newer_known {
            return;
        }
        self.deleted.remove(id);
        if written {
            self.agents.insert(id.to_owned(), at);
        } else {
            self.agents.remove(id);
        }
    }
}

/// One transaction of a batch: its compares and writes, and what they do
/// to the known modification revisions once applied.
#[derive(Default)]
struct Chunk {
    compares: Vec<Compare>,
    ops: Vec<RequestOp>,
    bytes: usize,
    upserted: Vec<String>,
    deleted: Vec<String>,
}

// === impl EtcdStore ===

impl EtcdStore {
    /// Connects to etcd and opens the store under `prefix` (a path starting
    /// with `/`), creating it when the prefix is empty.
    pub async fn open(config: EtcdConfig, prefix: &str) -> StoreResult<Self> {
        let prefix = prefix.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') || prefix.contains("//") {
            return Err(StoreError::Invalid(format!(
                "etcd prefix {prefix:?}: want an absolute path such as /switchboard"
            )));
        }
        let client = EtcdClient::connect(config).await?;
        let (reachable, _) = tokio::sync::watch::channel(true);
        let stop = tokio_util::sync::CancellationToken::new();
        let store = Self {
            client,
            prefix,
            replica: uuid::Uuid::new_v4().simple().to_string(),
            known: Arc::new(Mutex::new(Known::default())),
            claims: Mutex::new(None),
            reachable,
            sweeper: tokio::sync::watch::Sender::new(false),
            stop: stop.clone(),
            _tasks: stop.clone().drop_guard(),
        };
        store.init().await?;
        tokio::spawn(probe(
            store.client.clone(),
            store.meta("format"),
            store.reachable.clone(),
            stop,
        ));
        Ok(store)
    }

    /// The client this store uses (for tools that read the same etcd).
    pub fn client(&self) -> &EtcdClient {
        &self.client
    }

    /// Writes the format, a new epoch and revision 0 unless the store
    /// exists; checks the format of an existing one.
    async fn init(&self) -> StoreResult<()> {
        let epoch = uuid::Uuid::new_v4().to_string();
        let response = self
            .client
            .txn(TxnRequest {
                compare: vec![ops::absent(self.meta("epoch"))],
                success: vec![
                    ops::put(self.meta("format"), FORMAT_VERSION),
                    ops::put(self.meta("epoch"), epoch.as_str()),
                    ops::put(self.meta("revision"), "0"),
                    ops::put(self.meta("compact_revision"), "0"),
                ],
                failure: vec![ops::get(self.meta("format"))],
            })
            .await?;
        if response.succeeded {
            tracing::info!(prefix = %self.prefix, %epoch, "created a new etcd store");
            return Ok(());
        }
        let format = self.client.get(self.meta("format")).await?.map(|kv| kv.value);
        if format.as_deref() != Some(FORMAT_VERSION.as_bytes()) {
            return Err(self.invalid(format!(
                "unknown format {:?} (this build reads {FORMAT_VERSION})",
                format.map(|f| String::from_utf8_lossy(&f).into_owned())
            )));
        }
        Ok(())
    }

    async fn load_state(&self) -> StoreResult<LoadedState> {
        let root = format!("{}/", self.prefix);
        let (kvs, loaded_at) = self.client.get_prefix(root.as_bytes()).await?;
        let cluster_id = self.client.cluster_id().await?;
        let mut meta = HashMap::new();
        let mut agents = Vec::new();
        let mut agent_mods = HashMap::new();
        let mut events = Vec::new();
        let mut owners = HashMap::new();
        for kv in kvs {
            let key = String::from_utf8_lossy(&kv.key[root.len()..]).into_owned();
            match key.split_once('/') {
                Some(("meta", name)) => {
                    meta.insert(name.to_owned(), kv);
                }
                Some(("agents", id)) => {
                    let agent = Agent::decode(&*kv.value)
                        .map_err(|source| StoreError::Corrupt { key: key.clone(), source })?;
                    if agent.id != id {
                        return Err(
                            self.invalid(format!("{key}: record holds agent {:?}", agent.id))
                        );
                    }
                    agent_mods.insert(agent.id.clone(), kv.mod_revision);
                    agents.push(agent);
                }
                Some(("events", at)) => {
                    let at: u64 =
                        at.parse().map_err(|_| self.invalid(format!("{key}: not a revision")))?;
                    let event = Event::decode(&*kv.value)
                        .map_err(|source| StoreError::Corrupt { key: key.clone(), source })?;
                    if event.revision != at {
                        return Err(self
                            .invalid(format!("{key}: record holds revision {}", event.revision)));
                    }
                    events.push(event);
                }
                Some(("owners", id)) => {
                    owners.insert(id.to_owned(), String::from_utf8_lossy(&kv.value).into_owned());
                }
                // Keyspaces of other versions or features are not ours to read.
                _ => {}
            }
        }
        let text = |name: &str| -> StoreResult<(String, i64)> {
            let kv =
                meta.get(name).ok_or_else(|| self.invalid(format!("meta/{name} is missing")))?;
            Ok((String::from_utf8_lossy(&kv.value).into_owned(), kv.mod_revision))
        };
        let number = |name: &str| -> StoreResult<(u64, i64)> {
            let (value, mod_revision) = text(name)?;
            let value = value
                .parse()
                .map_err(|_| self.invalid(format!("meta/{name}: {value:?} is not a number")))?;
            Ok((value, mod_revision))
        };
        let (revision, _) = number("revision")?;
        let (compact_revision, _) = number("compact_revision")?;
        let (stored_epoch, _) = text("epoch")?;
        // Events above the revision were left by a batch cut short between
        // its transactions: that batch never committed.
        events.retain(|event| (compact_revision..=revision).contains(&event.revision));
        events.sort_by_key(|event| event.revision);
        *self.known.lock() = Known { agents: agent_mods, deleted: HashMap::new(), loaded_at };
        Ok(LoadedState {
            epoch: derive_epoch(cluster_id, &stored_epoch),
            revision,
            compact_revision,
            agents,
            events,
            owners,
        })
    }

    /// Commits `batch` in one transaction, or in several when `alone` (no
    /// other writer can interleave).
    async fn commit_batch(&self, batch: CommitBatch, alone: bool) -> StoreResult<()> {
        let mut chunks = self.chunks(&batch)?;
        let count = chunks.len();
        if count > 1 && !alone {
            // Every part would compare the same base revision, and only the
            // last moves it: another replica's batch could pass its compares
            // between two parts and overwrite these events. So a batch is
            // one transaction or nothing; the writer splits it.
            return Err(StoreError::TooLarge {
                mutations: batch.events.len(),
                transactions: count,
            });
        }
        for (index, chunk) in chunks.iter_mut().enumerate() {
            let nonce = format!("{}-{index}-{}", batch.revision, uuid::Uuid::new_v4());
            let base = batch.base_revision.to_string();
            chunk.compares.push(ops::value_is(self.meta("revision"), base));
            chunk.ops.push(ops::put(self.writer_key(), nonce.as_str()));
            if index + 1 == count {
                chunk.ops.push(ops::put(self.meta("revision"), batch.revision.to_string()));
            }
            let applied = self.apply(chunk, &nonce, batch.base_revision).await?;
            let mut known = self.known.lock();
            for id in chunk.upserted.drain(..) {
                known.deleted.remove(&id);
                known.agents.insert(id, applied);
            }
            for id in chunk.deleted.drain(..) {
                known.agents.remove(&id);
                known.deleted.insert(id, applied);
            }
        }
        Ok(())
    }

    /// Splits a batch into transactions within etcd's limits: events, then
    /// the compaction, then agents; `meta/revision` is added to the last.
    fn chunks(&self, batch: &CommitBatch) -> StoreResult<Vec<Chunk>> {
        let mut chunks = vec![Chunk::default()];
        let mut add = |compare: Option<Compare>, op: RequestOp, bytes: usize| {
            let fits = |chunk: &Chunk| {
                chunk.ops.len() < MAX_TXN_OPS && chunk.bytes + bytes <= MAX_TXN_BYTES
            };
            let chunk = match chunks.last_mut() {
                Some(chunk) if fits(chunk) => chunk,
                _ => {
                    chunks.push(Chunk::default());
                    let last = chunks.len() - 1;
                    &mut chunks[last]
                }
            };
            chunk.compares.extend(compare);
            chunk.ops.push(op);
            chunk.bytes += bytes;
            chunks.len() - 1
        };
        for event in &batch.events {
            let key = self.event_key(event.change.revision);
            let value = event.encode();
            let bytes = key.len() + value.len();
            add(None, ops::put(key, value), bytes);
        }
        if let Some(before) = batch.compact_before {
            add(None, ops::delete_range(self.event_key(0), self.event_key(before)), 64);
            add(None, ops::put(self.meta("compact_revision"), before.to_string()), 64);
        }
        let known: HashMap<String, i64> = {
            let known = self.known.lock();
            let touched = batch.upserts.iter().map(|upsert| &upsert.agent.id).chain(&batch.deletes);
            touched.filter_map(|id| Some((id.clone(), *known.agents.get(id)?))).collect()
        };
        let mut upserted = Vec::new();
        for upsert in &batch.upserts {
            let (agent, value) = (&upsert.agent, upsert.encode());
            let key = self.agent_key(&agent.id);
            if value.len() > MAX_AGENT_BYTES {
                return Err(self.invalid(format!(
                    "agent {:?} encodes to {} bytes, over the {MAX_AGENT_BYTES} bytes one etcd value may hold",
                    agent.id,
                    value.len()
                )));
            }
            let compare =
                ops::mod_revision_is(key.clone(), known.get(&agent.id).copied().unwrap_or(0));
            let bytes = 2 * key.len() + value.len();
            upserted.push((add(Some(compare), ops::put(key, value), bytes), agent.id.clone()));
        }
        let mut deleted = Vec::new();
        for id in &batch.deletes {
            let key = self.agent_key(id);
            let compare = ops::mod_revision_is(key.clone(), known.get(id).copied().unwrap_or(0));
            let bytes = 2 * key.len();
            let chunk = add(Some(compare), ops::delete(key), bytes);
            // A removed agent has no owner (its lease would drop the key
            // only when its replica stops).
            let owner = self.owner_key(id);
            let owner_bytes = owner.len();
            add(None, ops::delete(owner), owner_bytes);
            deleted.push((chunk, id.clone()));
        }
        for (index, id) in upserted {
            chunks[index].upserted.push(id);
        }
        for (index, id) in deleted {
            chunks[index].deleted.push(id);
        }
        Ok(chunks)
    }

    /// Applies one transaction, retrying while etcd is unreachable; returns
    /// its revision.
    async fn apply(&self, chunk: &Chunk, nonce: &str, base: u64) -> StoreResult<i64> {
        let request = TxnRequest {
            compare: chunk.compares.clone(),
            success: chunk.ops.clone(),
            // Refused: which revision the store is at says why.
            failure: vec![ops::get(self.meta("revision"))],
        };
        let started = tokio::time::Instant::now();
        let deadline = started + COMMIT_RETRY;
        let mut backoff = Duration::from_millis(50);
        let mut unanswered = false;
        loop {
            let attempt = async {
                if unanswered && let Some(revision) = self.applied(nonce).await? {
                    return Ok(revision);
                }
                let response = self.client.txn(request.clone()).await?;
                if !response.succeeded {
                    return Err(self.refused(&response, base));
                }
                Ok(response.header.map_or(0, |header| header.revision))
            };
            match attempt.await {
                Ok(revision) => {
                    self.reachable.send_if_modified(|up| !std::mem::replace(up, true));
                    return Ok(revision);
                }
                Err(StoreError::Etcd(error))
                    if error.is_unavailable() && self.keep_trying(started, deadline) =>
                {
                    tracing::warn!(%error, "etcd unreachable; retrying the commit");
                    unanswered = true;
                }
                Err(error) => return Err(error),
            }
            let jitter = rand::random_range(0..=backoff.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Whether a commit that began at `started` retries once more.
    fn keep_trying(&self, started: tokio::time::Instant, deadline: tokio::time::Instant) -> bool {
        let now = tokio::time::Instant::now();
        now < deadline && (*self.reachable.borrow() || now < started + ELECTION)
    }

    /// Why etcd refused a transaction built on `base`: another replica
    /// committed first ([`StoreError::Behind`]), or an agent record changed
    /// without the revision moving (a writer that does not follow this
    /// layout).
    fn refused(&self, response: &TxnResponse, base: u64) -> StoreError {
        let stored = response
            .responses
            .first()
            .and_then(|op| match &op.response {
                Some(response_op::Response::ResponseRange(range)) => range.kvs.first(),
                _ => None,
            })
            .and_then(|kv| std::str::from_utf8(&kv.value).ok()?.parse::<u64>().ok());
        match stored {
            Some(stored) if stored > base => StoreError::Behind { stored },
            _ => StoreError::Conflict(format!(
                "etcd prefix {:?} was changed by another writer (stored revision {stored:?}, \
                 this registry is at {base})",
                self.prefix
            )),
        }
    }

    /// The revision of the transaction `nonce` when etcd applied it.
    async fn applied(&self, nonce: &str) -> StoreResult<Option<i64>> {
        let marker: Option<KeyValue> = self.client.get(self.writer_key()).await?;
        Ok(marker.filter(|kv| kv.value == nonce.as_bytes()).map(|kv| kv.mod_revision))
    }

    fn meta(&self, name: &str) -> Vec<u8> {
        format!("{}/meta/{name}", self.prefix).into_bytes()
    }

    /// The id of the last transaction this replica wrote.
    fn writer_key(&self) -> Vec<u8> {
        format!("{}/writers/{}", self.prefix, self.replica).into_bytes()
    }

    fn owner_key(&self, id: &str) -> Vec<u8> {
        format!("{}/owners/{id}", self.prefix).into_bytes()
    }

    fn agent_key(&self, id: &str) -> Vec<u8> {
        format!("{}/agents/{id}", self.prefix).into_bytes()
    }

    /// Tokens sit beside agents, outside the revisioned state: a token
    /// write is one plain put (etcd acknowledges it once a quorum has it).
    fn token_key(&self, hash: &[u8; 32]) -> Vec<u8> {
        format!("{}/tokens/{}", self.prefix, super::sled_store::hex(hash)).into_bytes()
    }

    async fn load_token_records(&self) -> StoreResult<Vec<StoredToken>> {
        let root = format!("{}/tokens/", self.prefix);
        let (kvs, _) = self.client.get_prefix(root.as_bytes()).await?;
        let mut tokens = Vec::with_capacity(kvs.len());
        for kv in kvs {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let hash = parse_hash(&key[root.len()..])
                .ok_or_else(|| self.invalid(format!("{key}: not a token hash")))?;
            let info = TokenInfo::decode(&*kv.value)
                .map_err(|source| StoreError::Corrupt { key: key.clone(), source })?;
            tokens.push(StoredToken { hash, info });
        }
        Ok(tokens)
    }

    fn event_key(&self, revision: u64) -> Vec<u8> {
        format!("{}/events/{revision:020}", self.prefix).into_bytes()
    }

    fn invalid(&self, message: String) -> StoreError {
        StoreError::Invalid(format!("etcd store {:?}: {message}", self.prefix))
    }
}

impl Store for EtcdStore {
    fn load(&self) -> BoxFuture<'_, StoreResult<LoadedState>> {
        self.load_state().boxed()
    }

    fn commit(&self, batch: CommitBatch) -> BoxFuture<'_, StoreResult<()>> {
        self.commit_batch(batch, false).boxed()
    }

    fn commit_alone(&self, batch: CommitBatch) -> BoxFuture<'_, StoreResult<()>> {
        self.commit_batch(batch, true).boxed()
    }

    /// etcd acknowledged every commit once a quorum had it on disk.
    fn flush(&self) -> BoxFuture<'_, StoreResult<()>> {
        async { Ok(()) }.boxed()
    }

    /// A registration is measured before it becomes a record (which adds
    /// its status and timestamps): keep a margin for those.
    fn max_agent_bytes(&self) -> Option<usize> {
        Some(MAX_AGENT_BYTES - 4096)
    }

    fn reachable(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        Some(self.reachable.subscribe())
    }

    fn feed(&self) -> Option<tokio::sync::mpsc::Receiver<FeedBatch>> {
        let (batches, inbox) = tokio::sync::mpsc::channel(feed::QUEUE);
        let task = feed::FeedTask {
            client: self.client.clone(),
            root: format!("{}/", self.prefix).into_bytes(),
            known: self.known.clone(),
            batches,
            stop: self.stop.clone(),
        };
        let start = self.known.lock().loaded_at + 1;
        tokio::spawn(task.run(start));
        let claims = Arc::new(Claims::default());
        let owner = owners::OwnerTask {
            client: self.client.clone(),
            root: format!("{}/owners/", self.prefix),
            replica: self.replica.clone(),
            claims: claims.clone(),
            candidates: format!("{}/sweeper/", self.prefix),
            sweeper: self.sweeper.clone(),
            stop: self.stop.clone(),
        };
        tokio::spawn(owner.run());
        *self.claims.lock() = Some(claims);
        Some(inbox)
    }

    fn replica(&self) -> Option<String> {
        Some(self.replica.clone())
    }

    fn claims(&self) -> Option<Arc<Claims>> {
        self.claims.lock().clone()
    }

    fn sweeper(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        Some(self.sweeper.subscribe())
    }

    /// etcd's reads are linearizable unless asked otherwise: this one sees
    /// every transaction acknowledged before it.
    fn committed_revision(&self) -> BoxFuture<'_, StoreResult<Option<u64>>> {
        async move {
            let key = self.meta("revision");
            let Some(kv) = self.client.get(key).await? else { return Ok(Some(0)) };
            let text = std::str::from_utf8(&kv.value).ok();
            match text.and_then(|t| t.parse::<u64>().ok()) {
                Some(revision) => Ok(Some(revision)),
                None => Err(StoreError::Invalid(format!(
                    "{}/meta/revision is not a decimal revision",
                    self.prefix
                ))),
            }
        }
        .boxed()
    }

    fn load_tokens(&self) -> BoxFuture<'_, StoreResult<Vec<StoredToken>>> {
        self.load_token_records().boxed()
    }

    fn token(&self, hash: &[u8; 32]) -> BoxFuture<'_, StoreResult<Option<StoredToken>>> {
        let hash = *hash;
        async move {
            let key = self.token_key(&hash);
            let Some(kv) = self.client.get(key).await? else { return Ok(None) };
            let info = TokenInfo::decode(&*kv.value).map_err(|source| StoreError::Corrupt {
                key: String::from_utf8_lossy(&kv.key).into_owned(),
                source,
            })?;
            Ok(Some(StoredToken { hash, info }))
        }
        .boxed()
    }

    fn put_token(&self, token: StoredToken) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let key = self.token_key(&token.hash);
            self.client.put(key, token.info.encode_to_vec(), 0).await?;
            Ok(())
        }
        .boxed()
    }
}

/// The 32 bytes of a 64-digit lowercase hex string.
fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(hash)
}

/// Reads `key` linearizably every [`PROBE_INTERVAL`] until `stop`, and
/// publishes whether etcd answered.
async fn probe(
    client: EtcdClient,
    key: Vec<u8>,
    reachable: tokio::sync::watch::Sender<bool>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut failures = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
        let answered = tokio::select! {
            () = stop.cancelled() => return,
            read = client.get(key.clone()) => read,
        };
        let answered = match answered {
            Ok(_) => true,
            Err(error) if error.is_unavailable() => false,
            // etcd answered (with a refusal): it is there.
            Err(_) => true,
        };
        failures = if answered { 0 } else { failures + 1 };
        let up = failures < PROBE_FAILURES;
        if reachable.send_if_modified(|was| std::mem::replace(was, up) != up) {
            if up {
                tracing::info!("etcd reachable again");
            } else {
                tracing::warn!("etcd unreachable: the registry reports not ready");
            }
        }
    }
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").field("prefix", &self.prefix).finish()
    }
}

/// The registry's epoch: a UUID-shaped hash of the cluster id and the
/// store's own UUID, so a new etcd cluster is a new epoch.
fn derive_epoch(cluster_id: u64, stored: &str) -> String {
    let hash = Sha256::digest(format!("{cluster_id:016x}/{stored}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}
