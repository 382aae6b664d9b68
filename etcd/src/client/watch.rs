//! Prefix watches: one gRPC stream per watch, so ending a watch is dropping
//! it and one slow consumer never delays another's events.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::EtcdClient;
use crate::error::{EtcdError, EtcdResult};
use crate::pb::{self, WatchCreateRequest, WatchRequest, WatchResponse, watch_request};

/// Requests we may send on an open watch (progress requests only): a small
/// bound is enough.
const REQUESTS: usize = 4;

/// An open watch: responses in revision order, every event after the start
/// revision exactly once (etcd's watch guarantees).
pub struct WatchStream {
    requests: mpsc::Sender<WatchRequest>,
    responses: Streaming<WatchResponse>,
    watch_id: i64,
}

// === impl EtcdClient ===

impl EtcdClient {
    /// Watches every key under `prefix` from `start_revision` (0: from now),
    /// with the previous values of changed keys and idle progress
    /// notifications. Returns once etcd confirmed the watch. A compacted
    /// start revision is [`EtcdError::Compacted`], here or (etcd 3.4 confirms
    /// the watch first, then cancels it) from the first [`WatchStream::next`].
    /// An expired token is renewed and the watch opened again, once.
    pub async fn watch_prefix(
        &self,
        prefix: &[u8],
        start_revision: i64,
    ) -> EtcdResult<WatchStream> {
        match self.open_watch(prefix, start_revision).await {
            Err(EtcdError::Call { status, .. })
                if status.code() == tonic::Code::Unauthenticated && self.has_user() =>
            {
                self.authenticate().await?;
                self.open_watch(prefix, start_revision).await
            }
            other => other,
        }
    }

    async fn open_watch(&self, prefix: &[u8], start_revision: i64) -> EtcdResult<WatchStream> {
        let (requests, outbound) = mpsc::channel(REQUESTS);
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(WatchCreateRequest {
                key: prefix.to_vec(),
                range_end: crate::prefix_end(prefix),
                start_revision,
                progress_notify: true,
                prev_kv: true,
            })),
        };
        requests.send(create).await.map_err(|_| closed())?;
        let mut client = self.watch_client();
        let responses = client
            .watch(ReceiverStream::new(outbound))
            .await
            .map_err(EtcdError::call("watch"))?
            .into_inner();
        let mut stream = WatchStream { requests, responses, watch_id: 0 };
        let first = stream.next_raw().await?;
        check(&first, start_revision)?;
        if !first.created {
            return Err(EtcdError::Protocol {
                op: "watch",
                message: "first response did not confirm the watch".to_owned(),
            });
        }
        stream.watch_id = first.watch_id;
        Ok(stream)
    }
}

// === impl WatchStream ===

impl WatchStream {
    /// The next response: events (ordered by revision; one revision's events
    /// together) or a progress notification (no events, the header's
    /// revision says everything up to it was sent). An ended watch is an
    /// error, never a silent `None`.
    pub async fn next(&mut self, start_revision: i64) -> EtcdResult<WatchResponse> {
        let response = self.next_raw().await?;
        check(&response, start_revision)?;
        Ok(response)
    }

    /// The id etcd gave this watch.
    pub fn watch_id(&self) -> i64 {
        self.watch_id
    }

    /// Asks etcd for a progress notification (the current revision) now.
    pub async fn request_progress(&self) -> EtcdResult<()> {
        let request = WatchRequest {
            request_union: Some(watch_request::RequestUnion::ProgressRequest(
                pb::WatchProgressRequest {},
            )),
        };
        self.requests.send(request).await.map_err(|_| closed())
    }

    async fn next_raw(&mut self) -> EtcdResult<WatchResponse> {
        match self.responses.message().await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(closed()),
            Err(status) => Err(EtcdError::Call { op: "watch", status }),
        }
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream").field("watch_id", &self.watch_id).finish()
    }
}

/// A cancelled watch is an error: compaction when etcd says so.
fn check(response: &WatchResponse, start_revision: i64) -> EtcdResult<()> {
    if response.compact_revision > 0 {
        return Err(EtcdError::Compacted {
            requested: start_revision,
            compact_revision: response.compact_revision,
        });
    }
    // etcd refuses a watch with an expired token by cancelling it, the
    // gRPC status only in the reason's text.
    if response.canceled && response.cancel_reason.contains("code = Unauthenticated") {
        return Err(EtcdError::Call {
            op: "watch",
            status: tonic::Status::unauthenticated(response.cancel_reason.clone()),
        });
    }
    if response.canceled {
        return Err(EtcdError::Protocol {
            op: "watch",
            message: format!("cancelled by etcd: {}", response.cancel_reason),
        });
    }
    Ok(())
}

fn closed() -> EtcdError {
    EtcdError::Protocol { op: "watch", message: "stream closed".to_owned() }
}
