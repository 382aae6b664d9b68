//! Forwarding one `tools/call`: pick a replica, rewrite the prefixed name,
//! the id and `_meta` (trace context, the time left), send the rest of the
//! client's bytes as they came, and stream the answer back as it arrives —
//! every notification and every request the agent sends mid-call goes to
//! the calling client, before the result.
//!
//! The gateway fails over to another replica only when the request never
//! left (no connection, no session could be opened); once the agent may
//! have it, every failure is final. An upstream that lost the session (404)
//! certainly did not run the call: the session is re-opened and the request
//! sent once more.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_telemetry::mcp::{self, Outcome};
use switchboard_telemetry::propagation;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::Gateway;
use crate::access::{self, Principal};
use crate::call_error::CallError;
use crate::envelope::{Envelope, error_response};
use crate::gateway::{InFlight, pick};
use crate::relay::{InFlightCall, Origin};
use crate::routing_table::{Replica, Route};
use crate::session_stream::SessionStream;
use crate::sse;
use crate::upstream::{Answer, ClientHello, UpstreamError, UpstreamSession};

/// The `_meta` key carrying the milliseconds the gateway will still wait.
pub const DEADLINE_META: &str = "io.switchboard/deadlineMs";

/// Events buffered towards a slow client before the relay waits for it.
const STREAM_BUFFER: usize = 64;

/// Who is calling and how they want the answer.
pub(crate) struct Caller {
    /// The gateway client key (legacy session id, or "" for stateless clients).
    pub client: String,
    pub hello: ClientHello,
    /// The client's `MCP-Protocol-Version` when it speaks 2026-07-28 (stateless).
    pub modern: Option<String>,
    pub accepts_events: bool,
    pub headers: HeaderMap,
    /// Who is calling (`anonymous` without authentication).
    pub principal: Arc<Principal>,
    /// The caller's `Authorization` header, only for a tool configured to
    /// receive it (token passthrough).
    pub authorization: Option<String>,
}

/// The request being forwarded: its method and routing key.
pub(crate) struct Target {
    pub method: String,
    /// The key the client used (a tool or prompt name, a resource URI).
    pub exposed: String,
    /// The key the agent knows.
    pub upstream_key: String,
    /// Where the key sits in `params`.
    pub rewrite: Rewrite,
}

/// Where a request's routing key sits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rewrite {
    /// `params.<member>`.
    Param(&'static str),
    /// `params.ref.<member>` (`completion/complete`).
    Ref(&'static str),
}

// === impl Target ===

impl Target {
    fn is_tool_call(&self) -> bool {
        self.method == mcp::TOOLS_CALL
    }

    /// The `tool` label of the request metrics: the tool, or the method.
    fn label(&self) -> &str {
        if self.is_tool_call() { &self.exposed } else { &self.method }
    }
}

/// What the client gets first.
enum Head {
    Json(Vec<u8>),
    Events(mpsc::Receiver<Bytes>),
}

/// Forwards `request` (addressed to `target` on `route`) and answers the client.
pub(crate) async fn forward(
    gateway: Gateway,
    caller: Caller,
    request: Envelope,
    target: Target,
    route: Route,
) -> Response {
    let meta = request.meta();
    let traceparent = meta.get(propagation::TRACEPARENT).and_then(Value::as_str);
    let tracestate = meta.get(propagation::TRACESTATE).and_then(Value::as_str);
    let parent = propagation::remote_context(traceparent, tracestate)
        .or_else(|| propagation::from_headers(&caller.headers));
    let client_id = request.id_key().unwrap_or_else(|| "null".into());
    let span = if target.is_tool_call() {
        mcp::server_span(&target.exposed, &client_id, parent)
    } else {
        tracing::info_span!("mcp", mcp.method.name = %target.method)
    };
    let (head_tx, mut head_rx) = oneshot::channel();
    let exposed = target.exposed.clone();
    // Progress the agent sends on its session stream comes back here.
    let token = meta.get("progressToken").filter(|_| caller.accepts_events);
    let token = token.filter(|_| !caller.client.is_empty()).map(Value::to_string);
    let side = token.as_ref().map(|token| {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        gateway.relay().watch(&caller.client, token, tx);
        rx
    });
    let call = Call {
        gateway,
        caller,
        request,
        exposed,
        target,
        route,
        head: Some(head_tx),
        stream: None,
        token,
        side,
        agent: None,
        shape: None,
    };
    let task = call.run().instrument(span.clone());
    let task =
        opentelemetry::context::FutureExt::with_context(task, opentelemetry::Context::current());
    // The call runs here until its answer's head is known: a JSON answer
    // costs no task hop; a streamed one (or a client gone mid-call) moves
    // the call to its own task, which finishes it.
    let mut task = Detach(Some(Box::pin(task)));
    let head = tokio::select! {
        biased;
        head = &mut head_rx => head,
        () = &mut task => head_rx.await,
    };
    if matches!(head, Ok(Head::Events(_))) {
        drop(task);
    } else {
        task.await;
    }
    match head {
        Ok(Head::Json(body)) => json(StatusCode::OK, body),
        Ok(Head::Events(events)) => {
            let stream = futures::stream::unfold(events, |mut events| async move {
                events.recv().await.map(|event| (Ok::<_, std::convert::Infallible>(event), events))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(_) => json(
            StatusCode::OK,
            error_response(None, -32603, "internal error: the call ended without an answer"),
        ),
    }
}

/// A typed `tools/call` (no client session, no stream) on the forwarding
/// path: the agent's answer parsed, its JSON-RPC error as [`CallError::Agent`].
pub(crate) async fn call_typed(
    gateway: Gateway,
    params: CallToolRequestParams,
    exposed: String,
    route: Route,
) -> Result<CallToolResult, CallError> {
    // A fresh id: typed callers share one client key.
    let id = gateway.relay().next_id();
    let message = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": mcp::TOOLS_CALL,
        "params": params});
    let bytes = serde_json::to_vec(&message).unwrap_or_default();
    let request = Envelope::parse(&bytes).map_err(|_| CallError::FailedMidCall {
        tool: exposed.clone(),
        message: "the call's params are not a JSON object".into(),
    })?;
    let caller = Caller {
        client: String::new(),
        hello: ClientHello::default(),
        modern: None,
        accepts_events: false,
        headers: HeaderMap::new(),
        principal: access::anonymous(),
        authorization: None,
    };
    let target = Target {
        method: mcp::TOOLS_CALL.into(),
        exposed: exposed.clone(),
        upstream_key: route.upstream_tool.clone(),
        rewrite: Rewrite::Param("name"),
    };
    let mut call = Call {
        gateway,
        caller,
        request,
        exposed: exposed.clone(),
        target,
        route,
        head: None,
        stream: None,
        token: None,
        side: None,
        agent: None,
        shape: None,
    };
    let body = call.outcome().await?;
    let unexpected = |error: String| CallError::FailedMidCall {
        tool: exposed.clone(),
        message: format!("the agent's answer is not a tools/call result: {error}"),
    };
    let answer = Envelope::parse(&body).map_err(|_| unexpected("not JSON-RPC".into()))?;
    if let Some(error) = answer.error {
        let error = serde_json::from_str(error.get()).map_err(|e| unexpected(e.to_string()))?;
        return Err(CallError::Agent(error));
    }
    let result = answer.result.ok_or_else(|| unexpected("no result".into()))?;
    serde_json::from_str(result.get()).map_err(|e| unexpected(e.to_string()))
}

/// A future polled in place that, dropped unfinished, finishes on its own task.
struct Detach<F: Future<Output = ()> + Send + 'static>(Option<Pin<Box<F>>>);

// === impl Detach ===

impl<F: Future<Output = ()> + Send + 'static> Future for Detach<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(task) = self.0.as_mut() else { return Poll::Ready(()) };
        ready!(task.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(())
    }
}

impl<F: Future<Output = ()> + Send + 'static> Drop for Detach<F> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(task);
        }
    }
}

pub(crate) fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

struct Call {
    gateway: Gateway,
    caller: Caller,
    request: Envelope,
    exposed: String,
    target: Target,
    route: Route,
    head: Option<oneshot::Sender<Head>>,
    stream: Option<mpsc::Sender<Bytes>>,
    /// The client's progress token (JSON text), watched while the call runs.
    token: Option<String>,
    /// Progress for this call that arrived on the agent's session stream.
    side: Option<mpsc::Receiver<Bytes>>,
    /// The agent of the last replica tried (for the call audit).
    agent: Option<String>,
    /// Whether the final answer is a tool error, and its JSON-RPC error code.
    shape: Option<(bool, Option<i32>)>,
}

/// How one attempt ended.
enum Attempt {
    /// Final: the result or error sent to the client.
    Done(Result<Vec<u8>, CallError>),
    /// Never reached the replica: another may be tried.
    NeverSent(String),
}

// === impl Call ===

impl Call {
    async fn run(mut self) {
        let outcome = self.outcome().await;
        let id = self.request.id.clone();
        let body = outcome
            .unwrap_or_else(|error| error_response(id.as_deref(), error.code(), &error.message()));
        self.emit_final(body).await;
    }

    /// Routes the call and counts it; the answer to send (ids the client's).
    async fn outcome(&mut self) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let timeout = self.gateway.config().call_timeout;
        let deadline = started + timeout;
        let cancel = CancellationToken::new();
        let client_id = self.request.id_key().unwrap_or_else(|| "null".into());
        let outcome = tokio::select! {
            outcome = tokio::time::timeout_at(deadline, self.route_call(deadline, &cancel)) => {
                outcome.unwrap_or_else(|_| {
                    Err(CallError::Timeout { tool: self.exposed.clone(), after: timeout })
                })
            }
            () = cancel.cancelled() => {
                Err(CallError::Agent(rmcp::ErrorData::new(
                    rmcp::model::ErrorCode(-32800),
                    "request cancelled by the client",
                    None,
                )))
            }
        };
        if let Some(token) = &self.token {
            self.gateway.relay().unwatch(&self.caller.client, token);
        }
        if let Some(call) = self.gateway.relay().finish(&self.caller.client, &client_id)
            && !cancel.is_cancelled()
            && matches!(outcome, Err(CallError::Timeout { .. }))
        {
            // The agent may still be working: tell it to stop.
            self.gateway.cancel_upstream(&call, "the gateway's call timeout passed");
        }
        let (label, span_outcome) = match &outcome {
            Ok(body) => match self.shape.take().unwrap_or_else(|| shape_of(body)) {
                (true, _) => ("tool_error", Outcome::ToolError),
                (false, Some(code)) => ("agent_error", Outcome::RpcError(code)),
                (false, None) => ("ok", Outcome::Ok),
            },
            Err(error) => (error.metric_label(), Outcome::RpcError(error.code())),
        };
        mcp::record_outcome(&tracing::Span::current(), span_outcome);
        let metrics = self.gateway.metrics();
        metrics.request(self.target.label(), label);
        metrics.request_duration(self.target.label(), started.elapsed());
        if let Some(access) = self.gateway.access() {
            access.audit().record(&access::Entry {
                principal: &self.caller.principal.id,
                method: &self.target.method,
                target: &self.target.exposed,
                agent: self.agent.as_deref(),
                outcome: label,
                latency: started.elapsed(),
                arguments: self
                    .request
                    .params
                    .as_ref()
                    .and_then(|p| p.get("arguments"))
                    .map(|a| &**a),
                from: None,
            });
        }
        outcome
    }

    /// Tries replicas until one answers, one may have run the call, or
    /// `max_attempts` were unreachable.
    async fn route_call(
        &mut self,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, CallError> {
        let route = self.route.clone();
        let mut tried: Vec<&str> = Vec::new();
        let mut last = String::new();
        while tried.len() < self.gateway.config().max_attempts {
            let replica = match pick(&self.exposed, &route, &tried) {
                Ok(replica) => replica,
                Err(_) if !tried.is_empty() => break,
                Err(refusal) => return Err(refusal),
            };
            tried.push(&replica.agent_id);
            if self.gateway.access().is_some_and(|a| a.audit().is_enabled()) {
                self.agent = Some(replica.agent_id.clone());
            }
            if !replica.endpoint.breaker.try_acquire() {
                continue;
            }
            let started = Instant::now();
            let attempt = {
                let _in_flight = InFlight::enter(&replica.endpoint);
                let span = if tracing::Span::current().is_disabled() {
                    // The subscriber took no interest in the server span (no
                    // export, logs above info): it takes none in this one
                    // either, so skip parsing the endpoint for its fields.
                    tracing::Span::none()
                } else if self.target.is_tool_call() {
                    mcp::client_span(&route.upstream_tool, &replica.endpoint.url)
                } else {
                    tracing::info_span!("upstream", url.full = %replica.endpoint.url)
                };
                span.record("switchboard.agent.id", replica.agent_id.as_str());
                let attempt = self.attempt(replica, deadline, cancel);
                let attempt = attempt.instrument(span.clone()).await;
                let outcome = match &attempt {
                    Attempt::Done(Ok(body)) => {
                        // One parse serves the span and the metrics.
                        let shape = shape_of(body);
                        self.shape = Some(shape);
                        match shape {
                            (true, _) => Outcome::ToolError,
                            (false, code) => code.map_or(Outcome::Ok, Outcome::RpcError),
                        }
                    }
                    Attempt::Done(Err(error)) => Outcome::Failed(error.metric_label()),
                    Attempt::NeverSent(_) => Outcome::Failed("unreachable"),
                };
                mcp::record_outcome(&span, outcome);
                attempt
            };
            self.gateway.observe_upstream(self.target.label(), started.elapsed());
            let breaker = &replica.endpoint.breaker;
            match attempt {
                Attempt::Done(done) => {
                    if matches!(done, Err(CallError::FailedMidCall { .. })) {
                        breaker.record_failure();
                    } else {
                        breaker.record_success();
                    }
                    self.gateway.observe_breaker(&replica.endpoint);
                    return done;
                }
                Attempt::NeverSent(message) => {
                    breaker.record_failure();
                    self.gateway.observe_breaker(&replica.endpoint);
                    self.gateway.metrics().failovers.inc();
                    tracing::warn!(error = %message, agent_id = %replica.agent_id, "replica unreachable; failing over");
                    last = message;
                }
            }
        }
        Err(CallError::Unreachable { tool: self.exposed.clone(), tried: tried.len(), last })
    }

    /// One replica: open (or reuse) the session, send, relay the answer.
    async fn attempt(
        &mut self,
        replica: &Replica,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Attempt {
        let endpoint = replica.endpoint.url.clone();
        let mut reopened = false;
        loop {
            let session = match self.session(&endpoint).await {
                Ok(session) => session,
                Err(UpstreamError::NeverSent(message)) => return Attempt::NeverSent(message),
                Err(UpstreamError::MidCall(message)) => return Attempt::NeverSent(message),
            };
            let upstream_id = self.gateway.relay().next_id();
            let body = self.upstream_body(upstream_id, deadline, &endpoint);
            let headers = self.upstream_headers();
            let gateway = self.gateway.clone();
            let mut sent =
                std::pin::pin!(gateway.upstream().post(&endpoint, &session, &headers, body));
            let sent = loop {
                tokio::select! {
                    sent = &mut sent => break sent,
                    Some(data) = next_side(&mut self.side) => self.emit(data).await,
                }
            };
            let (status, answer) = match sent {
                Ok(sent) => sent,
                Err(UpstreamError::NeverSent(message)) => return Attempt::NeverSent(message),
                Err(UpstreamError::MidCall(message)) => return self.mid_call(message),
            };
            if status == 404 && session.id.is_some() && !reopened {
                // The agent does not know the session (restarted, expired):
                // it ran nothing. Open a new one and send again, once.
                self.gateway.upstream().forget(&self.caller.client, &endpoint, &session);
                reopened = true;
                continue;
            }
            let client_id = self.request.id_key().unwrap_or_else(|| "null".into());
            self.gateway.relay().start(
                &self.caller.client,
                &client_id,
                InFlightCall {
                    endpoint: endpoint.clone(),
                    session: session.clone(),
                    upstream_id,
                    cancel: cancel.clone(),
                },
            );
            return self.relay(&endpoint, &session, upstream_id, status, answer).await;
        }
    }

    async fn session(&self, endpoint: &str) -> Result<UpstreamSession, UpstreamError> {
        if let Some(version) = &self.caller.modern {
            // A stateless client's request carries its own protocol metadata.
            return Ok(UpstreamSession { id: None, protocol_version: version.clone() });
        }
        let client = &self.caller.client;
        let opened = self.gateway.upstream().session(client, endpoint, &self.caller.hello).await?;
        if let Some((stream, closed)) = opened.fresh {
            let session = opened.session.clone();
            SessionStream::spawn(self.gateway.clone(), client, endpoint, session, stream, closed);
        }
        Ok(opened.session)
    }

    fn upstream_body(&self, upstream_id: u64, deadline: Instant, endpoint: &str) -> Bytes {
        let mut request = Envelope {
            jsonrpc: self.request.jsonrpc.clone(),
            id: Some(crate::envelope::raw(&upstream_id)),
            method: self.request.method.clone(),
            params: self.request.params.clone(),
            result: None,
            error: None,
        };
        let key = self.target.upstream_key.as_str();
        match self.target.rewrite {
            Rewrite::Param(member) => request.set_param_str(member, key),
            Rewrite::Ref(member) => request.set_ref_str(member, key),
        }
        let mut meta = request.meta();
        if let Some(context) = propagation::current() {
            meta.insert(propagation::TRACEPARENT.into(), context.traceparent.into());
            match context.tracestate {
                Some(state) => meta.insert(propagation::TRACESTATE.into(), state.into()),
                None => meta.remove(propagation::TRACESTATE),
            };
        }
        if let Some(access) = self.gateway.access() {
            // Only the gateway speaks for the caller: whatever a client put
            // under these keys is dropped.
            meta.remove(access::CALLER_META);
            meta.remove(access::CALLER_TOKEN_META);
            for (key, value) in access.caller_meta(&self.caller.principal, endpoint) {
                meta.insert(key.into(), value);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        meta.insert(
            DEADLINE_META.into(),
            u64::try_from(left.as_millis()).unwrap_or(u64::MAX).into(),
        );
        request.set_meta(&meta);
        Bytes::from(request.to_bytes())
    }

    fn upstream_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(authorization) = &self.caller.authorization {
            headers.push(("Authorization", authorization.clone()));
        }
        if self.caller.modern.is_none() {
            return headers;
        }
        headers.push(("Mcp-Method", self.target.method.clone()));
        if matches!(self.target.rewrite, Rewrite::Param(_)) {
            headers.push(("Mcp-Name", self.target.upstream_key.clone()));
        }
        headers
    }

    fn mid_call(&self, message: String) -> Attempt {
        Attempt::Done(Err(CallError::FailedMidCall { tool: self.exposed.clone(), message }))
    }

    /// Relays the upstream answer; returns the final message for the client.
    async fn relay(
        &mut self,
        endpoint: &str,
        session: &UpstreamSession,
        upstream_id: u64,
        status: u16,
        answer: Answer,
    ) -> Attempt {
        let mut reader = match answer {
            Answer::Json(body) => return self.final_answer(status, &body, upstream_id),
            Answer::Accepted => {
                return self.mid_call("the agent accepted the call without answering".into());
            }
            Answer::Events(reader) => reader,
        };
        let mut relayed = Vec::new();
        let done = loop {
            let next = tokio::select! {
                next = reader.next() => next,
                Some(data) = next_side(&mut self.side) => {
                    self.emit(data).await;
                    continue;
                }
            };
            let data = match next {
                Some(Ok(data)) => data,
                Some(Err(UpstreamError::MidCall(message) | UpstreamError::NeverSent(message))) => {
                    break self.mid_call(message);
                }
                None => break self.mid_call("the agent's stream ended without an answer".into()),
            };
            let Ok(mut message) = Envelope::parse(&data) else { continue };
            if message.is_response() {
                if message.id_key() == Some(upstream_id.to_string()) {
                    break self.final_answer(status, &data, upstream_id);
                }
                continue;
            }
            if message.is_request() {
                let Some(upstream_request_id) = message.id.take() else { continue };
                let id = self.gateway.relay().relay(Origin {
                    endpoint: endpoint.to_owned(),
                    session: session.clone(),
                    upstream_id: upstream_request_id,
                    client: self.caller.client.clone(),
                });
                message.id = RawValue::from_string(id.clone()).ok();
                relayed.push(id);
                self.emit(message.to_bytes().into()).await;
            } else {
                self.emit(data).await;
            }
        };
        self.gateway.relay().forget(&relayed);
        done
    }

    fn final_answer(&self, status: u16, body: &[u8], upstream_id: u64) -> Attempt {
        match Envelope::parse(body) {
            Ok(mut message) if message.is_response() => {
                if message.id_key() != Some(upstream_id.to_string()) && message.id.is_some() {
                    return self.mid_call("the agent answered another request".into());
                }
                message.id = self.request.id.clone();
                Attempt::Done(Ok(message.to_bytes()))
            }
            _ => self.mid_call(format!(
                "the agent answered HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }

    /// Sends a notification or relayed request to the client's stream
    /// (opening it); dropped when the client asked for plain JSON.
    async fn emit(&mut self, data: Bytes) {
        if !self.caller.accepts_events {
            return;
        }
        if self.stream.is_none() {
            let (tx, rx) = mpsc::channel(STREAM_BUFFER);
            if let Some(head) = self.head.take() {
                let _ = head.send(Head::Events(rx));
            }
            self.stream = Some(tx);
        }
        if let Some(stream) = &self.stream {
            let _ = stream.send(sse::event(&data)).await;
        }
    }

    async fn emit_final(&mut self, body: Vec<u8>) {
        if let Some(head) = self.head.take() {
            let _ = head.send(Head::Json(body));
        } else if let Some(stream) = self.stream.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.send(sse::event(&body))).await;
        }
    }
}

/// The next message on `side`; never, without one.
async fn next_side(side: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    match side {
        Some(side) => side.recv().await,
        None => std::future::pending().await,
    }
}

#[derive(serde::Deserialize)]
struct Shape {
    result: Option<ResultShape>,
    error: Option<ErrorShape>,
}

#[derive(serde::Deserialize)]
struct ResultShape {
    #[serde(rename = "isError")]
    is_error: Option<bool>,
}

#[derive(serde::Deserialize)]
struct ErrorShape {
    code: i32,
}

/// Whether `body` is a tool error, and its JSON-RPC error code (one parse).
fn shape_of(body: &[u8]) -> (bool, Option<i32>) {
    match serde_json::from_slice::<Shape>(body) {
        Ok(shape) => {
            (shape.result.and_then(|r| r.is_error).unwrap_or(false), shape.error.map(|e| e.code))
        }
        Err(_) => (false, None),
    }
}
