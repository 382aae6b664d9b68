//! The gateway as an MCP server (rmcp `ServerHandler`): `tools/list` and
//! `tools/call` from the routing table, and `list_changed` notifications —
//! to legacy sessions directly, and on `subscriptions/listen` streams for
//! the 2026-07-28 revision.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::Gateway;

/// One MCP session's view of the gateway (cheap to clone): the rmcp
/// `ServerHandler` that [`crate::router`] mounts at `/mcp`. Mount it yourself
/// to serve the gateway on another transport or path:
///
/// ```
/// use std::sync::Arc;
///
/// use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
/// use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
/// use switchboard_gateway::{Gateway, GatewayConfig, GatewayHandler};
///
/// let handler = GatewayHandler::new(Gateway::new(GatewayConfig::default()));
/// let service = StreamableHttpService::new(
///     move || Ok(handler.clone()),
///     Arc::new(LocalSessionManager::default()),
///     StreamableHttpServerConfig::default(),
/// );
/// let app: axum::Router = axum::Router::new().nest_service("/tools", service);
/// # drop(app);
/// ```
#[derive(Clone)]
pub struct GatewayHandler {
    gateway: Gateway,
}

// === impl GatewayHandler ===

impl GatewayHandler {
    /// Serves `gateway`.
    pub fn new(gateway: Gateway) -> Self {
        Self { gateway }
    }
}

impl ServerHandler for GatewayHandler {
    fn get_info(&self) -> InitializeResult {
        // Resources, prompts, completion and logging are served by the
        // forwarding layer in front of this handler.
        #[allow(deprecated)]
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts_list_changed()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .build();
        let mut info = InitializeResult::new(capabilities);
        info.server_info = Implementation::new("switchboard-gateway", env!("CARGO_PKG_VERSION"));
        info.instructions = Some("Tools of every agent in the Switchboard mesh.".into());
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // The forwarding layer put the authenticated caller on the request.
        let principal = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<std::sync::Arc<crate::access::Principal>>())
            .cloned();
        if self.gateway.access().is_some_and(|a| a.config().auth_enabled()) && principal.is_none() {
            return Ok(ListToolsResult::with_all_items(Vec::new()));
        }
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        self.gateway.list_for(cursor, principal.as_deref())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.to_string();
        let call = async { self.gateway.call(request).await.map_err(ErrorData::from) };
        crate::trace::serve(&tool, &context, call).await.map(CallToolResponse::Complete)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // The session id keys what the forwarding layer relays to this client.
        let session = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.gateway.add_peer(&session, context.peer);
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::default();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.gateway.listing_changes();
        changes.borrow_and_update();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let changed = *changes.borrow_and_update();
                    let filter = context.accepted();
                    let sink = context.sink();
                    let mut sent = Ok(());
                    if changed.tools && filter.tools_list_changed == Some(true) {
                        sent = sent.and(sink.notify_tool_list_changed().await);
                    }
                    if changed.resources && filter.resources_list_changed == Some(true) {
                        sent = sent.and(sink.notify_resource_list_changed().await);
                    }
                    if changed.prompts && filter.prompts_list_changed == Some(true) {
                        sent = sent.and(sink.notify_prompt_list_changed().await);
                    }
                    if sent.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
