//! `switchboard.v1.WatchService`: list + watch with resume.
//!
//! Each watcher is a task with a cursor, never a copy of the state: it
//! subscribes to the live event ring first, then loads the shared snapshot,
//! so every event after the snapshot's revision reaches it exactly once.
//! It sends the snapshot (or the replay from its revision, or a resync
//! marker plus a snapshot), then live events, with bookmarks when idle.
//!
//! A watcher that falls behind — its connection queue stays full for
//! `slow_watcher_timeout`, or the shared ring overtakes it — is ended: the
//! messages already queued are delivered, then the stream ends with
//! `UNAVAILABLE` naming the last revision delivered (also in the
//! `switchboard-resume-revision` trailer), and the client resumes from it.

mod filter;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use parking_lot::Mutex;
use switchboard_proto::v1::watch_service_server::WatchService;
use switchboard_proto::v1::{EventType, WatchRequest, WatchResponse};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::change::Change;
use crate::registry::Registry;
use crate::state::Snapshot;

use filter::{Filter, Verdict};

/// Trailer carrying the revision to resume from.
pub const RESUME_REVISION_KEY: &str = "switchboard-resume-revision";

/// Implements `WatchService` over a [`Registry`].
#[derive(Clone)]
pub struct WatchApi {
    registry: Registry,
}

impl WatchApi {
    /// Serves `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

#[tonic::async_trait]
impl WatchService for WatchApi {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let filter = Filter::new(request.filter.clone().unwrap_or_default())?;
        let (outbox, queue) = mpsc::channel(self.registry.config().watcher_queue);
        let end = Arc::new(Mutex::new(None));
        let watcher = Watcher {
            registry: self.registry.clone(),
            outbox,
            filter,
            end: end.clone(),
            delivered: 0,
            last_sent: Instant::now(),
        };
        tokio::spawn(watcher.run(request));
        Ok(Response::new(WatchStream { queue, end, finished: false }))
    }
}

/// The response stream: the watcher's queue, then its closing status.
pub struct WatchStream {
    queue: mpsc::Receiver<WatchResponse>,
    end: Arc<Mutex<Option<Status>>>,
    finished: bool,
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.queue.poll_recv(cx) {
            Poll::Ready(Some(message)) => Poll::Ready(Some(Ok(message))),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(self.end.lock().take().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One watch stream's cursor.
struct Watcher {
    registry: Registry,
    outbox: mpsc::Sender<WatchResponse>,
    filter: Filter,
    end: Arc<Mutex<Option<Status>>>,
    /// Every event up to this revision has been queued (or filtered out).
    delivered: u64,
    last_sent: Instant,
}

/// Why a watcher stopped early.
enum Stop {
    /// The client went away.
    Gone,
    /// The client fell behind; it must resume.
    Behind,
    /// The registry is closing.
    Closing,
}

impl Watcher {
    async fn run(mut self, request: WatchRequest) {
        let metrics = self.registry.metrics();
        metrics.watchers.inc();
        let mut live = self.registry.subscribe_events();
        let snapshot = self.registry.snapshot();
        let result = match self.start(&snapshot, &request).await {
            Ok(()) => self.follow(&mut live).await,
            Err(stop) => Err(stop),
        };
        drop(live);
        let metrics = self.registry.metrics();
        metrics.watchers.dec();
        let message = match result {
            Ok(()) | Err(Stop::Gone) => return,
            Err(Stop::Behind) => {
                metrics.watch_slow_disconnects.inc();
                "watcher fell behind"
            }
            Err(Stop::Closing) => "registry is shutting down",
        };
        let mut status =
            Status::unavailable(format!("{message}; resume from revision {}", self.delivered));
        if let Ok(value) = self.delivered.to_string().parse() {
            status.metadata_mut().insert(RESUME_REVISION_KEY, value);
        }
        *self.end.lock() = Some(status);
    }

    /// Snapshot, replay or resync, up to the snapshot's revision.
    async fn start(&mut self, snapshot: &Snapshot, request: &WatchRequest) -> Result<(), Stop> {
        let since = request.since_revision;
        if since == 0 {
            return self.send_snapshot(snapshot).await;
        }
        let foreign_epoch =
            !request.store_epoch.is_empty() && request.store_epoch != *snapshot.epoch;
        // A revision this store has not reached: the client saw another store
        // (one restored from an older copy, or recreated while the client
        // sent no epoch), so nothing can be replayed onto its view; only a
        // snapshot helps.
        let future = since > snapshot.revision;
        let compacted = since.saturating_add(1) < snapshot.history_start;
        if foreign_epoch || future || compacted {
            self.registry.metrics().watch_resyncs.inc();
            let reason = match (foreign_epoch, future) {
                (true, _) => "epoch",
                (false, true) => "future",
                (false, false) => "compacted",
            };
            let mut marker = self.marker(EventType::ResyncRequired, snapshot, since);
            marker.compact_revision = snapshot.history_start;
            marker.reason = reason.into();
            self.filter.forget_all();
            self.send(marker).await?;
            return self.send_snapshot(snapshot).await;
        }
        // Resuming: the client's view at `since` is unknown to us, so a
        // filtered watch reports removals conservatively (see `filter`).
        self.filter.resume();
        // The client holds everything up to `since`; each replayed event moves
        // that on, so a watcher ended mid-replay names where it really got to.
        self.delivered = since;
        let first = snapshot.history.front().map_or(since + 1, |e| e.revision);
        let skip = usize::try_from((since + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        for event in snapshot.history.iter().skip(skip) {
            if event.revision > snapshot.revision {
                break;
            }
            self.forward(event, &snapshot.epoch).await?;
            self.delivered = event.revision;
        }
        self.delivered = snapshot.revision;
        Ok(())
    }

    async fn send_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Stop> {
        for agent in snapshot.agents.values() {
            if self.filter.admit_snapshot(agent) {
                let mut message = self.marker(EventType::Snapshot, snapshot, snapshot.revision);
                message.agent = Some((**agent).clone());
                message.time = agent.status_changed_at;
                self.send(message).await?;
            }
        }
        self.delivered = snapshot.revision;
        let end = self.marker(EventType::EndOfSnapshot, snapshot, snapshot.revision);
        self.send(end).await
    }

    /// Live events until the client leaves, falls behind or the registry closes.
    async fn follow(&mut self, live: &mut broadcast::Receiver<Arc<Change>>) -> Result<(), Stop> {
        let interval = self.registry.config().bookmark_interval;
        let closing = self.registry.closing();
        let epoch = self.registry.snapshot().epoch.clone();
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) if event.revision > self.delivered => {
                        self.forward(&event, &epoch).await?;
                        self.delivered = event.revision;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return Err(Stop::Behind),
                    Err(broadcast::error::RecvError::Closed) => return Err(Stop::Closing),
                },
                () = tokio::time::sleep_until(self.last_sent + interval) => {
                    let bookmark = WatchResponse {
                        r#type: EventType::Bookmark as i32,
                        revision: self.delivered,
                        store_epoch: epoch.to_string(),
                        ..WatchResponse::default()
                    };
                    self.send(bookmark).await?;
                }
                () = self.outbox.closed() => return Err(Stop::Gone),
                () = closing.cancelled() => {
                    // A final bookmark: everything up to here was delivered,
                    // so the watcher resumes from it without a relist.
                    let bookmark = WatchResponse {
                        r#type: EventType::Bookmark as i32,
                        revision: self.delivered,
                        store_epoch: epoch.to_string(),
                        ..WatchResponse::default()
                    };
                    let _ = self.outbox.try_send(bookmark);
                    return Err(Stop::Closing);
                }
            }
        }
    }

    async fn forward(&mut self, event: &Change, epoch: &str) -> Result<(), Stop> {
        let agent = &event.agent;
        let kind = event.kind;
        let (kind, reason) = match self.filter.judge(agent, kind) {
            Verdict::Skip => return Ok(()),
            Verdict::Send(kind) => (kind, event.reason.to_owned()),
            Verdict::Removed => (EventType::Removed, "filter".to_owned()),
        };
        let message = WatchResponse {
            r#type: kind as i32,
            revision: event.revision,
            store_epoch: epoch.to_owned(),
            agent: Some((**agent).clone()),
            compact_revision: 0,
            reason,
            time: event.time,
        };
        self.send(message).await
    }

    fn marker(&self, kind: EventType, snapshot: &Snapshot, revision: u64) -> WatchResponse {
        WatchResponse {
            r#type: kind as i32,
            revision,
            store_epoch: snapshot.epoch.to_string(),
            ..WatchResponse::default()
        }
    }

    /// Queues a message; a queue that stays full too long means the client
    /// fell behind.
    async fn send(&mut self, message: WatchResponse) -> Result<(), Stop> {
        let message = match self.outbox.try_send(message) {
            Ok(()) => return self.sent(),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Stop::Gone),
            Err(mpsc::error::TrySendError::Full(message)) => message,
        };
        let timeout = self.registry.config().slow_watcher_timeout;
        let closing = self.registry.closing();
        // A stuck client must not hold up a graceful shutdown.
        let waited = tokio::select! {
            waited = tokio::time::timeout(timeout, self.outbox.send(message)) => waited,
            () = closing.cancelled() => return Err(Stop::Closing),
        };
        match waited {
            Ok(Ok(())) => self.sent(),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::Behind),
        }
    }

    fn sent(&mut self) -> Result<(), Stop> {
        self.last_sent = Instant::now();
        self.registry.metrics().watch_events.inc();
        Ok(())
    }
}
