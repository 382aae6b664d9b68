//! The upstream side: one kept-alive HTTP client (TCP_NODELAY) to every
//! agent, and upstream MCP sessions.
//!
//! A stateful upstream (one that answers `initialize` with an
//! `Mcp-Session-Id`) gets one session per gateway client session, opened
//! lazily with that client's capabilities and `clientInfo`, closed with it.
//! A stateless upstream's handshake result is shared by every client. An
//! upstream answering 404 for a session has forgotten it (a restart, an
//! expiry): the request certainly did not run there, so the session is
//! re-opened and the request sent once more.
//!
//! A client's stateful session also gets the upstream's GET stream, opened
//! before the session is handed out: what an agent sends outside a request
//! (logs, resource updates, its own requests) must not be sent while nobody
//! listens, since the agent would drop it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::sse::SseReader;

mod pool;

/// How long an unused upstream connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The protocol revision asked for when the client named none.
const FALLBACK_VERSION: &str = "2025-06-18";

/// What a gateway client told the gateway at `initialize`; forwarded to
/// every upstream session opened for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientHello {
    pub protocol_version: Option<String>,
    pub capabilities: Value,
    pub client_info: Value,
    /// The client's last `logging/setLevel` request, sent to new sessions too.
    pub log_level: Option<Bytes>,
}

/// One upstream session: its id (none for a stateless upstream) and the
/// negotiated revision.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamSession {
    pub id: Option<String>,
    pub protocol_version: String,
}

/// Why an upstream exchange failed.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection could be made: the request never left.
    NeverSent(String),
    /// The request may have reached the agent.
    MidCall(String),
}

/// One session slot: filled once; `closed` is cancelled when it is forgotten.
struct Entry {
    session: OnceCell<UpstreamSession>,
    closed: CancellationToken,
}

type Cell = Arc<Entry>;

/// A session handed to a caller.
pub(crate) struct Opened {
    pub session: UpstreamSession,
    /// Set for the caller that just opened a client's stateful session:
    /// the session's GET stream (none when the upstream has none), and the
    /// token cancelled when the session ends.
    pub fresh: Option<(Option<reqwest::Response>, CancellationToken)>,
}

/// What a GET for the session's stream found.
pub(crate) enum Listen {
    /// The stream is open.
    Open(reqwest::Response),
    /// No stream to listen to: the upstream has none (405) or forgot the session (404).
    Never,
}

/// The upstream HTTP client and session table.
pub(crate) struct Upstream {
    http: reqwest::Client,
    /// POSTs to plain-`http` agents (none when an HTTP proxy is configured:
    /// `http` then goes through the proxy as well).
    pool: Option<pool::Pool>,
    connect_timeout: Duration,
    /// (gateway client key, endpoint) → session.
    sessions: Mutex<HashMap<(String, String), Cell>>,
    /// Endpoints known to be stateless: their session is shared (key "").
    stateless: Mutex<std::collections::HashSet<String>>,
    /// Cancelled when the gateway stops: every session's stream ends with it.
    stopped: CancellationToken,
}

/// The answer head of one POST.
pub(crate) enum Answer {
    /// A JSON body.
    Json(Bytes),
    /// An SSE stream.
    Events(SseReader),
    /// No body (202 for a notification or a response).
    Accepted,
}

// === impl Upstream ===

impl Upstream {
    pub fn new(connect_timeout: Duration, tls: Option<&switchboard_tls::ClientTls>) -> Self {
        let builder = switchboard_tls::http_client_builder()
            .tcp_nodelay(true)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(IDLE_TIMEOUT);
        let builder = match tls {
            Some(tls) => tls.http_client(builder),
            None => builder,
        };
        let http = builder.build().unwrap_or_else(|error| {
            tracing::warn!(%error, "upstream: cannot build the configured http client; using the default");
            reqwest::Client::new()
        });
        let proxied = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        let pool = (!proxied).then(|| pool::Pool::new(connect_timeout, IDLE_TIMEOUT));
        Self {
            http,
            pool,
            connect_timeout,
            sessions: Mutex::new(HashMap::new()),
            stateless: Mutex::new(std::collections::HashSet::new()),
            stopped: CancellationToken::new(),
        }
    }

    /// Ends the relay of every session's stream (the gateway stops serving).
    pub fn stop(&self) {
        self.stopped.cancel();
    }

    /// The session of `client` at `endpoint`, opened if needed.
    pub async fn session(
        &self,
        client: &str,
        endpoint: &str,
        hello: &ClientHello,
    ) -> Result<Opened, UpstreamError> {
        let key = self.key(client, endpoint);
        let cell = self
            .sessions
            .lock()
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Entry { session: OnceCell::new(), closed: self.stopped.child_token() })
            })
            .clone();
        let mut fresh = None;
        let (slot, per_client, closed) = (&mut fresh, !key.0.is_empty(), cell.closed.clone());
        let init = move || async move {
            let session = self.initialize(endpoint, hello).await?;
            if session.id.is_some() && per_client {
                let stream = match self.listen(endpoint, &session, None).await {
                    Ok(Listen::Open(response)) => Some(response),
                    Ok(Listen::Never) => None,
                    Err(error) => {
                        // Not fatal: the listener retries.
                        tracing::debug!(?error, endpoint, "upstream stream not opened yet");
                        None
                    }
                };
                *slot = Some((stream, closed));
            }
            Ok(session)
        };
        let made = cell.session.get_or_try_init(init).await.cloned();
        let made = made.map(|session| Opened { session, fresh: fresh.take() });
        match &made {
            Ok(Opened { session, .. }) if session.id.is_none() && !key.0.is_empty() => {
                // Stateless: share it and drop the per-client entry.
                self.stateless.lock().insert(endpoint.to_owned());
                let mut sessions = self.sessions.lock();
                sessions.remove(&key);
                sessions.entry((String::new(), endpoint.to_owned())).or_insert(cell);
            }
            Ok(_) => {}
            Err(_) => self.forget_cell(&key, &cell),
        }
        made
    }

    fn key(&self, client: &str, endpoint: &str) -> (String, String) {
        if self.stateless.lock().contains(endpoint) {
            (String::new(), endpoint.to_owned())
        } else {
            (client.to_owned(), endpoint.to_owned())
        }
    }

    /// Forgets `session` of `client` at `endpoint` (the upstream lost it).
    pub fn forget(&self, client: &str, endpoint: &str, session: &UpstreamSession) {
        let key = self.key(client, endpoint);
        let mut sessions = self.sessions.lock();
        let same = sessions
            .get(&key)
            .and_then(|cell| cell.session.get())
            .is_some_and(|current| current.id == session.id);
        if same && let Some(cell) = sessions.remove(&key) {
            cell.closed.cancel();
        }
    }

    fn forget_cell(&self, key: &(String, String), cell: &Cell) {
        let mut sessions = self.sessions.lock();
        if sessions.get(key).is_some_and(|current| Arc::ptr_eq(current, cell)) {
            sessions.remove(key);
            cell.closed.cancel();
        }
    }

    /// Forgets every session at `endpoint` (it left the mesh).
    pub fn forget_endpoint(&self, endpoint: &str) {
        self.sessions.lock().retain(|(_, at), cell| {
            let keep = at != endpoint;
            if !keep {
                cell.closed.cancel();
            }
            keep
        });
        self.stateless.lock().remove(endpoint);
        if let Some(pool) = &self.pool {
            pool.forget(endpoint);
        }
    }

    /// The open upstream sessions of `client` (shared ones included).
    pub fn sessions_of(&self, client: &str) -> Vec<(String, UpstreamSession)> {
        let sessions = self.sessions.lock();
        sessions
            .iter()
            .filter(|((c, _), _)| c == client || c.is_empty())
            .filter_map(|((_, endpoint), cell)| {
                cell.session.get().map(|s| (endpoint.clone(), s.clone()))
            })
            .collect()
    }

    /// Closes every upstream session of `client` (its gateway session ended).
    pub fn close_client(&self, client: &str) {
        let closed: Vec<((String, String), Cell)> = {
            let mut sessions = self.sessions.lock();
            let keys: Vec<_> = sessions.keys().filter(|(c, _)| c == client).cloned().collect();
            keys.into_iter().filter_map(|k| sessions.remove(&k).map(|cell| (k, cell))).collect()
        };
        for ((_, endpoint), cell) in closed {
            cell.closed.cancel();
            let Some(UpstreamSession { id: Some(id), .. }) = cell.session.get().cloned() else {
                continue;
            };
            let http = self.http.clone();
            tokio::spawn(async move {
                let sent = http.delete(&endpoint).header("Mcp-Session-Id", id).send().await;
                if let Err(error) = sent {
                    tracing::debug!(%error, %endpoint, "upstream session not closed");
                }
            });
        }
    }

    async fn initialize(
        &self,
        endpoint: &str,
        hello: &ClientHello,
    ) -> Result<UpstreamSession, UpstreamError> {
        let version = hello.protocol_version.clone().unwrap_or_else(|| FALLBACK_VERSION.into());
        let mut client_info = hello.client_info.clone();
        if !client_info.is_object() {
            client_info =
                json!({"name": "switchboard-gateway", "version": env!("CARGO_PKG_VERSION")});
        }
        let capabilities =
            if hello.capabilities.is_object() { hello.capabilities.clone() } else { json!({}) };
        let body = json!({
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": capabilities,
                "clientInfo": client_info,
                "_meta": {"io.switchboard/gateway": {
                    "name": "switchboard-gateway",
                    "version": env!("CARGO_PKG_VERSION"),
                }},
            },
        });
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let exchange = async {
            let response = self.send(endpoint, None, &version, &[], bytes).await?;
            let session = header(&response, "mcp-session-id");
            let answer = read_first(response).await?;
            let negotiated = serde_json::from_slice::<Value>(&answer)
                .ok()
                .and_then(|v| v["result"]["protocolVersion"].as_str().map(str::to_owned));
            let Some(negotiated) = negotiated else {
                return Err(UpstreamError::NeverSent(format!(
                    "initialize refused: {}",
                    String::from_utf8_lossy(&answer)
                )));
            };
            let session = UpstreamSession { id: session, protocol_version: negotiated };
            let initialized =
                Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
            let sent = self.send(
                endpoint,
                session.id.as_deref(),
                &session.protocol_version,
                &[],
                initialized,
            );
            sent.await?;
            if let Some(level) = &hello.log_level {
                let level = Bytes::from(with_id(level, "0"));
                let sent = self.send(
                    endpoint,
                    session.id.as_deref(),
                    &session.protocol_version,
                    &[],
                    level,
                );
                if let Err(error) = sent.await {
                    tracing::debug!(?error, endpoint, "logging level not forwarded");
                }
            }
            Ok(session)
        };
        match tokio::time::timeout(self.connect_timeout, exchange).await {
            Ok(made) => made,
            Err(_) => Err(UpstreamError::NeverSent(format!(
                "no handshake within {:?}",
                self.connect_timeout
            ))),
        }
    }

    /// POSTs `body` to `endpoint`; classifies failures.
    pub async fn send(
        &self,
        endpoint: &str,
        session: Option<&str>,
        version: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut request = self
            .http
            .post(endpoint)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", version);
        if let Some(session) = session {
            request = request.header("Mcp-Session-Id", session);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.body(body).send().await.map_err(|error| classify(&error))
    }

    /// Opens the GET stream of `session` at `endpoint`, resuming after
    /// `last_event` when given.
    pub async fn listen(
        &self,
        endpoint: &str,
        session: &UpstreamSession,
        last_event: Option<&str>,
    ) -> Result<Listen, UpstreamError> {
        let mut request = self
            .http
            .get(endpoint)
            .header("Accept", "text/event-stream")
            .header("MCP-Protocol-Version", &session.protocol_version);
        if let Some(id) = &session.id {
            request = request.header("Mcp-Session-Id", id);
        }
        if let Some(last) = last_event {
            request = request.header("Last-Event-ID", last);
        }
        let head = tokio::time::timeout(self.connect_timeout, request.send()).await;
        let response = match head {
            Ok(sent) => sent.map_err(|error| classify(&error))?,
            Err(_) => {
                let message = format!("no stream within {:?}", self.connect_timeout);
                return Err(UpstreamError::NeverSent(message));
            }
        };
        let status = response.status().as_u16();
        let events =
            header(&response, "content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        match status {
            200..=299 if events => Ok(Listen::Open(response)),
            404 | 405 => Ok(Listen::Never),
            _ => Err(UpstreamError::NeverSent(format!("the stream answered HTTP {status}"))),
        }
    }

    /// POSTs `body` and reads the answer's head.
    pub async fn post(
        &self,
        endpoint: &str,
        session: &UpstreamSession,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(u16, Answer), UpstreamError> {
        if let Some(pool) = &self.pool
            && endpoint.starts_with("http://")
        {
            let headers = post_headers(session, headers)?;
            return pool.post(endpoint, headers, body).await;
        }
        let response = self
            .send(endpoint, session.id.as_deref(), &session.protocol_version, headers, body)
            .await?;
        let status = response.status().as_u16();
        if status == 202 {
            return Ok((status, Answer::Accepted));
        }
        let events =
            header(&response, "content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        if events {
            return Ok((status, Answer::Events(SseReader::new(response))));
        }
        let body = response.bytes().await.map_err(|e| UpstreamError::MidCall(e.to_string()))?;
        Ok((status, Answer::Json(body)))
    }
}

/// The headers of a POST on `session`, `extra` added.
fn post_headers(
    session: &UpstreamSession,
    extra: &[(&str, String)],
) -> Result<reqwest::header::HeaderMap, UpstreamError> {
    use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
    let value = |name: &str, value: &str| {
        HeaderValue::from_str(value)
            .map_err(|_| UpstreamError::NeverSent(format!("bad {name} header value {value:?}")))
    };
    let mut headers = HeaderMap::with_capacity(4 + extra.len());
    headers.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let version = value("MCP-Protocol-Version", &session.protocol_version)?;
    headers.insert(HeaderName::from_static("mcp-protocol-version"), version);
    if let Some(id) = &session.id {
        headers.insert(HeaderName::from_static("mcp-session-id"), value("Mcp-Session-Id", id)?);
    }
    for (name, text) in extra {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| UpstreamError::NeverSent(format!("bad header name {name:?}")))?;
        headers.append(header, value(name, text)?);
    }
    Ok(headers)
}

/// `request` with its id replaced by the JSON text `id`.
fn with_id(request: &[u8], id: &str) -> Vec<u8> {
    match crate::envelope::Envelope::parse(request) {
        Ok(mut envelope) => {
            envelope.id = serde_json::value::RawValue::from_string(id.to_owned()).ok();
            envelope.to_bytes()
        }
        Err(_) => request.to_vec(),
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The first JSON-RPC message of an answer (JSON or SSE).
async fn read_first(response: reqwest::Response) -> Result<Bytes, UpstreamError> {
    let events =
        header(&response, "content-type").is_some_and(|t| t.starts_with("text/event-stream"));
    if events {
        let mut reader = SseReader::new(response);
        return match reader.next().await {
            Some(Ok(data)) => Ok(data),
            Some(Err(error)) => Err(error),
            None => Err(UpstreamError::MidCall("the stream ended without an answer".into())),
        };
    }
    response.bytes().await.map_err(|e| UpstreamError::MidCall(e.to_string()))
}

/// A connect failure never sent the request; anything else may have.
pub(crate) fn classify(error: &reqwest::Error) -> UpstreamError {
    if error.is_connect() {
        UpstreamError::NeverSent(format!("cannot connect: {error}"))
    } else {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        UpstreamError::MidCall(message)
    }
}
