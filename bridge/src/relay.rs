//! The bridge as the server's client: what the server sends on its own
//! goes back to the downstream client it concerns.
//!
//! A stdio server is one session shared by every downstream client, so the
//! bridge remembers which downstream peer each forwarded request came from.
//! rmcp stamps every upstream request with its own progress token; progress
//! for that token goes to the request's peer under the peer's own token.
//! Requests the server makes mid-call (sampling, elicitation, roots) and its
//! log messages go to the peer of the newest request still in flight (or
//! the last peer seen): MCP over stdio carries no link from a server request
//! to the client request that caused it. `resources/updated` goes to the
//! peers that subscribed to the URI. List changes are the supervisor's: it
//! re-registers, and the gateway tells its clients.

// Sampling, roots and logging are deprecated by the protocol's next era but
// are part of the 2025 protocols the bridged servers speak.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData, Peer, RoleClient, RoleServer};
use tokio::sync::mpsc;

/// What the server tells the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Its tools, resources or prompts changed: register again.
    Lists,
}

/// The downstream peers of in-flight requests and subscriptions.
#[derive(Default)]
pub struct Downstream {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    calls: HashMap<ProgressToken, Call>,
    next: u64,
    latest: Option<Peer<RoleServer>>,
    subscriptions: HashMap<String, Vec<Peer<RoleServer>>>,
}

struct Call {
    peer: Peer<RoleServer>,
    progress: Option<ProgressToken>,
    order: u64,
}

/// The client handler of the upstream session.
#[derive(Clone)]
pub struct Relay {
    server: String,
    downstream: Arc<Downstream>,
    changes: mpsc::Sender<Changed>,
    /// The downstream client's own capabilities and `clientInfo`, for a
    /// program serving that one client.
    client: Option<ClientConfig>,
}

// === impl Downstream ===

impl Downstream {
    /// Remembers the peer of an upstream request stamped `upstream`.
    pub fn begin(
        &self,
        upstream: ProgressToken,
        peer: Peer<RoleServer>,
        progress: Option<ProgressToken>,
    ) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.next += 1;
            let order = inner.next;
            inner.latest = Some(peer.clone());
            inner.calls.insert(upstream, Call { peer, progress, order });
        }
    }

    /// Forgets a finished request.
    pub fn end(&self, upstream: &ProgressToken) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.calls.remove(upstream);
        }
    }

    /// Remembers a subscription (or forgets it when `on` is false).
    pub fn subscribe(&self, uri: &str, peer: Peer<RoleServer>, on: bool) {
        if let Ok(mut inner) = self.inner.lock() {
            let peers = inner.subscriptions.entry(uri.to_owned()).or_default();
            peers.retain(|p| !p.is_transport_closed());
            if on {
                peers.push(peer);
            } else {
                peers.clear();
            }
        }
    }

    /// The peer a server request or log message goes to.
    fn current(&self) -> Option<Peer<RoleServer>> {
        let inner = self.inner.lock().ok()?;
        let newest = inner.calls.values().max_by_key(|call| call.order);
        newest.map(|call| call.peer.clone()).or_else(|| inner.latest.clone())
    }

    fn progress(&self, upstream: &ProgressToken) -> Option<(Peer<RoleServer>, ProgressToken)> {
        let inner = self.inner.lock().ok()?;
        let call = inner.calls.get(upstream)?;
        Some((call.peer.clone(), call.progress.clone()?))
    }

    fn subscribers(&self, uri: &str) -> Vec<Peer<RoleServer>> {
        let Ok(inner) = self.inner.lock() else { return Vec::new() };
        inner.subscriptions.get(uri).cloned().unwrap_or_default()
    }
}

// === impl Relay ===

impl Relay {
    /// The handler for server `server`'s session.
    pub fn new(server: &str, downstream: Arc<Downstream>, changes: mpsc::Sender<Changed>) -> Self {
        Self { server: server.to_owned(), downstream, changes, client: None }
    }

    /// Initializes as `client` (its capabilities and `clientInfo`) instead
    /// of as the bridge.
    pub fn for_client(mut self, client: ClientConfig) -> Self {
        self.client = Some(client);
        self
    }

    fn changed(&self) {
        // One pending change is enough: the registration lists everything.
        let _ = self.changes.try_send(Changed::Lists);
    }

    fn peer(&self) -> Result<Peer<RoleServer>, ErrorData> {
        self.downstream.current().ok_or_else(|| {
            ErrorData::internal_error(
                format!("bridge {:?}: no downstream client to ask", self.server),
                None,
            )
        })
    }
}

/// A failed downstream request, as the server sees it.
fn downstream_error(error: rmcp::ServiceError) -> ErrorData {
    match error {
        rmcp::ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("downstream client: {other}"), None),
    }
}

impl ClientHandler for Relay {
    fn get_info(&self) -> ClientConfig {
        if let Some(client) = &self.client {
            return client.clone();
        }
        // Everything a downstream client may offer; a request the actual
        // client cannot answer fails there, with its error.
        let capabilities: ClientCapabilities = serde_json::from_value(serde_json::json!({
            "roots": {"listChanged": true}, "sampling": {}, "elicitation": {}
        }))
        .unwrap_or_default();
        let bridge = Implementation::new("switchboard-bridge", env!("CARGO_PKG_VERSION"));
        ClientConfig::new(capabilities, bridge)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.peer()?.create_message(params).await.map_err(downstream_error)
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        self.peer()?.list_roots().await.map_err(downstream_error)
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.peer()?.create_elicitation(request).await.map_err(downstream_error)
    }

    async fn on_progress(
        &self,
        mut params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Some((peer, token)) = self.downstream.progress(&params.progress_token) {
            params.progress_token = token;
            if let Err(error) = peer.notify_progress(params).await {
                tracing::debug!(server = %self.server, %error, "progress not relayed");
            }
        }
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(peer) = self.peer()
            && let Err(error) = peer.notify_logging_message(params).await
        {
            tracing::debug!(server = %self.server, %error, "log message not relayed");
        }
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        for peer in self.downstream.subscribers(&params.uri) {
            if let Err(error) = peer.notify_resource_updated(params.clone()).await {
                tracing::debug!(server = %self.server, %error, "resource update not relayed");
            }
        }
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed();
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed();
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changed();
    }
}
