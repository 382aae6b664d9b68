//! Watchers for fault runs: each keeps one logical watch across every
//! reconnection, resuming from the revision its view is complete at (and
//! starting over when a snapshot was cut short), and records every message
//! with the segment it arrived on.
//!
//! Slow and stalling watchers connect with HTTP/2's initial 64 KiB windows
//! (hyper's client defaults are megabytes), so that not reading fills the
//! registry's per-watcher queue after a few dozen events rather than
//! thousands, and the registry's slow-watcher handling really runs.

use std::time::Duration;

use rand::Rng;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{EventType, WatchRequest, WatchResponse};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::agent::CALL_TIMEOUT;
use crate::history::{History, OpKind};
use crate::{kind, resume_revision};

/// HTTP/2's initial flow-control window.
const SMALL_WINDOW: u32 = 65_535;

/// How a watcher reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as messages come.
    Live,
    /// This long per message.
    Slow(Duration),
    /// Stops reading for `stall` after every `every` of reading.
    Stalls {
        /// Reading time between stalls.
        every: Duration,
        /// Length of a stall.
        stall: Duration,
    },
}

/// A running watcher.
pub struct Watcher {
    /// Its name in the history.
    pub name: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
    reached: watch::Receiver<u64>,
}

/// Where the watcher's view is complete.
#[derive(Default)]
struct Cursor {
    reached: u64,
    epoch: String,
    in_snapshot: bool,
}

// === impl Watcher ===

impl Watcher {
    /// Starts watching everything on `registry` from scratch.
    pub fn start(name: &str, registry: &str, pace: Pace, history: &History) -> Self {
        let stop = CancellationToken::new();
        let (progress, reached) = watch::channel(0);
        let endpoint = Endpoint::from_shared(switchboard_client::endpoint_uri(registry))
            .expect("registry address");
        let endpoint = match pace {
            Pace::Live => endpoint,
            _ => endpoint
                .initial_stream_window_size(SMALL_WINDOW)
                .initial_connection_window_size(SMALL_WINDOW),
        };
        let looping = Loop {
            name: name.to_owned(),
            endpoint: endpoint.tcp_nodelay(true),
            pace,
            history: history.clone(),
            progress,
            cursor: Cursor::default(),
        };
        let task = tokio::spawn(looping.run(stop.clone()));
        Self { name: name.to_owned(), stop, task, reached }
    }

    /// The revision the watcher's view is complete at.
    pub fn reached(&self) -> u64 {
        *self.reached.borrow()
    }

    /// Waits until the watcher's view is complete at `revision`; false after
    /// `timeout`.
    pub async fn wait_reached(&mut self, revision: u64, timeout: Duration) -> bool {
        let reached = self.reached.wait_for(|r| *r >= revision);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// Stops the watcher (recording the end of its last segment).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The watcher's task.
struct Loop {
    name: String,
    endpoint: Endpoint,
    pace: Pace,
    history: History,
    progress: watch::Sender<u64>,
    cursor: Cursor,
}

// === impl Loop ===

impl Loop {
    async fn run(mut self, stop: CancellationToken) {
        loop {
            let ended = self.segment(&stop).await;
            self.history.observe(&self.name, OpKind::WatchEnd { status: ended });
            if stop.is_cancelled() {
                return;
            }
            let pause = Duration::from_millis(rand::rng().random_range(10..200));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// One stream, from open to end; returns how it ended.
    async fn segment(&mut self, stop: &CancellationToken) -> String {
        let since = self.cursor.reached;
        let epoch = self.cursor.epoch.clone();
        self.history.observe(&self.name, OpKind::WatchStart { since, epoch: epoch.clone() });
        let channel: Channel = self.endpoint.connect_lazy();
        let request = WatchRequest { since_revision: since, store_epoch: epoch, filter: None };
        let mut client = WatchServiceClient::new(channel);
        let opened = tokio::select! {
            opened = tokio::time::timeout(CALL_TIMEOUT, client.watch(request)) => opened,
            () = stop.cancelled() => return "stopped".into(),
        };
        let mut stream = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => return format!("{status:?}"),
            Err(_) => return "no answer in time".into(),
        };
        self.cursor.in_snapshot = since == 0;
        let mut reading_since = Instant::now();
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                () = stop.cancelled() => return "stopped".into(),
            };
            match message {
                Ok(Some(message)) => {
                    self.history
                        .observe(&self.name, OpKind::WatchEvent { message: message.clone() });
                    self.cursor.apply(&message);
                    self.progress.send_replace(self.cursor.reached);
                }
                Ok(None) => return "ended".into(),
                Err(status) => {
                    return format!("{status:?} (resume from {:?})", resume_revision(&status));
                }
            }
            let pause = match self.pace {
                Pace::Live => Duration::ZERO,
                Pace::Slow(each) => each,
                Pace::Stalls { every, stall } if reading_since.elapsed() >= every => {
                    reading_since = Instant::now() + stall;
                    stall
                }
                Pace::Stalls { .. } => Duration::ZERO,
            };
            if !pause.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => return "stopped".into(),
                }
            }
        }
    }
}

// === impl Cursor ===

impl Cursor {
    /// Moves on with a message: the view is complete at the revision of an
    /// END_OF_SNAPSHOT, and of every event or bookmark outside a snapshot.
    fn apply(&mut self, message: &WatchResponse) {
        match kind(message) {
            EventType::ResyncRequired => self.in_snapshot = true,
            EventType::Snapshot | EventType::Unspecified => {}
            EventType::EndOfSnapshot => {
                self.in_snapshot = false;
                self.complete_at(message);
            }
            _ if self.in_snapshot => {}
            _ => self.complete_at(message),
        }
    }

    fn complete_at(&mut self, message: &WatchResponse) {
        self.reached = message.revision;
        self.epoch.clone_from(&message.store_epoch);
    }
}
