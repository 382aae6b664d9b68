//! A stateful MCP server (Streamable HTTP, legacy sessions) that records
//! everything it receives, for proving what the gateway forwards. Tools:
//! `remember {value}` / `recall` (per-session state), `chatty` (progress
//! and log notifications on an SSE answer before its result), `ask` (an
//! elicitation mid-call; the result echoes the answer) and `hang` (never
//! answers; records its cancellation). Each session may open a GET stream,
//! where `notify` sends messages outside any request. `restart` drops
//! every session and connection and serves again on the same address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Everything the recorder received.
#[derive(Debug, Default, Clone)]
pub struct Records {
    /// `initialize` params, in order.
    pub initializes: Vec<Value>,
    /// `tools/call` messages accepted on a live session (whole messages).
    pub calls: Vec<Value>,
    /// `notifications/cancelled` params.
    pub cancelled: Vec<Value>,
    /// Answers to the recorder's own requests (whole messages).
    pub answers: Vec<Value>,
    /// Other requests (resources, prompts, completion, logging), whole.
    pub requests: Vec<Value>,
    /// The `Authorization` header of each `tools/call` ("" when absent).
    pub call_authorizations: Vec<String>,
}

#[derive(Default)]
struct Inner {
    name: String,
    records: Records,
    sessions: HashMap<String, HashMap<String, String>>,
    waiting: HashMap<String, oneshot::Sender<Value>>,
    next_session: u64,
    /// Session → its GET stream.
    streams: HashMap<String, mpsc::Sender<Result<Bytes, std::convert::Infallible>>>,
}

type Shared = Arc<Mutex<Inner>>;

/// The running recorder.
pub struct RecordingUpstream {
    pub addr: SocketAddr,
    state: Shared,
    task: JoinHandle<()>,
}

impl RecordingUpstream {
    pub async fn start() -> Self {
        Self::named("recorder").await
    }

    /// A recorder that names itself `name` in what it serves.
    pub async fn named(name: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Shared::default();
        state.lock().unwrap().name = name.to_owned();
        let task = serve(listener, state.clone());
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn records(&self) -> Records {
        self.state.lock().unwrap().records.clone()
    }

    /// Number of live sessions.
    pub fn sessions(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }

    /// Number of sessions with an open GET stream.
    pub fn streams(&self) -> usize {
        let mut inner = self.state.lock().unwrap();
        inner.streams.retain(|_, tx| !tx.is_closed());
        inner.streams.len()
    }

    /// Sends `message` on every open GET stream, outside any request.
    pub async fn notify(&self, message: &Value) {
        let streams: Vec<_> = self.state.lock().unwrap().streams.values().cloned().collect();
        for stream in streams {
            let _ =
                stream.send(Ok(Bytes::from(format!("event: message\ndata: {message}\n\n")))).await;
        }
    }

    /// A crash and restart on the same address: sessions and connections
    /// are gone (records are kept).
    pub async fn restart(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        {
            let mut inner = self.state.lock().unwrap();
            inner.sessions.clear();
            inner.waiting.clear();
            inner.streams.clear();
        }
        let listener = crate::eventually(
            "rebinding the recorder",
            std::time::Duration::from_secs(10),
            || async { tokio::net::TcpListener::bind(self.addr).await.ok() },
        )
        .await;
        self.task = serve(listener, self.state.clone());
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn serve(listener: tokio::net::TcpListener, state: Shared) -> JoinHandle<()> {
    let app = axum::Router::new()
        .route("/mcp", axum::routing::post(post).get(get).delete(delete))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

fn json_answer(value: &Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn text(id: &Value, text: &str) -> Value {
    result(id, json!({"content": [{"type": "text", "text": text}]}))
}

async fn delete(State(state): State<Shared>, headers: HeaderMap) -> StatusCode {
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut inner = state.lock().unwrap();
    inner.streams.remove(session);
    match inner.sessions.remove(session) {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    }
}

/// The session's GET stream: a priming event, then whatever `notify` sends.
async fn get(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (tx, rx) = mpsc::channel(16);
    {
        let mut inner = state.lock().unwrap();
        if !inner.sessions.contains_key(session) {
            return (StatusCode::NOT_FOUND, "unknown session").into_response();
        }
        inner.streams.insert(session.to_owned(), tx.clone());
    }
    let _ = tx.send(Ok(Bytes::from_static(b"id: s-0\nretry: 200\ndata:\n\n"))).await;
    event_stream(rx)
}

async fn post(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let method = message["method"].as_str().unwrap_or_default().to_owned();
    let id = message["id"].clone();
    if method == "initialize" {
        let mut inner = state.lock().unwrap();
        inner.next_session += 1;
        let session = format!("rec-{}", inner.next_session);
        inner.sessions.insert(session.clone(), HashMap::new());
        inner.records.initializes.push(message["params"].clone());
        let version = message["params"]["protocolVersion"].clone();
        let answer = result(
            &id,
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {}, "logging": {}},
                "serverInfo": {"name": "recorder", "version": "1.0.0"},
            }),
        );
        return ([("mcp-session-id", session.as_str())], json_answer(&answer)).into_response();
    }
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !state.lock().unwrap().sessions.contains_key(session) {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    }
    let session = session.to_owned();
    if method.is_empty() {
        let mut inner = state.lock().unwrap();
        inner.records.answers.push(message.clone());
        if let Some(waiter) = inner.waiting.remove(&id.to_string()) {
            let _ = waiter.send(message);
        }
        return StatusCode::ACCEPTED.into_response();
    }
    if method == "notifications/cancelled" {
        state.lock().unwrap().records.cancelled.push(message["params"].clone());
        return StatusCode::ACCEPTED.into_response();
    }
    if id.is_null() {
        return StatusCode::ACCEPTED.into_response();
    }
    if method != "tools/call" {
        let me = {
            let mut inner = state.lock().unwrap();
            inner.records.requests.push(message.clone());
            inner.name.clone()
        };
        let params = &message["params"];
        let answer = match method.as_str() {
            "resources/read" => {
                let uri = params["uri"].as_str().unwrap_or_default();
                json!({"contents": [{"uri": uri, "text": format!("{me}: {uri}")}]})
            }
            "prompts/get" => {
                let name = params["name"].as_str().unwrap_or_default();
                json!({"messages": [{"role": "user",
                    "content": {"type": "text", "text": format!("{me}: {name}")}}]})
            }
            "completion/complete" => {
                json!({"completion": {"values": [format!("{me}: {}", params["ref"])]}})
            }
            _ => json!({}),
        };
        return json_answer(&result(&id, answer));
    }
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let authorization = authorization.unwrap_or_default().to_owned();
    state.lock().unwrap().records.call_authorizations.push(authorization);
    state.lock().unwrap().records.calls.push(message.clone());
    let params = &message["params"];
    let name = params["name"].as_str().unwrap_or_default();
    match name {
        "remember" => {
            let value = params["arguments"]["value"].as_str().unwrap_or_default().to_owned();
            let mut inner = state.lock().unwrap();
            let store = inner.sessions.entry(session).or_default();
            let previous = store.insert("value".into(), value).unwrap_or_default();
            json_answer(&text(&id, &previous))
        }
        "recall" => {
            let inner = state.lock().unwrap();
            let value = inner.sessions.get(&session).and_then(|s| s.get("value")).cloned();
            json_answer(&text(&id, &value.unwrap_or_default()))
        }
        "chatty" => {
            let token = params["_meta"]["progressToken"].clone();
            let mut events: Vec<Value> = (1..=3)
                .map(|n| {
                    json!({"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": n, "total": 3}})
                })
                .collect();
            events.push(json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "halfway there"}}));
            events.push(text(&id, "done"));
            sse(events.into_iter().map(Ok).collect(), None)
        }
        "ask" => {
            let (tx, rx) = oneshot::channel();
            state.lock().unwrap().waiting.insert("\"e1\"".into(), tx);
            let question = json!({"jsonrpc": "2.0", "id": "e1", "method": "elicitation/create",
                "params": {"message": "favourite colour?", "requestedSchema": {"type": "object",
                "properties": {"color": {"type": "string"}}}}});
            let id = id.clone();
            let later = async move {
                let answer = rx.await.unwrap_or(Value::Null);
                let color =
                    answer["result"]["content"]["color"].as_str().unwrap_or("none").to_owned();
                text(&id, &format!("you said {color}"))
            };
            sse(vec![Ok(question)], Some(Box::pin(later)))
        }
        "hang" => sse(Vec::new(), Some(Box::pin(std::future::pending()))),
        other => json_answer(&json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32602, "message": format!("unknown tool {other:?}")}})),
    }
}

type Later = std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>>;

/// An SSE answer: `events` now, then `later`'s message when it resolves.
fn sse(events: Vec<Result<Value, ()>>, later: Option<Later>) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(16);
    tokio::spawn(async move {
        let frame = |v: &Value| Ok(Bytes::from(format!("event: message\ndata: {v}\n\n")));
        let _ = tx.send(Ok(Bytes::from_static(b"id: 0\ndata:\n\n"))).await;
        for event in events.into_iter().flatten() {
            let _ = tx.send(frame(&event)).await;
        }
        if let Some(later) = later {
            let last = later.await;
            let _ = tx.send(frame(&last)).await;
        }
    });
    event_stream(rx)
}

type Frames = mpsc::Receiver<Result<Bytes, std::convert::Infallible>>;

/// An SSE response of the frames `rx` yields.
fn event_stream(rx: Frames) -> Response {
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
