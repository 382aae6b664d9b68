//! Id rewriting both ways. Requests an agent sends mid-call (elicitation,
//! sampling…) reach the client under a gateway id, mapped back to the
//! upstream session and the agent's own id when the client answers; calls
//! in flight are indexed by the client's id so its `notifications/cancelled`
//! reaches the right upstream request. Calls that gave a progress token
//! are indexed by it too, so progress an agent sends on its session stream
//! reaches the call's own stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::upstream::UpstreamSession;

/// Prefix of the ids the gateway gives requests it relays to clients.
const RELAY_PREFIX: &str = "switchboard-";

/// Where a relayed request came from.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub endpoint: String,
    pub session: UpstreamSession,
    pub upstream_id: Box<RawValue>,
    /// The gateway client it was relayed to.
    pub client: String,
}

/// One call in flight upstream.
#[derive(Debug, Clone)]
pub(crate) struct InFlightCall {
    pub endpoint: String,
    pub session: UpstreamSession,
    pub upstream_id: u64,
    pub cancel: CancellationToken,
}

/// The relay's tables.
#[derive(Default)]
pub(crate) struct Relay {
    next: AtomicU64,
    relayed: Mutex<HashMap<String, Origin>>,
    calls: Mutex<HashMap<(String, String), InFlightCall>>,
    /// (client, progress token as JSON text) → the call's stream.
    progress: Mutex<HashMap<(String, String), mpsc::Sender<Bytes>>>,
}

// === impl Relay ===

impl Relay {
    /// A fresh upstream request id (unique across every upstream session).
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a request from upstream; returns the gateway id (JSON text).
    pub fn relay(&self, origin: Origin) -> String {
        let id = format!("\"{RELAY_PREFIX}{}\"", self.next_id());
        self.relayed.lock().insert(id.clone(), origin);
        id
    }

    /// Takes the origin of the relayed request `id` (JSON text) answered by `client`.
    pub fn answered(&self, client: &str, id: &str) -> Option<Origin> {
        if !id.starts_with(&format!("\"{RELAY_PREFIX}")) {
            return None;
        }
        let mut relayed = self.relayed.lock();
        if relayed.get(id).is_some_and(|o| o.client == client) {
            return relayed.remove(id);
        }
        None
    }

    /// Drops relayed requests of a finished call.
    pub fn forget(&self, ids: &[String]) {
        let mut relayed = self.relayed.lock();
        for id in ids {
            relayed.remove(id);
        }
    }

    /// Records a call in flight for `client` under its id (JSON text).
    pub fn start(&self, client: &str, id: &str, call: InFlightCall) {
        self.calls.lock().insert((client.to_owned(), id.to_owned()), call);
    }

    /// The call `client` knows as `id`, removed.
    pub fn finish(&self, client: &str, id: &str) -> Option<InFlightCall> {
        self.calls.lock().remove(&(client.to_owned(), id.to_owned()))
    }

    /// Routes progress for `token` (JSON text) of `client` to `sink` until
    /// [`Relay::unwatch`].
    pub fn watch(&self, client: &str, token: &str, sink: mpsc::Sender<Bytes>) {
        self.progress.lock().insert((client.to_owned(), token.to_owned()), sink);
    }

    pub fn unwatch(&self, client: &str, token: &str) {
        self.progress.lock().remove(&(client.to_owned(), token.to_owned()));
    }

    /// The stream of the live call of `client` whose progress token is `token`.
    pub fn progress_sink(&self, client: &str, token: &str) -> Option<mpsc::Sender<Bytes>> {
        self.progress.lock().get(&(client.to_owned(), token.to_owned())).cloned()
    }
}
