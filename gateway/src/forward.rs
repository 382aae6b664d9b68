//! The gateway's `/mcp` endpoint. Requests addressed to one agent
//! (`tools/call`), answers to requests an agent relayed, and cancellations
//! are forwarded here; everything served from the routing table itself
//! (`initialize`, lists, `subscriptions/listen`, the legacy GET stream)
//! goes on to the MCP session layer behind.
//!
//! Errors are answered before anything is routed: a body that is not JSON
//! is HTTP 400 with `-32700`, one that is not a JSON-RPC message 400 with
//! `-32600`, a `tools/call` without a string `params.name` `-32602`, an
//! unknown legacy session 404 (for DELETE too), and a batch is accepted
//! only on a session of a revision that allows batches (2025-03-26).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use parking_lot::Mutex;
use rmcp::model::ErrorCode;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::access::{self, Principal};
use crate::call::{self, Caller, Rewrite, Target, json};
use crate::envelope::{Envelope, Malformed, error_response};
use crate::guard::Guard;
use crate::upstream::ClientHello;
use crate::{Gateway, GatewayConfig, GatewayHandler};

/// Largest request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// The stateless revision, whose requests carry their own metadata.
const MODERN: &str = "2026-07-28";
/// The one revision whose messages may come in batches.
const BATCH_REVISION: &str = "2025-03-26";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// What a 2026-07-28 list result must add: it is complete, and (the
/// catalog follows the registry) stale at once, for this client only.
const MODERN_LIST_HINTS: &str = r#","resultType":"complete","ttlMs":0,"cacheScope":"private""#;
/// An empty complete 2026-07-28 result.
const MODERN_EMPTY: &str = r#"{"resultType":"complete"}"#;
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

type Inner = StreamableHttpService<GatewayHandler, LocalSessionManager>;

/// Everything `/mcp` needs.
pub(crate) struct App {
    pub gateway: Gateway,
    pub config: GatewayConfig,
    inner: Inner,
    sessions: Arc<LocalSessionManager>,
    guard: Guard,
    /// What each legacy client said at `initialize`, by gateway session id.
    hellos: Mutex<HashMap<String, ClientHello>>,
}

// === impl App ===

impl App {
    pub fn new(
        config: &GatewayConfig,
        gateway: Gateway,
        inner: Inner,
        sessions: Arc<LocalSessionManager>,
    ) -> Self {
        Self {
            gateway,
            config: config.clone(),
            inner,
            sessions,
            guard: Guard::new(&config.allowed_hosts, &config.allowed_origins),
            hellos: Mutex::new(HashMap::new()),
        }
    }

    /// Forwards a client's `logging/setLevel` to its upstream sessions.
    fn set_level(self: &Arc<Self>, client: &str, body: &Bytes) {
        if let Ok(mut request) = Envelope::parse(body) {
            request.id = Some(crate::envelope::raw(&self.gateway.relay().next_id()));
            let body = Bytes::from(request.to_bytes());
            for (endpoint, session) in self.gateway.upstream().sessions_of(client) {
                let app = self.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    if let Err(error) =
                        app.gateway.upstream().post(&endpoint, &session, &[], body).await
                    {
                        tracing::debug!(?error, %endpoint, "logging level not forwarded");
                    }
                });
            }
        }
        if let Some(hello) = self.hellos.lock().get_mut(client) {
            hello.log_level = Some(body.clone());
        }
    }

    async fn pass(&self, parts: axum::http::request::Parts, body: Body) -> Response {
        let mut inner = self.inner.clone();
        let request = Request::from_parts(parts, body);
        match tower::Service::call(&mut inner, request).await {
            Ok(response) => response.map(Body::new),
            Err(infallible) => match infallible {},
        }
    }

    async fn known_session(&self, id: &str) -> bool {
        self.sessions.has_session(&Arc::from(id)).await.unwrap_or(false)
    }
}

/// The `/mcp` handler.
pub(crate) async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let principal = match app.gateway.access() {
        Some(access) => match access.authenticate(&parts, app.gateway.metrics()).await {
            Ok(principal) => principal,
            Err(refusal) => return refusal.response(None),
        },
        None => access::anonymous(),
    };
    // The session layer's handlers (tools/list) read it from here.
    parts.extensions.insert(principal);
    let session = header_str(&parts.headers, "mcp-session-id");
    if parts.method == Method::DELETE {
        if let Some(id) = &session {
            if !app.known_session(id).await {
                return unknown_session(id);
            }
            app.gateway.upstream().close_client(id);
            app.hellos.lock().remove(id);
        }
        return app.pass(parts, body).await;
    }
    if parts.method != Method::POST {
        return app.pass(parts, body).await;
    }
    if let Some(refusal) = app.guard.refusal(&parts.headers) {
        return (StatusCode::FORBIDDEN, refusal).into_response();
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let message = format!("request body: {error} (at most {MAX_BODY} bytes)");
            return json(StatusCode::PAYLOAD_TOO_LARGE, error_response(None, -32600, &message));
        }
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return batch(&app, parts, bytes, session).await;
    }
    one(&app, parts, bytes, session, false).await
}

/// One message.
async fn one(
    app: &Arc<App>,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    session: Option<String>,
    in_batch: bool,
) -> Response {
    let envelope = match Envelope::parse(&bytes) {
        Ok(envelope) => envelope,
        Err(malformed) => return malformed_response(malformed),
    };
    if let Some(id) = &session
        && !app.known_session(id).await
    {
        return unknown_session(id);
    }
    let method = envelope.method.as_deref();
    if method == Some("initialize") {
        return initialize(app, parts, bytes, &envelope).await;
    }
    let client = session.clone().unwrap_or_default();
    if envelope.is_response() {
        if let Some(id) = envelope.id_key()
            && let Some(origin) = app.gateway.relay().answered(&client, &id)
        {
            let mut answer = envelope;
            answer.id = Some(origin.upstream_id.clone());
            let body = Bytes::from(answer.to_bytes());
            let sent =
                app.gateway.upstream().post(&origin.endpoint, &origin.session, &[], body).await;
            if let Err(error) = sent {
                tracing::debug!(?error, endpoint = %origin.endpoint, "relayed answer not delivered");
            }
            return StatusCode::ACCEPTED.into_response();
        }
        return app.pass(parts, Body::from(bytes)).await;
    }
    if method == Some("notifications/cancelled") && envelope.id.is_none() {
        let request_id = envelope.params.as_ref().and_then(|p| p.get("requestId"));
        if let Some(request_id) = request_id
            && let Some(call) = app.gateway.relay().finish(&client, request_id.get())
        {
            let reason = envelope.param_str("reason").unwrap_or_else(|| "cancelled".into());
            app.gateway.cancel_upstream(&call, &reason);
            return StatusCode::ACCEPTED.into_response();
        }
        return app.pass(parts, Body::from(bytes)).await;
    }
    let method = method.unwrap_or_default().to_owned();
    let handled = matches!(
        method.as_str(),
        "tools/call"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "prompts/get"
            | "completion/complete"
            | "resources/list"
            | "resources/templates/list"
            | "prompts/list"
            | "logging/setLevel"
    );
    if !handled || envelope.id.is_none() {
        return app.pass(parts, Body::from(bytes)).await;
    }
    let modern = match &session {
        Some(_) => None,
        None => match check_modern(&parts.headers, &envelope, name_param(&method)) {
            Ok(version) => Some(version),
            Err(refusal) => return json(StatusCode::BAD_REQUEST, refusal),
        },
    };
    let id = envelope.id.as_deref();
    if !app.gateway.is_ready() {
        let error = crate::CallError::NotReady;
        return json(StatusCode::OK, error_response(id, error.code(), &error.message()));
    }
    let table = app.gateway.table();
    let catalog = &table.catalog;
    let listing = match method.as_str() {
        "resources/list" => Some(("resources", &catalog.resources)),
        "resources/templates/list" => Some(("resourceTemplates", &catalog.templates)),
        "prompts/list" => Some(("prompts", &catalog.prompts)),
        _ => None,
    };
    if let Some((field, items)) = listing {
        let cursor = envelope.param_str("cursor");
        let page = page(id, field, items, cursor, app.config.page_size, modern.is_some());
        return json(StatusCode::OK, page);
    }
    if method == "logging/setLevel" {
        // The level is the client's: its upstream sessions get it too.
        app.set_level(&client, &bytes);
        let result = if modern.is_some() { MODERN_EMPTY } else { "{}" };
        return json(StatusCode::OK, result_response(id, result));
    }
    let (target, route) = match target_of(&method, &envelope, &table) {
        Ok(found) => found,
        Err(Refusal::Params(message)) => {
            let status = if modern.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            return json(status, error_response(id, ErrorCode::INVALID_PARAMS.0, &message));
        }
        Err(Refusal::Routing(label, error)) => {
            app.gateway.metrics().request(&label, error.metric_label());
            if let Some(access) = app.gateway.access() {
                let exposed = envelope.param_str("name").or_else(|| envelope.param_str("uri"));
                access.audit().record(&access::Entry {
                    principal: &principal_of(&parts).id,
                    method: &method,
                    target: exposed.as_deref().unwrap_or(&label),
                    agent: None,
                    outcome: error.metric_label(),
                    latency: std::time::Duration::ZERO,
                    arguments: arguments_of(&envelope),
                    from: None,
                });
            }
            return json(StatusCode::OK, error_response(id, error.code(), &error.message()));
        }
    };
    let principal = principal_of(&parts);
    let mut authorization = None;
    if let Some(access) = app.gateway.access() {
        let by_prompt = matches!(target.rewrite, Rewrite::Ref("name"));
        let metrics = app.gateway.metrics();
        let exposed = &target.exposed;
        if let Err(refusal) =
            access.authorize(&principal, &method, by_prompt, exposed, &route.facts, metrics)
        {
            access.audit().record(&access::Entry {
                principal: &principal.id,
                method: &method,
                target: exposed,
                agent: None,
                outcome: &refusal.label(),
                latency: std::time::Duration::ZERO,
                arguments: arguments_of(&envelope),
                from: None,
            });
            return refusal.response(id);
        }
        if access.passes_token(exposed) {
            authorization = header_str(&parts.headers, "authorization");
        }
    }
    let hello = app.hellos.lock().get(&client).cloned().unwrap_or_default();
    // A batch's answers are one JSON array: no member streams.
    let accepts_events = !in_batch
        && header_str(&parts.headers, "accept")
            .is_some_and(|accept| accept.contains("text/event-stream"));
    let caller = Caller {
        client,
        hello,
        modern,
        accepts_events,
        headers: parts.headers,
        principal,
        authorization,
    };
    call::forward(app.gateway.clone(), caller, envelope, target, route).await
}

/// Why a routed request is not forwarded.
enum Refusal {
    /// Its params lack the routing key (-32602).
    Params(String),
    /// Nothing serves it: the metric label and the error.
    Routing(String, crate::CallError),
}

/// The `params` member a 2026-07-28 `Mcp-Name` header must repeat.
fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    }
}

/// Where `method` goes in `table`.
fn target_of(
    method: &str,
    envelope: &Envelope,
    table: &crate::RoutingTable,
) -> Result<(Target, crate::Route), Refusal> {
    let missing =
        |what: &str| Refusal::Params(format!("invalid params: {method} needs {what} (a string)"));
    let unknown = |kind: &str, key: &str| {
        let message = format!("unknown {kind} {key:?}: no agent in the mesh serves it");
        let error = rmcp::ErrorData::new(ErrorCode::INVALID_PARAMS, message, None);
        Refusal::Routing("-".into(), crate::CallError::Agent(error))
    };
    let target = |exposed: String, upstream_key: String, rewrite: Rewrite| Target {
        method: method.to_owned(),
        exposed,
        upstream_key,
        rewrite,
    };
    let catalog = &table.catalog;
    let prompt = |name: &str| catalog.prompt_routes.get(name).cloned();
    let (target, route) = match method {
        "tools/call" => {
            let name = envelope.param_str("name");
            let name = name.ok_or_else(|| missing("params.name, the tool's name"))?;
            let Some(route) = table.routes.get(&name).cloned() else {
                let error = crate::CallError::UnknownTool { name };
                return Err(Refusal::Routing("-".into(), error));
            };
            (target(name, route.upstream_tool.clone(), Rewrite::Param("name")), route)
        }
        "prompts/get" => {
            let name = envelope.param_str("name");
            let name = name.ok_or_else(|| missing("params.name, the prompt's name"))?;
            let route = prompt(&name).ok_or_else(|| unknown("prompt", &name))?;
            (target(name, route.upstream_tool.clone(), Rewrite::Param("name")), route)
        }
        "completion/complete" => match envelope.ref_str("name") {
            Some(name) => {
                let route = prompt(&name).ok_or_else(|| unknown("prompt", &name))?;
                (target(name, route.upstream_tool.clone(), Rewrite::Ref("name")), route)
            }
            None => {
                let uri = envelope.ref_str("uri");
                let uri = uri.ok_or_else(|| missing("params.ref.name or params.ref.uri"))?;
                let found = catalog.template(&uri).or_else(|| catalog.resource(&uri));
                let (route, upstream) = found.ok_or_else(|| unknown("resource template", &uri))?;
                (target(uri, upstream, Rewrite::Ref("uri")), route)
            }
        },
        _ => {
            let uri = envelope.param_str("uri");
            let uri = uri.ok_or_else(|| missing("params.uri, the resource's URI"))?;
            let (route, upstream) =
                catalog.resource(&uri).ok_or_else(|| unknown("resource", &uri))?;
            (target(uri, upstream, Rewrite::Param("uri")), route)
        }
    };
    if route.replicas.is_empty() {
        let error = crate::CallError::NoReplica { tool: target.exposed.clone() };
        return Err(Refusal::Routing(target.exposed, error));
    }
    Ok((target, route))
}

/// One page of a federated list; the cursor is the last key of the previous page.
fn page(
    id: Option<&RawValue>,
    field: &str,
    items: &[crate::Listed],
    cursor: Option<String>,
    page_size: usize,
    modern: bool,
) -> Vec<u8> {
    let after = cursor.as_deref().and_then(decode_cursor);
    if let (Some(cursor), None) = (&cursor, &after) {
        let message = format!("invalid params: bad cursor {cursor:?}");
        return error_response(id, ErrorCode::INVALID_PARAMS.0, &message);
    }
    let start = after.map_or(0, |after| items.partition_point(|(key, _)| *key <= after));
    let page: Vec<&RawValue> =
        items.iter().skip(start).take(page_size).map(|(_, d)| d.as_ref()).collect();
    let listed = crate::envelope::raw(&page);
    let mut text = format!("{{\"{field}\":{}", listed.get());
    if start + page_size < items.len()
        && let Some((last, _)) = items.get(start + page_size - 1)
    {
        let cursor = Value::from(encode_cursor(last));
        text.push_str(&format!(",\"nextCursor\":{cursor}"));
    }
    if modern {
        text.push_str(MODERN_LIST_HINTS);
    }
    text.push('}');
    result_response(id, &text)
}

fn encode_cursor(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_cursor(cursor: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

/// A JSON-RPC result response whose result is the JSON text `result`.
fn result_response(id: Option<&RawValue>, result: &str) -> Vec<u8> {
    let id = id.map_or("null", RawValue::get);
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes()
}

/// `initialize` is served by the session layer; what the client said is
/// kept for the upstream sessions opened on its behalf.
async fn initialize(
    app: &Arc<App>,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    envelope: &Envelope,
) -> Response {
    let param = |key: &str| -> Value {
        envelope
            .params
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null)
    };
    let hello = ClientHello {
        protocol_version: envelope.param_str("protocolVersion"),
        capabilities: param("capabilities"),
        client_info: param("clientInfo"),
        log_level: None,
    };
    let response = app.pass(parts, Body::from(bytes)).await;
    if let Some(id) = header_str(response.headers(), "mcp-session-id") {
        app.hellos.lock().insert(id, hello);
        prune(app).await;
    }
    response
}

/// Drops what is kept for sessions that ended without a DELETE.
async fn prune(app: &Arc<App>) {
    let clients: Vec<String> = app.hellos.lock().keys().cloned().collect();
    for client in clients {
        if !app.known_session(&client).await {
            app.hellos.lock().remove(&client);
            app.gateway.upstream().close_client(&client);
        }
    }
}

/// A batch: each message answered in turn, the answers in one array.
async fn batch(
    app: &Arc<App>,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    session: Option<String>,
) -> Response {
    let messages: Vec<Box<RawValue>> = match serde_json::from_slice(&bytes) {
        Ok(messages) => messages,
        Err(error) => return malformed_response(Malformed::Parse(format!("parse error: {error}"))),
    };
    let version = session.as_ref().and_then(|id| app.hellos.lock().get(id).cloned());
    let version = version.and_then(|hello| hello.protocol_version);
    if messages.is_empty() || version.as_deref() != Some(BATCH_REVISION) {
        let message = format!(
            "invalid request: a JSON-RPC batch is allowed only on a session of revision {BATCH_REVISION}{}",
            if messages.is_empty() { " and must not be empty" } else { "" }
        );
        return json(StatusCode::BAD_REQUEST, error_response(None, -32600, &message));
    }
    let mut answers: Vec<Bytes> = Vec::new();
    for message in messages {
        let body = Bytes::copy_from_slice(message.get().as_bytes());
        let response = Box::pin(one(app, parts.clone(), body, session.clone(), true)).await;
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            continue;
        }
        let events = header_str(response.headers(), "content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let read = axum::body::to_bytes(response.into_body(), MAX_BODY);
        let answer = match tokio::time::timeout(app.config.call_timeout, read).await {
            Ok(Ok(answer)) if events => answer_of_events(&answer),
            Ok(Ok(answer)) => Some(answer),
            _ => None,
        };
        // One array answers the batch: each member's JSON answer.
        if let Some(answer) = answer
            && serde_json::from_slice::<&RawValue>(&answer).is_ok()
        {
            answers.push(answer);
        }
    }
    if answers.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    let mut out = Vec::from(&b"["[..]);
    for (i, answer) in answers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(answer);
    }
    out.push(b']');
    json(StatusCode::OK, out)
}

/// The answer (the last message with no method) in an SSE body.
fn answer_of_events(body: &[u8]) -> Option<Bytes> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| Envelope::parse(data.as_bytes()).is_ok_and(|m| m.is_response()))
        .map(|data| Bytes::copy_from_slice(data.as_bytes()))
}

/// Checks a stateless (2026-07-28) request's headers against its body;
/// returns its revision, or the error to answer with HTTP 400.
fn check_modern(
    headers: &HeaderMap,
    envelope: &Envelope,
    name_param: Option<&str>,
) -> Result<String, Vec<u8>> {
    let id = envelope.id.as_deref();
    let refuse = |code: i32, message: String| Err(error_response(id, code, &message));
    let header_version = header_str(headers, "mcp-protocol-version");
    let meta = envelope.meta();
    let meta_version = meta.get(META_VERSION).and_then(Value::as_str);
    let Some(meta_version) = meta_version else {
        if header_version.is_none() {
            return refuse(
                -32600,
                "bad request: Mcp-Session-Id header is required (initialize first)".into(),
            );
        }
        return refuse(
            ErrorCode::INVALID_PARAMS.0,
            format!("invalid params: params._meta must carry {META_VERSION}"),
        );
    };
    let mismatch = ErrorCode::HEADER_MISMATCH.0;
    let Some(header_version) = header_version else {
        return refuse(mismatch, "header mismatch: MCP-Protocol-Version header is missing".into());
    };
    if header_version != meta_version {
        return refuse(
            mismatch,
            format!(
                "header mismatch: MCP-Protocol-Version header ({header_version}) differs from params._meta {META_VERSION} ({meta_version})"
            ),
        );
    }
    if meta_version != MODERN {
        return refuse(
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION.0,
            format!(
                "unsupported protocol version {meta_version:?} without a session: {MODERN} is supported"
            ),
        );
    }
    if !meta.contains_key(META_CAPABILITIES) {
        return refuse(
            ErrorCode::INVALID_PARAMS.0,
            format!("invalid params: params._meta must carry {META_CAPABILITIES}"),
        );
    }
    let method = envelope.method.as_deref().unwrap_or_default();
    match header_str(headers, "mcp-method") {
        Some(header) if header == method => {}
        other => {
            return refuse(
                mismatch,
                format!(
                    "header mismatch: Mcp-Method header {other:?} differs from method {method:?}"
                ),
            );
        }
    }
    if let Some(param) = name_param {
        let name = envelope.param_str(param).unwrap_or_default();
        match header_str(headers, "mcp-name") {
            Some(header) if header == name => {}
            other => {
                let message = format!(
                    "header mismatch: Mcp-Name header {other:?} differs from params.{param} {name:?}"
                );
                return refuse(mismatch, message);
            }
        }
    }
    Ok(meta_version.to_owned())
}

fn malformed_response(malformed: Malformed) -> Response {
    let (code, message) = match malformed {
        Malformed::Parse(message) => (ErrorCode::PARSE_ERROR.0, message),
        Malformed::Invalid(message) => (ErrorCode::INVALID_REQUEST.0, message),
    };
    json(StatusCode::BAD_REQUEST, error_response(None, code, &message))
}

fn unknown_session(id: &str) -> Response {
    let message =
        format!("session not found: Mcp-Session-Id {id:?} is unknown or ended; initialize again");
    json(StatusCode::NOT_FOUND, error_response(None, -32600, &message))
}

/// The caller `handle` authenticated (anonymous without an access layer).
fn principal_of(parts: &axum::http::request::Parts) -> Arc<Principal> {
    parts.extensions.get::<Arc<Principal>>().cloned().unwrap_or_else(access::anonymous)
}

/// A call's raw `params.arguments`, for the audit's hash.
fn arguments_of(envelope: &Envelope) -> Option<&RawValue> {
    envelope.params.as_ref().and_then(|p| p.get("arguments")).map(|a| &**a)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
