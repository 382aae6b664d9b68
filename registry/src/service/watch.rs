//! `switchboard.v1.WatchService`: list + watch with resume.
//!
//! Watchers share everything and copy nothing. Each event's message is
//! encoded once, the first time any watcher sends it, and kept with the event
//! in the snapshot's history; each agent's encoding is kept per `Arc<Agent>`,
//! so a snapshot entry is a few header bytes around shared agent bytes. Only
//! a filter that rewrites an event (a removal because the agent stopped
//! matching, an addition because it started) builds a header of its own.
//!
//! There is no task and no message queue per watcher: the response stream is
//! the cursor, and it computes the next message when the connection asks for
//! one. It sends the snapshot it started from (one shared immutable snapshot,
//! walked by agent id), or replays the history from the client's revision, or
//! sends a resync marker plus a snapshot; then it follows the history of the
//! latest snapshot from the revision it got to, woken by the writer after each
//! publish, with bookmarks when idle. Between messages a watcher holds a
//! revision (and, while sending a snapshot, that snapshot). What a watcher
//! costs in bytes is bounded by the transport, not by a message count: at most
//! one ~32 KiB encoded chunk in tonic plus HTTP/2's send buffer, because
//! HTTP/2 stops polling a stream whose flow-control window is full. So
//! memory does not grow with watchers × events or watchers × snapshot size.
//!
//! A watcher that falls behind is ended: when it is more than `watch_max_lag`
//! events behind the latest revision, when the history moved past it, or
//! when it has had something to send but its connection took nothing for
//! `slow_watcher_timeout` (one sweep over all watchers notices that, since a
//! stream that is not polled cannot). The messages already handed to the
//! connection are delivered, then the stream ends with `UNAVAILABLE` naming
//! the last revision delivered (also in the `switchboard-resume-revision`
//! trailer), and the client resumes from it.

mod cursor;
mod filter;
mod frame;
mod server;
mod slot;

use std::sync::Arc;

use futures::future::BoxFuture;
use switchboard_proto::v1::WatchRequest;
use tonic::Status;

use crate::registry::Registry;

use cursor::Cursor;
use filter::Filter;
use frame::AgentFrames;
use slot::Watchers;

pub use cursor::WatchStream;
pub use server::WatchServer;

/// Trailer carrying the revision to resume from.
pub const RESUME_REVISION_KEY: &str = "switchboard-resume-revision";

/// The Watch RPC over a [`Registry`]; serve it with [`WatchServer`].
#[derive(Clone)]
pub struct WatchApi {
    registry: Registry,
    frames: Arc<AgentFrames>,
    watchers: Arc<Watchers>,
}

// === impl WatchApi ===

impl WatchApi {
    /// Serves `registry`. Call inside a tokio runtime: it starts the one
    /// task that ends stalled watchers.
    pub fn new(registry: Registry) -> Self {
        let watchers = Arc::new(Watchers::new());
        tokio::spawn(slot::run_sweeps(Arc::downgrade(&watchers), registry.clone()));
        Self { registry, frames: Arc::default(), watchers }
    }

    /// Opens one watch stream, which ends with the status `ended` resolves
    /// to if it ever does (the caller's token revoked or expired).
    pub fn watch(
        &self,
        request: WatchRequest,
        ended: Option<BoxFuture<'static, Status>>,
    ) -> Result<WatchStream, Status> {
        let filter = Filter::new(request.filter.clone().unwrap_or_default())?;
        let slot = self.watchers.open(self.registry.metrics());
        let cursor = Cursor::new(self.registry.clone(), slot, self.frames.clone(), filter, request);
        Ok(WatchStream::new(cursor, self.watchers.clone(), ended))
    }
}
