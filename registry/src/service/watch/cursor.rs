//! One watch stream: a cursor over the shared snapshot and its history.
//!
//! The stream is polled by the connection and computes each message when
//! asked, so it never queues anything: between polls it holds a revision (and,
//! while sending a snapshot, that shared snapshot and the id it got to).

use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt as _};
use switchboard_proto::v1::{EventType, WatchRequest};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::change::Change;
use crate::registry::Registry;
use crate::state::Snapshot;

use super::RESUME_REVISION_KEY;
use super::filter::{Filter, Verdict};
use super::frame::{AgentFrames, Frame, Header, change_frame};
use super::slot::{Slot, Watchers};

/// Where a cursor is.
enum Phase {
    /// Not started: the request decides between snapshot, replay and resync.
    Start(WatchRequest),
    /// Sending the pinned snapshot's agents after this id.
    Snapshot { after: Option<String> },
    /// Following the history from `delivered`.
    Live,
}

/// Why a stream ends early.
enum Stop {
    /// The client fell behind; it must resume.
    Behind,
    /// The registry is closing.
    Closing,
    /// The watch could not start (this replica cannot catch up with the
    /// store).
    Refused(Status),
}

/// One watch stream's cursor.
pub struct Cursor {
    registry: Registry,
    slot: Arc<Slot>,
    frames: Arc<AgentFrames>,
    filter: Filter,
    epoch: Arc<str>,
    phase: Phase,
    /// Every event up to this revision was sent (or filtered out).
    delivered: u64,
    /// The latest revision when the watch started: replaying up to it is not
    /// lagging behind.
    start_head: u64,
    last_sent: Instant,
    revisions: watch::Receiver<u64>,
    closing: CancellationToken,
    /// The final bookmark went out.
    bookmarked: bool,
    done: bool,
}

// === impl Cursor ===

impl Cursor {
    pub fn new(
        registry: Registry,
        slot: Arc<Slot>,
        frames: Arc<AgentFrames>,
        filter: Filter,
        request: WatchRequest,
    ) -> Self {
        Self {
            epoch: registry.snapshot().epoch.clone(),
            revisions: registry.subscribe_revisions(),
            closing: registry.closing(),
            registry,
            slot,
            frames,
            filter,
            phase: Phase::Start(request),
            delivered: 0,
            start_head: 0,
            last_sent: Instant::now(),
            bookmarked: false,
            done: false,
        }
    }

    /// The next message, or the closing status, or the end.
    pub async fn next(&mut self) -> Option<Result<Frame, Status>> {
        if self.done {
            return None;
        }
        match self.step().await {
            Ok(frame) => {
                self.last_sent = Instant::now();
                self.registry.metrics().watch_events.inc();
                Some(Ok(frame))
            }
            Err(stop) => {
                self.done = true;
                Some(Err(self.end(stop)))
            }
        }
    }

    fn end(&mut self, stop: Stop) -> Status {
        let metrics = self.registry.metrics();
        let released = self.slot.close(metrics);
        self.slot.pin(None);
        let message = match stop {
            Stop::Behind => {
                if released {
                    metrics.watch_slow_disconnects.inc();
                }
                "watcher fell behind"
            }
            Stop::Closing => "registry is shutting down",
            Stop::Refused(status) => return status,
        };
        let mut status =
            Status::unavailable(format!("{message}; resume from revision {}", self.delivered));
        if let Ok(value) = self.delivered.to_string().parse() {
            status.metadata_mut().insert(RESUME_REVISION_KEY, value);
        }
        status
    }

    async fn step(&mut self) -> Result<Frame, Stop> {
        loop {
            if self.slot.reaped() {
                return Err(Stop::Behind);
            }
            let frame = match std::mem::replace(&mut self.phase, Phase::Live) {
                Phase::Start(request) => self.start(&request).await?,
                Phase::Snapshot { after } => Some(self.snapshot_entry(after)?),
                Phase::Live => self.live().await?,
            };
            if let Some(frame) = frame {
                return Ok(frame);
            }
        }
    }

    /// Snapshot, replay or resync, decided by the request, on a snapshot
    /// that holds every write acknowledged so far (on any replica: so a
    /// watcher resuming here from what another replica sent is never ahead).
    async fn start(&mut self, request: &WatchRequest) -> Result<Option<Frame>, Stop> {
        let snapshot = self
            .registry
            .consistent_snapshot()
            .await
            .map_err(|error| Stop::Refused(error.into()))?;
        Ok(self.start_at(request, snapshot))
    }

    fn start_at(&mut self, request: &WatchRequest, snapshot: Arc<Snapshot>) -> Option<Frame> {
        let since = request.since_revision;
        if since == 0 {
            self.begin_snapshot(snapshot);
            return None;
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
            let marker = Header {
                compact_revision: snapshot.history_start,
                reason,
                ..Header::new(EventType::ResyncRequired, since, &self.epoch)
            }
            .marker();
            self.filter.forget_all();
            self.begin_snapshot(snapshot);
            return Some(marker);
        }
        // Resuming: the client's view at `since` is unknown to us, so a
        // filtered watch reports removals conservatively (see `filter`).
        self.filter.resume();
        // The client holds everything up to `since`; each replayed event moves
        // that on, so a watcher ended mid-replay names where it really got to.
        self.delivered = since;
        self.start_head = snapshot.revision;
        self.slot.set_delivered(since);
        self.slot.pin(None);
        self.phase = Phase::Live;
        None
    }

    fn begin_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        self.slot.pin(Some(snapshot));
        self.phase = Phase::Snapshot { after: None };
    }

    /// The next admitted agent of the pinned snapshot, or its end marker.
    fn snapshot_entry(&mut self, after: Option<String>) -> Result<Frame, Stop> {
        // An unfinished snapshot is worth nothing to the client: stop at once.
        if self.closing.is_cancelled() {
            return Err(Stop::Closing);
        }
        // The sweep drops the pin of a stalled watcher.
        let snapshot = self.slot.pinned().ok_or(Stop::Behind)?;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        for (id, agent) in snapshot.agents.range((from, Bound::Unbounded)) {
            if self.filter.admit_snapshot(agent) {
                self.phase = Phase::Snapshot { after: Some(id.clone()) };
                let header = Header {
                    time: agent.status_changed_at.as_ref(),
                    ..Header::new(EventType::Snapshot, snapshot.revision, &self.epoch)
                };
                return Ok(header.with_agent(self.frames.get(agent)));
            }
        }
        self.delivered = snapshot.revision;
        self.start_head = snapshot.revision;
        self.slot.set_delivered(snapshot.revision);
        self.slot.pin(None);
        self.phase = Phase::Live;
        Ok(Header::new(EventType::EndOfSnapshot, snapshot.revision, &self.epoch).marker())
    }

    /// The next event after `delivered`, a bookmark, or nothing yet (after
    /// waiting for the writer).
    async fn live(&mut self) -> Result<Option<Frame>, Stop> {
        if self.closing.is_cancelled() {
            if self.bookmarked {
                return Err(Stop::Closing);
            }
            // A final bookmark: everything up to here was delivered, so the
            // watcher resumes from it without a relist.
            self.bookmarked = true;
            return Ok(Some(self.bookmark()));
        }
        // Mark the current revision seen before reading the snapshot, so a
        // publish after this read wakes the wait below.
        self.revisions.borrow_and_update();
        let snapshot = self.registry.snapshot();
        if snapshot.revision > self.delivered {
            return self.next_event(&snapshot);
        }
        drop(snapshot);
        let bookmark_at = self.last_sent + self.registry.config().bookmark_interval;
        tokio::select! {
            changed = self.revisions.changed() => match changed {
                Ok(()) => Ok(None),
                Err(_) => Err(Stop::Closing),
            },
            () = tokio::time::sleep_until(bookmark_at) => Ok(Some(self.bookmark())),
            () = self.closing.cancelled() => Ok(None),
        }
    }

    /// The next event this watcher gets from `snapshot`'s history, skipping
    /// filtered ones; nothing when all were filtered.
    fn next_event(&mut self, snapshot: &Snapshot) -> Result<Option<Frame>, Stop> {
        if self.delivered.saturating_add(1) < snapshot.history_start {
            // The history moved past this watcher.
            return Err(Stop::Behind);
        }
        let lag = snapshot.revision.saturating_sub(self.delivered.max(self.start_head));
        if lag > self.registry.config().watch_max_lag as u64 {
            return Err(Stop::Behind);
        }
        let wanted = self.delivered + 1;
        let mut index = snapshot
            .history
            .binary_search_by(|event| event.revision.cmp(&wanted))
            .unwrap_or_else(|index| index);
        while let Some(event) = snapshot.history.get(index) {
            index += 1;
            if event.revision > snapshot.revision {
                break;
            }
            let frame = self.forward(event);
            self.delivered = event.revision;
            if let Some(frame) = frame {
                self.slot.set_delivered(self.delivered);
                return Ok(Some(frame));
            }
        }
        self.delivered = snapshot.revision;
        self.slot.set_delivered(self.delivered);
        Ok(None)
    }

    /// An event as this watcher's filter has it.
    fn forward(&mut self, event: &Change) -> Option<Frame> {
        let (kind, reason) = match self.filter.judge(&event.agent, event.kind) {
            Verdict::Skip => return None,
            Verdict::Send(kind) if kind == event.kind => {
                let frames = &self.frames;
                let epoch = &self.epoch;
                let bytes =
                    event.frame(|change| change_frame(change, epoch, &frames.get(&change.agent)));
                return Some(Frame::Whole(bytes));
            }
            Verdict::Send(kind) => (kind, event.reason),
            Verdict::Removed => (EventType::Removed, "filter"),
        };
        let header = Header {
            reason,
            time: event.time.as_ref(),
            ..Header::new(kind, event.revision, &self.epoch)
        };
        Some(header.with_agent(self.frames.get(&event.agent)))
    }

    fn bookmark(&self) -> Frame {
        Header::new(EventType::Bookmark, self.delivered, &self.epoch).marker()
    }
}

/// The response stream of one watch: its cursor, driven by the connection.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<Frame, Status>> + Send>>,
    slot: Arc<Slot>,
    watchers: Arc<Watchers>,
    registry: Registry,
}

// === impl WatchStream ===

impl WatchStream {
    pub(super) fn new(
        cursor: Cursor,
        watchers: Arc<Watchers>,
        ended: Option<futures::future::BoxFuture<'static, Status>>,
    ) -> Self {
        let slot = cursor.slot.clone();
        let registry = cursor.registry.clone();
        let inner = futures::stream::unfold(cursor, |mut cursor| async move {
            let item = cursor.next().await?;
            Some((item, cursor))
        });
        let inner: Pin<Box<dyn Stream<Item = Result<Frame, Status>> + Send>> = match ended {
            // The status ends the response: tonic sends it as the trailer
            // and polls nothing after it.
            Some(ended) => {
                Box::pin(futures::stream::select(inner, futures::stream::once(ended).map(Err)))
            }
            None => Box::pin(inner),
        };
        Self { inner, slot, watchers, registry }
    }
}

impl Stream for WatchStream {
    type Item = Result<Frame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        self.slot.polled(self.watchers.clock(), polled.is_pending());
        polled
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        // The client went away (or the stream ended): leave the gauge.
        self.slot.close(self.registry.metrics());
        self.slot.pin(None);
    }
}
