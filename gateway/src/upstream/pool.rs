//! Kept-alive HTTP/1.1 connections to plain-`http` agents, each driven by
//! the request that uses it.
//!
//! A pooled client hands every request to a connection task and the answer
//! back over a channel: two task wake-ups per call (often on the other
//! worker, each a futex call), which on a loopback call cost more than the
//! HTTP work itself. Here the connection is polled inside the request's own
//! future while the exchange runs, so a JSON answer is written, read and
//! returned by one task. Only a streamed (SSE) answer hands its connection
//! to a task of its own, since its body outlives the request future.
//!
//! Nobody polls an idle connection. The next request polls it first: a
//! close the agent sent meanwhile is read then, and that connection is
//! dropped before anything is written to it. A request the connection
//! refused before writing a byte is sent on another connection; once it
//! may have been written, a failure is final (the caller decides).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Answer, UpstreamError};
use crate::sse::SseReader;

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// Idle connections kept per agent address; more are closed.
const MAX_IDLE_PER_HOST: usize = 512;

/// One kept-alive connection: the sender, and the connection future the
/// user polls (none once it ended).
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    io: Option<Pin<Box<Connection>>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Idle connections by `host:port`.
pub(crate) struct Pool {
    idle: Mutex<HashMap<String, VecDeque<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

// === impl Pool ===

impl Pool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self { idle: Mutex::new(HashMap::new()), connect_timeout, idle_timeout }
    }

    /// Closes the idle connections to the agent at `endpoint` (it left).
    pub fn forget(&self, endpoint: &str) {
        if let Ok(uri) = endpoint.parse::<Uri>()
            && let Some(address) = address_of(&uri)
        {
            self.idle.lock().remove(&address);
        }
    }

    /// POSTs `body` with `headers` to the `http` URL `endpoint`; reads a
    /// JSON answer whole.
    pub async fn post(
        &self,
        endpoint: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<(u16, Answer), UpstreamError> {
        let uri: Uri = endpoint.parse().map_err(|error| {
            UpstreamError::NeverSent(format!("bad endpoint {endpoint:?}: {error}"))
        })?;
        let address = address_of(&uri).ok_or_else(|| {
            UpstreamError::NeverSent(format!("endpoint {endpoint:?} has no host"))
        })?;
        let host = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let host = HeaderValue::from_str(host)
            .map_err(|_| UpstreamError::NeverSent(format!("bad host in endpoint {endpoint:?}")))?;
        headers.insert(header::HOST, host);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path: Uri = path.parse().map_err(|error| {
            UpstreamError::NeverSent(format!("bad path in {endpoint:?}: {error}"))
        })?;
        let build = |headers: HeaderMap| {
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = path.clone();
            *request.headers_mut() = headers;
            request
        };
        let mut request = build(headers.clone());
        loop {
            let (mut conn, reused) = match self.take(&address).await {
                Some(conn) => (conn, true),
                None => (self.connect(&address).await?, false),
            };
            let sent = conn.sender.try_send_request(request);
            let response = match drive(&mut conn.io, sent).await {
                Ok(response) => response,
                Err(mut refused) => match refused.take_message() {
                    // Never written: another connection may take it.
                    Some(unsent) if reused => {
                        request = unsent;
                        continue;
                    }
                    Some(_) => {
                        let error = refused.into_error();
                        return Err(UpstreamError::NeverSent(format!("{address}: {error}")));
                    }
                    None => {
                        let error = refused.into_error();
                        return Err(UpstreamError::MidCall(format!("{address}: {error}")));
                    }
                },
            };
            let status = response.status().as_u16();
            let events = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|t| t.to_str().ok())
                .is_some_and(|t| t.starts_with("text/event-stream"));
            let body = response.into_body();
            if events {
                return Ok((status, Answer::Events(stream_events(conn, body))));
            }
            let read = drive(&mut conn.io, body.collect()).await;
            let bytes = read
                .map_err(|error| {
                    UpstreamError::MidCall(format!("{address}: answer body: {error}"))
                })?
                .to_bytes();
            self.put(address, conn);
            if status == 202 {
                return Ok((status, Answer::Accepted));
            }
            return Ok((status, Answer::Json(bytes)));
        }
    }

    /// The most recently used idle connection to `address` still open.
    async fn take(&self, address: &str) -> Option<Conn> {
        loop {
            let idle = {
                let mut pool = self.idle.lock();
                let idle = pool.get_mut(address)?;
                let found = idle.pop_back();
                if idle.is_empty() {
                    pool.remove(address);
                }
                found?
            };
            if idle.since.elapsed() > self.idle_timeout {
                // The rest were idle longer still.
                self.idle.lock().remove(address);
                return None;
            }
            let mut conn = idle.conn;
            // Polls the connection first: reads a close the agent sent.
            let ready = drive(&mut conn.io, conn.sender.ready()).await;
            if ready.is_ok() && conn.io.is_some() {
                return Some(conn);
            }
        }
    }

    fn put(&self, address: String, conn: Conn) {
        if conn.io.is_none() || conn.sender.is_closed() {
            return;
        }
        let mut pool = self.idle.lock();
        let idle = pool.entry(address).or_default();
        // The oldest are used last: close those idle too long, or the
        // quiet end of a pool once busier would keep its sockets forever.
        while idle.front().is_some_and(|oldest| oldest.since.elapsed() > self.idle_timeout) {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE_PER_HOST {
            idle.push_back(Idle { conn, since: Instant::now() });
        }
    }

    async fn connect(&self, address: &str) -> Result<Conn, UpstreamError> {
        let connected = tokio::time::timeout(self.connect_timeout, TcpStream::connect(address));
        let stream = match connected.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(UpstreamError::NeverSent(format!(
                    "cannot connect to {address}: {error}"
                )));
            }
            Err(_) => {
                let after = self.connect_timeout;
                let message =
                    format!("cannot connect to {address}: no connection within {after:?}");
                return Err(UpstreamError::NeverSent(message));
            }
        };
        // Small requests and answers: never wait for a full segment.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, address, "upstream: TCP_NODELAY not set");
        }
        let (sender, io) = http1::handshake(TokioIo::new(stream)).await.map_err(|error| {
            UpstreamError::NeverSent(format!("cannot connect to {address}: {error}"))
        })?;
        Ok(Conn { sender, io: Some(Box::pin(io)) })
    }
}

/// `host:port` of an `http` URL (port 80 when none is given).
fn address_of(uri: &Uri) -> Option<String> {
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(80);
    Some(format!("{host}:{port}"))
}

/// Polls `work` to completion while driving `io`, which is set to `None`
/// once the connection ended (the work then fails on its own).
async fn drive<F: Future>(io: &mut Option<Pin<Box<Connection>>>, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let Some(connection) = io.as_mut()
            && connection.as_mut().poll(cx).is_ready()
        {
            *io = None;
        }
        work.as_mut().poll(cx)
    })
    .await
}

/// A streamed answer: its connection moves to a task of its own, and is
/// closed once the stream ends (a stream may outlive any request).
fn stream_events(conn: Conn, body: hyper::body::Incoming) -> SseReader {
    if let Some(io) = conn.io {
        tokio::spawn(async move {
            if let Err(error) = io.await {
                tracing::debug!(%error, "upstream: streamed answer's connection ended");
            }
        });
    }
    // The sender lives as long as the stream: its connection serves it.
    let state = (conn.sender, body);
    let chunks = futures::stream::unfold(state, |(sender, mut body)| async move {
        loop {
            match body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), (sender, body)));
                    }
                }
                Err(error) => {
                    let error = UpstreamError::MidCall(format!("answer stream: {error}"));
                    return Some((Err(error), (sender, body)));
                }
            }
        }
    });
    SseReader::from_stream(chunks.boxed())
}
