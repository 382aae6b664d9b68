//! The gateway core: the current routing table, the upstream sessions and
//! relay tables, and routing one call (the forwarding path of `/mcp`; a
//! typed `tools/call` goes through it too).
//!
//! A call picks among HEALTHY replicas by the power of two choices on
//! in-flight calls (DEGRADED ones only when no healthy one is left), skips
//! replicas whose breaker is open, and fails over to another replica only
//! when the request certainly never reached the first — a tool is never run
//! twice because of the gateway.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use rmcp::model::{CallToolRequestParams, CallToolResult, ListToolsResult};
use rmcp::service::Peer;
use rmcp::{ErrorData, RoleServer};
use switchboard_client::{CacheView, WatchCache};
use tokio::sync::watch;

use crate::access::Access;
use crate::breaker::BreakerState;
use crate::call_error::CallError;
use crate::config::GatewayConfig;
use crate::metrics::{EndpointLabel, GatewayMetrics, ToolLabel};
use crate::relay::{InFlightCall, Relay};
use crate::routing_table::{Endpoint, Replica, Route, RoutingTable};
use crate::upstream::Upstream;

/// A cloneable handle to the gateway: its routing table, and routing one call.
///
/// ```
/// use rmcp::model::CallToolRequestParams;
/// use switchboard_client::CacheView;
/// use switchboard_gateway::{CallError, Gateway, GatewayConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let gateway = Gateway::new(GatewayConfig::default());
/// let error = gateway.call(CallToolRequestParams::new("get_date")).await.unwrap_err();
/// assert!(matches!(error, CallError::NotReady), "no snapshot yet");
///
/// // `serve` feeds it from the registry (`Gateway::follow`); here, an empty mesh.
/// gateway.apply(&CacheView { complete: true, ..CacheView::default() });
/// let error = gateway.call(CallToolRequestParams::new("get_date")).await.unwrap_err();
/// assert_eq!(error.code(), -32602, "{error}");
/// assert_eq!(error.metric_label(), "unknown_tool");
/// # }
/// ```
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    config: GatewayConfig,
    table: ArcSwap<RoutingTable>,
    ready: AtomicBool,
    /// The kept-alive HTTP client to agents and the upstream sessions.
    upstream: Upstream,
    /// Ids of relayed requests and calls in flight.
    relay: Relay,
    metrics: GatewayMetrics,
    /// Which lists changed last; subscribers are told when one does.
    listing: watch::Sender<Changed>,
    /// Legacy-session peers (by session id) to notify of list changes and
    /// to relay what their agents send outside a request.
    peers: Mutex<HashMap<String, Peer<RoleServer>>>,
    /// Authentication, policy, limits and audit, when any is on.
    access: Option<Arc<Access>>,
}

// === impl Gateway ===

impl Gateway {
    /// A gateway with an empty table (not ready until [`Gateway::apply`]).
    pub fn new(config: GatewayConfig) -> Self {
        Self::with_access(config, None)
    }

    /// A gateway whose calls go through `access` (see [`crate::access`]).
    pub fn with_access(config: GatewayConfig, access: Option<Arc<Access>>) -> Self {
        let (listing, _) = watch::channel(Changed::default());
        Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                table: ArcSwap::from_pointee(RoutingTable::default()),
                ready: AtomicBool::new(false),
                upstream: Upstream::new(
                    std::time::Duration::from_secs(5),
                    config.client_tls.as_ref(),
                ),
                relay: Relay::default(),
                metrics: GatewayMetrics::new(),
                listing,
                peers: Mutex::new(HashMap::new()),
                access,
            }),
        }
    }

    /// Keeps the table in step with `cache` until the cache is dropped.
    pub async fn follow(self, cache: WatchCache) {
        let mut views = cache.subscribe();
        loop {
            let view = views.borrow_and_update().clone();
            if view.complete {
                self.apply(&view);
            }
            if views.changed().await.is_err() {
                return;
            }
        }
    }

    /// Installs the table for `view` and tells listeners if the tools changed.
    pub fn apply(&self, view: &CacheView) {
        let inner = &self.inner;
        let previous = inner.table.load_full();
        let table = RoutingTable::build(view, &previous, inner.config.breaker);
        let current: std::collections::HashSet<String> =
            table.endpoint_urls().into_iter().collect();
        for (url, endpoint) in previous.endpoints() {
            if current.contains(&url) {
                continue;
            }
            endpoint.retired.store(true, Ordering::SeqCst);
            inner.upstream.forget_endpoint(&url);
            inner.metrics.breaker_state.remove(&EndpointLabel { endpoint: url });
        }
        inner.metrics.table_revision.set(i64::try_from(table.revision).unwrap_or(i64::MAX));
        inner.metrics.tools.set(i64::try_from(table.tools.len()).unwrap_or(i64::MAX));
        let changed = Changed {
            tools: table.fingerprint != previous.fingerprint,
            resources: table.catalog.resources_fingerprint
                != previous.catalog.resources_fingerprint,
            prompts: table.catalog.prompts_fingerprint != previous.catalog.prompts_fingerprint,
        };
        inner.table.store(Arc::new(table));
        inner.ready.store(true, Ordering::Release);
        if changed.tools || changed.resources || changed.prompts {
            inner.listing.send_modify(|c| *c = changed);
            self.notify_peers(changed);
        }
    }

    /// The access layer, when one is on.
    pub fn access(&self) -> Option<&Arc<Access>> {
        self.inner.access.as_ref()
    }

    /// True once the first snapshot is in.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// The current table.
    pub fn table(&self) -> Arc<RoutingTable> {
        self.inner.table.load_full()
    }

    /// Metrics of this gateway.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.inner.metrics
    }

    /// A receiver notified whenever a list (tools, resources, prompts) changes.
    pub fn listing_changes(&self) -> watch::Receiver<Changed> {
        self.inner.listing.subscribe()
    }

    /// Remembers the peer of legacy session `session` for `list_changed`
    /// notifications and what its agents send outside a request.
    pub fn add_peer(&self, session: &str, peer: Peer<RoleServer>) {
        let mut peers = self.inner.peers.lock();
        peers.retain(|_, p| !p.is_transport_closed());
        // A peer without a session (another transport) still gets list_changed.
        let key = if session.is_empty() {
            format!("#{}", rand::random::<u64>())
        } else {
            session.to_owned()
        };
        peers.insert(key, peer);
        self.inner.metrics.sessions.set(i64::try_from(peers.len()).unwrap_or(i64::MAX));
    }

    /// The peer of legacy session `session`, while it is open.
    pub(crate) fn peer_of(&self, session: &str) -> Option<Peer<RoleServer>> {
        let peers = self.inner.peers.lock();
        peers.get(session).filter(|p| !p.is_transport_closed()).cloned()
    }

    fn notify_peers(&self, changed: Changed) {
        let mut peers = self.inner.peers.lock();
        peers.retain(|_, p| !p.is_transport_closed());
        self.inner.metrics.sessions.set(i64::try_from(peers.len()).unwrap_or(i64::MAX));
        for peer in peers.values() {
            let peer = peer.clone();
            tokio::spawn(async move {
                let mut sent = Ok(());
                if changed.tools {
                    sent = sent.and(peer.notify_tool_list_changed().await);
                }
                if changed.resources {
                    sent = sent.and(peer.notify_resource_list_changed().await);
                }
                if changed.prompts {
                    sent = sent.and(peer.notify_prompt_list_changed().await);
                }
                if let Err(error) = sent {
                    tracing::debug!(%error, "list_changed not delivered");
                }
            });
        }
    }

    /// One page of `tools/list`. The cursor is opaque: the last name of the
    /// previous page, encoded.
    pub fn list(&self, cursor: Option<&str>) -> Result<ListToolsResult, ErrorData> {
        self.list_for(cursor, None)
    }

    /// One page of `tools/list` as `principal` sees it: only the tools it
    /// may call (everything without an access layer).
    pub fn list_for(
        &self,
        cursor: Option<&str>,
        principal: Option<&crate::access::Principal>,
    ) -> Result<ListToolsResult, ErrorData> {
        if !self.is_ready() {
            return Err(CallError::NotReady.into_error_data());
        }
        let table = self.table();
        let after = match cursor {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                ErrorData::invalid_params(format!("bad cursor {cursor:?}"), None)
            })?),
        };
        let start = match &after {
            Some(name) => table.tools.partition_point(|t| t.name.as_ref() <= name.as_str()),
            None => 0,
        };
        let page_size = self.inner.config.page_size;
        let visible = |tool: &&rmcp::model::Tool| match (self.access(), principal) {
            (Some(access), Some(principal)) => table
                .routes
                .get(tool.name.as_ref())
                .is_some_and(|route| access.may_list(principal, &tool.name, &route.facts)),
            _ => true,
        };
        let mut listed = table.tools.iter().skip(start).filter(visible);
        let page: Vec<_> = listed.by_ref().take(page_size).cloned().collect();
        let more = listed.next().is_some();
        let mut result = ListToolsResult::with_all_items(page);
        if more {
            result.next_cursor =
                result.tools.last().map(|t| URL_SAFE_NO_PAD.encode(t.name.as_bytes()));
        }
        Ok(result)
    }

    /// Routes one `tools/call` to a replica of its tool, failing over to
    /// another only when the request certainly never reached the first —
    /// the same path as a `tools/call` posted to `/mcp`, on one upstream
    /// session per agent shared by every typed caller.
    pub async fn call(&self, params: CallToolRequestParams) -> Result<CallToolResult, CallError> {
        let exposed = params.name.to_string();
        let table = self.table();
        let route = match self.lookup(&table, &exposed) {
            Ok(route) => route.clone(),
            Err(error) => {
                // An unknown name is whatever the client typed: one label
                // for all of them keeps the series bounded.
                let tool =
                    if matches!(error, CallError::UnknownTool { .. }) { "-" } else { &exposed };
                self.inner.metrics.request(tool, error.metric_label());
                return Err(error);
            }
        };
        crate::call::call_typed(self.clone(), params, exposed, route).await
    }

    pub(crate) fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    pub(crate) fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    pub(crate) fn relay(&self) -> &Relay {
        &self.inner.relay
    }

    /// Tells the agent to stop working on `call`.
    pub(crate) fn cancel_upstream(&self, call: &InFlightCall, reason: &str) {
        call.cancel.cancel();
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": call.upstream_id, "reason": reason},
        });
        let body = bytes::Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let gateway = self.clone();
        let call = call.clone();
        tokio::spawn(async move {
            let sent = gateway.upstream().post(&call.endpoint, &call.session, &[], body).await;
            if let Err(error) = sent {
                tracing::debug!(?error, endpoint = %call.endpoint, "cancellation not delivered");
            }
        });
    }

    /// Records one upstream attempt's duration.
    pub(crate) fn observe_upstream(&self, exposed: &str, elapsed: std::time::Duration) {
        self.inner
            .metrics
            .upstream_seconds
            .get_or_create(&ToolLabel { tool: exposed.to_owned() })
            .observe(elapsed.as_secs_f64());
    }

    fn lookup<'t>(&self, table: &'t RoutingTable, exposed: &str) -> Result<&'t Route, CallError> {
        if !self.is_ready() {
            return Err(CallError::NotReady);
        }
        table.routes.get(exposed).ok_or_else(|| CallError::UnknownTool { name: exposed.to_owned() })
    }

    pub(crate) fn observe_breaker(&self, endpoint: &Endpoint) {
        let state = match endpoint.breaker.state() {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        let label = EndpointLabel { endpoint: endpoint.url.clone() };
        let series = &self.inner.metrics.breaker_state;
        series.get_or_create(&label).set(state);
        // A call that picked this endpoint from an older table may finish
        // after the endpoint left: checking after the write means any
        // interleaving with `apply` ends with the series gone.
        if endpoint.retired.load(Ordering::SeqCst) {
            series.remove(&label);
        }
    }
}

/// Which lists one table change touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    /// `tools/list`.
    pub tools: bool,
    /// `resources/list` or `resources/templates/list`.
    pub resources: bool,
    /// `prompts/list`.
    pub prompts: bool,
}

/// Power of two choices among the best available replicas not yet tried.
pub(crate) fn pick<'a>(
    exposed: &str,
    route: &'a Route,
    tried: &[&str],
) -> Result<&'a Replica, CallError> {
    let untried = |r: &&Replica| !tried.contains(&r.agent_id.as_str());
    let available = |healthy: bool| -> Vec<&Replica> {
        route
            .replicas
            .iter()
            .filter(untried)
            .filter(|r| r.healthy == healthy && r.endpoint.breaker.is_available())
            .collect()
    };
    let mut candidates = available(true);
    if candidates.is_empty() {
        candidates = available(false);
    }
    let tool = || exposed.to_owned();
    match candidates.len() {
        0 if route.replicas.iter().any(|r| !r.endpoint.breaker.is_available()) => {
            Err(CallError::BreakersOpen { tool: tool() })
        }
        0 => Err(CallError::NoReplica { tool: tool() }),
        1 => Ok(candidates[0]),
        n => {
            let first = rand::random_range(0..n);
            let second = (first + rand::random_range(1..n)) % n;
            let (a, b) = (candidates[first], candidates[second]);
            let load = |r: &Replica| r.endpoint.in_flight.load(Ordering::Relaxed);
            Ok(if load(b) < load(a) { b } else { a })
        }
    }
}

fn decode_cursor(cursor: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()
}

/// Counts a call in flight on an endpoint for its duration.
pub(crate) struct InFlight<'a>(&'a Endpoint);

// === impl InFlight ===

impl<'a> InFlight<'a> {
    pub(crate) fn enter(endpoint: &'a Endpoint) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(endpoint)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
