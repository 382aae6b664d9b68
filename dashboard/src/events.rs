//! `/ui/events`: the registry's Watch as server-sent events, one browser
//! stream per Watch stream.
//!
//! Change events, END_OF_SNAPSHOT and BOOKMARK carry the SSE id
//! `epoch:revision`: a browser that reconnects sends it back as
//! `Last-Event-ID` and the Watch resumes after it (or answers
//! RESYNC_REQUIRED and a fresh snapshot, relayed as is). Snapshot entries
//! carry no id, since resuming in the middle of a snapshot would skip the
//! agents not yet sent. When the Watch fails the stream ends with a `watch_error`
//! event and the browser's reconnect resumes it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt, stream};
use http::HeaderMap;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{EventType, WatchRequest, WatchResponse};

use crate::{DashboardConfig, DashboardError, agent_json};

/// How long the browser waits before reconnecting a stream that ended.
const RETRY: Duration = Duration::from_secs(1);

/// Where to resume: from `Last-Event-ID`, else the `since` query parameter
/// (`?since=epoch:revision`, for clients that cannot set headers).
#[derive(Debug, serde::Deserialize)]
struct Resume {
    since: Option<String>,
}

pub(crate) fn router(state: Arc<DashboardConfig>) -> Router {
    Router::new().route("/ui/events", get(events)).with_state(state)
}

async fn events(
    State(config): State<Arc<DashboardConfig>>,
    headers: HeaderMap,
    Query(resume): Query<Resume>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, DashboardError> {
    let header =
        headers.get("last-event-id").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (store_epoch, since_revision) = match header.or(resume.since) {
        Some(id) => parse_id(&id)?,
        None => (String::new(), 0),
    };
    let request = WatchRequest { since_revision, store_epoch, filter: None };
    let mut client = WatchServiceClient::new(config.registry.clone());
    let opened = client.watch(request).await;
    let events = match opened {
        Ok(response) => response
            .into_inner()
            .map(|item| match item {
                Ok(message) => sse_event(&message),
                Err(status) => failure(&status),
            })
            .left_stream(),
        Err(status) => stream::iter([failure(&status)]).right_stream(),
    };
    let events = stream::once(async { Event::default().retry(RETRY) }).chain(events).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn parse_id(id: &str) -> Result<(String, u64), DashboardError> {
    let bad = || DashboardError::BadLastEventId(id.to_owned());
    let (epoch, revision) = id.split_once(':').ok_or_else(bad)?;
    Ok((epoch.to_owned(), revision.parse().map_err(|_| bad())?))
}

fn sse_event(message: &WatchResponse) -> Event {
    let event = Event::default()
        .event(agent_json::event_type(message.r#type))
        .data(agent_json::watch_event(message).to_string());
    let resumable = !matches!(
        EventType::try_from(message.r#type),
        Ok(EventType::Snapshot | EventType::ResyncRequired | EventType::Unspecified) | Err(_)
    );
    if resumable {
        event.id(format!("{}:{}", message.store_epoch, message.revision))
    } else {
        event
    }
}

/// The Watch ended: say why, then end the stream so the browser reconnects
/// from its last id.
fn failure(status: &tonic::Status) -> Event {
    tracing::debug!(code = ?status.code(), message = status.message(), "dashboard: watch ended");
    let body = serde_json::json!({ "error": format!("watch ended: {}", status.message()) });
    Event::default().event("watch_error").data(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_epoch_and_revision() {
        assert_eq!(parse_id("e-1:42").ok(), Some(("e-1".to_owned(), 42)));
        let error = parse_id("42").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("bad Last-Event-ID \"42\": want epoch:revision"));
        assert!(parse_id("e:x").is_err(), "revision must be a number");
    }
}
