//! The GET stream of one client's upstream session: what an agent sends
//! outside any request, relayed to that gateway client.
//!
//! Logs and other notifications go to the client's own session stream;
//! `notifications/resources/updated` names the URI the client knows (the
//! prefixed one when the gateway prefixed it); progress belongs to its
//! request, so it reaches the stream of the client's live call with that
//! token and is dropped otherwise; an agent's `list_changed` is absorbed,
//! because the gateway's lists are unions that change with the registry
//! and the gateway says so itself. Requests (elicitation, sampling, roots,
//! ping) are relayed to the client and its answer is posted back upstream.
//!
//! The stream is reopened with backoff (full jitter, from the server's
//! `retry` hint) and `Last-Event-ID`, until the session ends or the
//! upstream has no stream (405) or forgets the session (404). A client
//! that does not read only stalls its own relay: a message it does not
//! accept in time is dropped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rmcp::model::{ErrorCode, ErrorData, JsonRpcMessage, ServerJsonRpcMessage, ServerNotification};
use rmcp::service::ServiceError;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::envelope::Envelope;
use crate::sse::SseReader;
use crate::upstream::{Listen, UpstreamSession};

/// Reconnect delay when the server gave no `retry` hint.
const BASE_DELAY: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// How long a client may take to accept one relayed message.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Agent requests of one session waiting for the client's answer.
const MAX_PENDING_REQUESTS: usize = 16;

/// One relayed session stream.
pub(crate) struct SessionStream {
    gateway: Gateway,
    client: String,
    endpoint: String,
    session: UpstreamSession,
    closed: CancellationToken,
    pending: Arc<Semaphore>,
}

// === impl SessionStream ===

impl SessionStream {
    /// Relays the stream of `session` (already open as `first`, if given)
    /// until `closed` is cancelled.
    pub fn spawn(
        gateway: Gateway,
        client: &str,
        endpoint: &str,
        session: UpstreamSession,
        first: Option<reqwest::Response>,
        closed: CancellationToken,
    ) {
        let stream = Self {
            gateway,
            client: client.to_owned(),
            endpoint: endpoint.to_owned(),
            session,
            closed,
            pending: Arc::new(Semaphore::new(MAX_PENDING_REQUESTS)),
        };
        tokio::spawn(stream.run(first));
    }

    async fn run(self, mut first: Option<reqwest::Response>) {
        let mut last_id: Option<String> = None;
        let mut hint: Option<Duration> = None;
        let mut failures: u32 = 0;
        loop {
            let response = match first.take() {
                Some(response) => response,
                None => {
                    let wait = delay(hint, failures);
                    tokio::select! {
                        () = self.closed.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                    let upstream = &self.gateway.upstream();
                    match upstream.listen(&self.endpoint, &self.session, last_id.as_deref()).await {
                        Ok(Listen::Open(response)) => response,
                        Ok(Listen::Never) => return,
                        Err(error) => {
                            failures = failures.saturating_add(1);
                            tracing::debug!(?error, endpoint = %self.endpoint, "upstream stream not reopened");
                            continue;
                        }
                    }
                }
            };
            failures = 0;
            let mut reader = SseReader::new(response);
            loop {
                let next = tokio::select! {
                    () = self.closed.cancelled() => return,
                    next = reader.next() => next,
                };
                match next {
                    Some(Ok(data)) => self.deliver(data).await,
                    Some(Err(error)) => {
                        tracing::debug!(?error, endpoint = %self.endpoint, "upstream stream broke");
                        failures = 1;
                        break;
                    }
                    None => break,
                }
            }
            if let Some(id) = reader.last_event_id() {
                last_id = Some(id.to_owned());
            }
            hint = reader.retry().or(hint);
        }
    }

    /// Relays one message of the stream to the client.
    async fn deliver(&self, data: Bytes) {
        let Ok(envelope) = Envelope::parse(&data) else { return };
        if envelope.method.as_deref() == Some("notifications/progress") {
            // Progress belongs on its request's stream, if that call is live.
            let token = envelope.params.as_ref().and_then(|p| p.get("progressToken"));
            if let Some(token) = token
                && let Some(sink) = self.gateway.relay().progress_sink(&self.client, token.get())
            {
                let _ = sink.try_send(data);
            }
            return;
        }
        let Some(peer) = self.gateway.peer_of(&self.client) else { return };
        let message = match serde_json::from_slice::<ServerJsonRpcMessage>(&data) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, endpoint = %self.endpoint, "unrelayable upstream message");
                return;
            }
        };
        match message {
            JsonRpcMessage::Notification(notification) => {
                let mut notification = notification.notification;
                match &mut notification {
                    ServerNotification::ToolListChangedNotification(_)
                    | ServerNotification::ResourceListChangedNotification(_)
                    | ServerNotification::PromptListChangedNotification(_) => return,
                    ServerNotification::ResourceUpdatedNotification(updated) => {
                        let table = self.gateway.table();
                        let uri = &mut updated.params.uri;
                        *uri = table.catalog.exposed_uri(&self.endpoint, uri);
                    }
                    _ => {}
                }
                let sent =
                    tokio::time::timeout(DELIVERY_TIMEOUT, peer.send_notification(notification));
                if !matches!(sent.await, Ok(Ok(()))) {
                    tracing::debug!(client = %self.client, "agent notification not delivered");
                }
            }
            JsonRpcMessage::Request(request) => {
                let id = serde_json::to_value(&request.id).unwrap_or_default();
                let Ok(permit) = self.pending.clone().try_acquire_owned() else {
                    let error = ErrorData::new(
                        ErrorCode::INTERNAL_ERROR,
                        format!(
                            "too many requests waiting for the client (at most {MAX_PENDING_REQUESTS})"
                        ),
                        None,
                    );
                    self.answer(json!({"jsonrpc": "2.0", "id": id, "error": error}));
                    return;
                };
                let stream = self.relayed();
                let timeout = self.gateway.config().call_timeout;
                tokio::spawn(async move {
                    let asked = tokio::time::timeout(timeout, peer.send_request(request.request));
                    let answer = match asked.await {
                        Ok(Ok(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        Ok(Err(ServiceError::McpError(error))) => {
                            json!({"jsonrpc": "2.0", "id": id, "error": error})
                        }
                        Ok(Err(error)) => {
                            json!({"jsonrpc": "2.0", "id": id, "error": ErrorData::new(
                                ErrorCode::INTERNAL_ERROR,
                                format!("the gateway client did not answer: {error}"),
                                None,
                            )})
                        }
                        Err(_) => json!({"jsonrpc": "2.0", "id": id, "error": ErrorData::new(
                            ErrorCode::INTERNAL_ERROR,
                            format!("the gateway client did not answer within {timeout:?}"),
                            None,
                        )}),
                    };
                    stream.answer(answer);
                    drop(permit);
                });
            }
            // Answers on the session stream answer nothing the gateway sent.
            JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_) => {}
        }
    }

    /// A handle for answering from a spawned task.
    fn relayed(&self) -> Self {
        Self {
            gateway: self.gateway.clone(),
            client: self.client.clone(),
            endpoint: self.endpoint.clone(),
            session: self.session.clone(),
            closed: self.closed.clone(),
            pending: self.pending.clone(),
        }
    }

    /// Posts the answer to an agent's request back upstream.
    fn answer(&self, answer: serde_json::Value) {
        let body = Bytes::from(serde_json::to_vec(&answer).unwrap_or_default());
        let gateway = self.gateway.clone();
        let (endpoint, session) = (self.endpoint.clone(), self.session.clone());
        tokio::spawn(async move {
            if let Err(error) = gateway.upstream().post(&endpoint, &session, &[], body).await {
                tracing::debug!(?error, %endpoint, "answer to the agent's request not delivered");
            }
        });
    }
}

/// The wait before reconnect number `failures` (0: the stream just ended).
fn delay(hint: Option<Duration>, failures: u32) -> Duration {
    let base = hint.unwrap_or(BASE_DELAY);
    if failures == 0 {
        return base;
    }
    let cap = base.saturating_mul(2u32.saturating_pow(failures.min(16))).min(MAX_DELAY.max(base));
    // Full jitter: reconnects of many sessions spread out.
    cap.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_honour_the_hint_then_back_off_within_the_cap() {
        assert_eq!(delay(Some(Duration::from_millis(3000)), 0), Duration::from_millis(3000));
        assert_eq!(delay(None, 0), BASE_DELAY);
        for failures in 1..40 {
            assert!(delay(None, failures) <= MAX_DELAY);
        }
    }
}
