//! [`Traced`]: the SDK's wrapper around an author's rmcp handler, adding a
//! span and metrics to every `tools/call`.
//!
//! rmcp runs each request's handler in a task of its own, so nothing the
//! HTTP layer sets up (a span, an OpenTelemetry context) reaches the tool.
//! The wrapper sits where the tool runs: it reads the caller's trace context
//! from `params._meta.traceparent` (or the HTTP `traceparent` header rmcp
//! keeps in the request extensions), opens a SERVER span `tools/call <tool>`
//! under it, and runs the tool inside that span — so a [`crate::Dependency`]
//! call made by the tool (same task) continues the same trace.
//!
//! It also keeps the caller's deadline (`_meta["io.switchboard/deadlineMs"]`)
//! for the tool's task, so dependency calls end before the caller gives up.
//!
//! Every other [`ServerHandler`] method is forwarded unchanged, so prompts,
//! resources, completions, subscriptions, tasks and skills keep working.
//! One exception: a handler that announces rmcp's own `serverInfo` (what
//! `#[tool_router(server_handler)]` produces) announces the agent's name and
//! version instead, so clients see which agent they talk to.

#![allow(deprecated)] // subscribe/unsubscribe are forwarded like the rest.

use std::borrow::Cow;
use std::future::Future;
use std::time::Instant;

use opentelemetry::context::FutureExt as _;
use rmcp::model as m;
use rmcp::service::{MaybeSendFuture, NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use switchboard_telemetry::mcp::{self, Outcome};
use tracing::Instrument as _;

use crate::metrics::METRICS;

/// The `serverInfo.name` rmcp fills in when a handler sets none.
const RMCP_DEFAULT_NAME: &str = "rmcp";

/// An rmcp handler with a span and metrics around each tool call.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    server_info: Option<m::Implementation>,
}

impl<S> Traced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, server_info: None }
    }

    /// Announces `info` as `serverInfo` when the handler announces rmcp's
    /// default (the name `rmcp`).
    pub fn with_server_info(mut self, info: m::Implementation) -> Self {
        self.server_info = Some(info);
        self
    }

    /// `result` with the agent's `serverInfo` in place of rmcp's default.
    fn own_info(&self, mut result: m::InitializeResult) -> m::InitializeResult {
        if let Some(info) = &self.server_info
            && result.server_info.name == RMCP_DEFAULT_NAME
        {
            result.server_info = info.clone();
        }
        result
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// The metric outcome and span outcome of a finished call.
fn outcome(result: &Result<m::CallToolResponse, ErrorData>) -> (&'static str, Outcome<'static>) {
    match result {
        Ok(m::CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
            ("tool_error", Outcome::ToolError)
        }
        Ok(_) => ("ok", Outcome::Ok),
        Err(error) => ("error", Outcome::RpcError(error.code.0)),
    }
}

impl<S: ServerHandler> ServerHandler for Traced<S> {
    fn call_tool(
        &self,
        request: m::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::CallToolResponse, ErrorData>> + MaybeSendFuture + '_ {
        let tool = request.name.to_string();
        let parent = mcp::incoming_context(&context.meta, &context.extensions);
        let deadline = crate::deadline::deadline_of(&context.meta)
            .map(|left| tokio::time::Instant::now() + left);
        let span = mcp::server_span(&tool, &context.id.to_string(), parent.clone());
        // With export off the span has no context of its own: attaching the
        // caller's lets dependency calls forward it unchanged.
        let call = self.inner.call_tool(request, context).instrument(span.clone());
        let call = call.with_context(parent.unwrap_or_else(opentelemetry::Context::current));
        async move {
            let started = Instant::now();
            let result = crate::deadline::with_deadline(deadline, call).await;
            let (metric, traced) = outcome(&result);
            mcp::record_outcome(&span, traced);
            METRICS.tool_call(&tool, metric, started.elapsed());
            result
        }
    }

    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.ping(context)
    }

    fn initialize(
        &self,
        request: m::InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::InitializeResult, ErrorData>> + MaybeSendFuture + '_ {
        let initializing = self.inner.initialize(request, context);
        async move { initializing.await.map(|result| self.own_info(result)) }
    }

    fn negotiate_initialize(
        &self,
        request: &m::InitializeRequestParams,
    ) -> Result<m::InitializeResult, ErrorData> {
        self.inner.negotiate_initialize(request).map(|result| self.own_info(result))
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [m::ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::DiscoverResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.discover(context)
    }

    fn complete(
        &self,
        request: m::CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::CompleteResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.complete(request, context)
    }

    fn set_level(
        &self,
        request: m::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.set_level(request, context)
    }

    fn get_prompt(
        &self,
        request: m::GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::GetPromptResponse, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.get_prompt(request, context)
    }

    fn list_prompts(
        &self,
        request: Option<m::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ListPromptsResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.list_prompts(request, context)
    }

    fn list_resources(
        &self,
        request: Option<m::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ListResourcesResult, ErrorData>> + MaybeSendFuture + '_
    {
        self.inner.list_resources(request, context)
    }

    fn list_resource_templates(
        &self,
        request: Option<m::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ListResourceTemplatesResult, ErrorData>> + MaybeSendFuture + '_
    {
        self.inner.list_resource_templates(request, context)
    }

    fn read_resource(
        &self,
        request: m::ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ReadResourceResponse, ErrorData>> + MaybeSendFuture + '_
    {
        self.inner.read_resource(request, context)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &m::SubscriptionFilter,
    ) -> Option<m::SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.listen(context)
    }

    fn subscribe(
        &self,
        request: m::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.subscribe(request, context)
    }

    fn unsubscribe(
        &self,
        request: m::UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.unsubscribe(request, context)
    }

    fn list_tools(
        &self,
        request: Option<m::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ListToolsResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.list_tools(request, context)
    }

    fn get_tool(&self, name: &str) -> Option<m::Tool> {
        self.inner.get_tool(name)
    }

    fn on_custom_request(
        &self,
        request: m::CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::CustomResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: m::CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: m::ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: m::CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> m::ServerConfig {
        self.own_info(self.inner.get_info())
    }

    fn get_task(
        &self,
        request: m::GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::GetTaskResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.get_task(request, context)
    }

    fn update_task(
        &self,
        request: m::UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: m::CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<m::PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ListSkillsResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: m::GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::GetSkillResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: m::ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<m::ReadResourceDirectoryResult, ErrorData>> + MaybeSendFuture + '_
    {
        self.inner.read_resource_directory(request, context)
    }
}

#[cfg(test)]
mod tests;
