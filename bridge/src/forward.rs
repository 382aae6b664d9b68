//! The bridge as a server: every request a downstream client makes goes to
//! the bridged server unchanged, and its answer (or its error) comes back
//! unchanged.
//!
//! The handler announces the server's own `initialize` answer (capabilities,
//! `serverInfo`, instructions), so the SDK registers exactly what the server
//! offers. Requests are sent raw, not through rmcp's typed client helpers:
//! those cache list answers, and a bridge must never serve a stale list.
//! A downstream cancellation cancels the upstream request.
//!
//! In `per-client` mode (see [`crate::clients`]) a request of a downstream
//! session goes to that session's own program. A request without a session
//! (a stateless 2026-07-28 client, which has none) goes to the first
//! program, as in `shared` mode: there is no session whose end would stop a
//! program of its own.

// Logging and subscriptions are deprecated by the protocol's next era but are
// part of the 2025 protocols the bridged servers speak.
#![allow(deprecated)]

use std::sync::Arc;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest,
    CompleteRequestParams, CompleteResult, GetPromptRequest, GetPromptRequestParams,
    GetPromptResponse, ListPromptsRequest, ListPromptsResult, ListResourceTemplatesRequest,
    ListResourceTemplatesResult, ListResourcesRequest, ListResourcesResult, ListToolsRequest,
    ListToolsResult, PaginatedRequestParams, PingRequest, ReadResourceRequest,
    ReadResourceRequestParams, ReadResourceResponse, Request, RequestMetaObject, ServerConfig,
    ServerResult, SetLevelRequest, SetLevelRequestParams, SubscribeRequest, SubscribeRequestParams,
    UnsubscribeRequest, UnsubscribeRequestParams,
};
use rmcp::service::{PeerRequestOptions, RequestContext};
use rmcp::{ErrorData, Peer, RoleClient, RoleServer, ServerHandler, ServiceError};

use tokio::sync::OnceCell;

use crate::clients::{ClientSession, Pool};
use crate::relay::Downstream;

/// Forwards to one upstream session (the shared one, or in `per-client`
/// mode the downstream session's own).
pub struct Forward {
    server: Arc<str>,
    upstream: Peer<RoleClient>,
    info: ServerConfig,
    downstream: Arc<Downstream>,
    pool: Option<Arc<Pool>>,
    /// This downstream session's program (`per-client` mode).
    own: Arc<OnceCell<ClientSession>>,
}

/// Where one request goes.
struct Target {
    upstream: Peer<RoleClient>,
    downstream: Arc<Downstream>,
}

// === impl Forward ===

impl Forward {
    /// Forwards to `upstream`, announcing `info` (the server's `initialize`
    /// answer).
    pub fn new(
        server: &str,
        upstream: Peer<RoleClient>,
        info: ServerConfig,
        downstream: Arc<Downstream>,
    ) -> Self {
        Self {
            server: server.into(),
            upstream,
            info,
            downstream,
            pool: None,
            own: Arc::new(OnceCell::new()),
        }
    }

    /// The same, giving every downstream session a program of its own from
    /// `pool`.
    pub fn per_client(mut self, pool: Pool) -> Self {
        self.pool = Some(Arc::new(pool));
        self
    }

    /// The upstream session for the client of `context`.
    async fn target(&self, context: &RequestContext<RoleServer>) -> Result<Target, ErrorData> {
        let shared =
            || Target { upstream: self.upstream.clone(), downstream: self.downstream.clone() };
        let Some(pool) = &self.pool else { return Ok(shared()) };
        let in_session = context
            .extensions
            .get::<http::request::Parts>()
            .is_some_and(|parts| parts.headers.contains_key("mcp-session-id"));
        if !in_session {
            return Ok(shared());
        }
        let hello = context.peer.peer_info();
        let own = self.own.get_or_try_init(|| pool.open(hello.as_deref())).await?;
        if let Some(reason) = own.ended() {
            return Err(ErrorData::internal_error(
                format!(
                    "bridge {:?}: the program serving this session is gone ({reason}); open a \
                     new session",
                    self.server
                ),
                None,
            ));
        }
        Ok(Target { upstream: own.peer.clone(), downstream: own.downstream.clone() })
    }

    /// Sends `request` upstream on behalf of the client of `context`.
    async fn forward(
        &self,
        request: ClientRequest,
        context: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        let Target { upstream, downstream } = self.target(context).await?;
        // The client's own `_meta` travels on, minus what belongs to its hop:
        // rmcp stamps its own progress token, and lifecycle keys describe the
        // downstream session, not this one.
        let mut meta = context.meta.clone();
        meta.0.retain(|key, _| {
            key != "progressToken" && !key.starts_with("io.modelcontextprotocol/")
        });
        let options = PeerRequestOptions::no_options().with_meta(RequestMetaObject(meta.0));
        let handle = upstream
            .send_request_with_option(request, options)
            .await
            .map_err(|error| self.upstream_error(error))?;
        let token = handle.progress_token.clone();
        downstream.begin(token.clone(), context.peer.clone(), context.meta.get_progress_token());
        let id = handle.id.clone();
        let result = tokio::select! {
            result = handle.await_response() => result.map_err(|error| self.upstream_error(error)),
            () = context.ct.cancelled() => {
                let cancel = rmcp::model::CancelledNotificationParam::new(
                    Some(id),
                    Some("cancelled by the downstream client".into()),
                );
                if let Err(error) = upstream.notify_cancelled(cancel).await {
                    tracing::debug!(server = %self.server, %error, "cancellation not forwarded");
                }
                Err(ErrorData::internal_error("request cancelled", None))
            }
        };
        downstream.end(&token);
        result
    }

    fn upstream_error(&self, error: ServiceError) -> ErrorData {
        match error {
            // The server's own error, verbatim.
            ServiceError::McpError(error) => error,
            other => ErrorData::internal_error(
                format!("bridged server {:?} did not answer: {other}", self.server),
                None,
            ),
        }
    }
}

/// A clone serves a new downstream session (the endpoint makes one per
/// session): in `per-client` mode it starts without a program of its own.
impl Clone for Forward {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
            upstream: self.upstream.clone(),
            info: self.info.clone(),
            downstream: self.downstream.clone(),
            pool: self.pool.clone(),
            own: Arc::new(OnceCell::new()),
        }
    }
}

/// The answer of the wrong kind, as an error naming what was expected.
fn unexpected(what: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("bridged server answered {what} with another kind of result"),
        None,
    )
}

fn list_request<T: Default>(
    params: Option<PaginatedRequestParams>,
) -> rmcp::model::RequestOptionalParam<T, PaginatedRequestParams> {
    rmcp::model::RequestOptionalParam {
        method: T::default(),
        params,
        extensions: Default::default(),
    }
}

impl ServerHandler for Forward {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let ping = PingRequest { method: Default::default(), extensions: Default::default() };
        self.forward(ClientRequest::PingRequest(ping), &context).await.map(drop)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let request: ListToolsRequest = list_request(request);
        match self.forward(ClientRequest::ListToolsRequest(request), &context).await? {
            ServerResult::ListToolsResult(result) => Ok(result),
            _ => Err(unexpected("tools/list")),
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = CallToolRequest::new(request);
        match self.forward(ClientRequest::CallToolRequest(request), &context).await? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            _ => Err(unexpected("tools/call")),
        }
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let request: ListResourcesRequest = list_request(request);
        match self.forward(ClientRequest::ListResourcesRequest(request), &context).await? {
            ServerResult::ListResourcesResult(result) => Ok(result),
            _ => Err(unexpected("resources/list")),
        }
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let request: ListResourceTemplatesRequest = list_request(request);
        match self.forward(ClientRequest::ListResourceTemplatesRequest(request), &context).await? {
            ServerResult::ListResourceTemplatesResult(result) => Ok(result),
            _ => Err(unexpected("resources/templates/list")),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let request = ReadResourceRequest::new(request);
        match self.forward(ClientRequest::ReadResourceRequest(request), &context).await? {
            ServerResult::ReadResourceResult(result) => Ok(ReadResourceResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(ReadResourceResponse::InputRequired(result))
            }
            _ => Err(unexpected("resources/read")),
        }
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri.clone();
        self.forward(ClientRequest::SubscribeRequest(SubscribeRequest::new(request)), &context)
            .await?;
        self.target(&context).await?.downstream.subscribe(&uri, context.peer.clone(), true);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri.clone();
        self.forward(ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(request)), &context)
            .await?;
        self.target(&context).await?.downstream.subscribe(&uri, context.peer.clone(), false);
        Ok(())
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let request: ListPromptsRequest = list_request(request);
        match self.forward(ClientRequest::ListPromptsRequest(request), &context).await? {
            ServerResult::ListPromptsResult(result) => Ok(result),
            _ => Err(unexpected("prompts/list")),
        }
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let request = GetPromptRequest::new(request);
        match self.forward(ClientRequest::GetPromptRequest(request), &context).await? {
            ServerResult::GetPromptResult(result) => Ok(GetPromptResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(GetPromptResponse::InputRequired(result))
            }
            _ => Err(unexpected("prompts/get")),
        }
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let request = CompleteRequest::new(request);
        match self.forward(ClientRequest::CompleteRequest(request), &context).await? {
            ServerResult::CompleteResult(result) => Ok(result),
            _ => Err(unexpected("completion/complete")),
        }
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let request: SetLevelRequest = Request::new(request);
        self.forward(ClientRequest::SetLevelRequest(request), &context).await.map(drop)
    }
}
