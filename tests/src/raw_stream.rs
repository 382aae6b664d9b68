//! A heartbeat stream the test writes by hand, message by message: for
//! protocol checks (sequence echo, ids the stream is not bound to).

use std::time::Duration;

use switchboard_proto::v1::StreamHeartbeatsRequest;
use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::transport::Channel;

/// An open `StreamHeartbeats` call with nothing sent automatically.
pub struct RawHeartbeatStream {
    outgoing: mpsc::Sender<StreamHeartbeatsRequest>,
    inbound: Streaming<switchboard_proto::v1::StreamHeartbeatsResponse>,
}

impl RawHeartbeatStream {
    /// Opens the call.
    pub async fn open(channel: Channel) -> Self {
        let (outgoing, requests) = mpsc::channel(16);
        let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
        let inbound = HeartbeatServiceClient::new(channel)
            .stream_heartbeats(stream)
            .await
            .expect("open StreamHeartbeats")
            .into_inner();
        Self { outgoing, inbound }
    }

    /// Sends a heartbeat for `agent_id` with `sequence`.
    pub async fn send(&self, agent_id: &str, sequence: u64) {
        let heartbeat = StreamHeartbeatsRequest {
            agent_id: agent_id.to_owned(),
            sequence,
            ..Default::default()
        };
        self.outgoing.send(heartbeat).await.expect("stream open for sending");
    }

    /// The next message: `Ok(Some)`, `Ok(None)` when the stream ended
    /// cleanly, `Err` when it ended with a status; panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Message>, tonic::Status> {
        let message = tokio::time::timeout(timeout, self.inbound.message())
            .await
            .unwrap_or_else(|_| panic!("no message within {timeout:?}"))?;
        Ok(message.map(|m| m.message.expect("response carries a message")))
    }

    /// The status the stream ends with, skipping messages; panics after `timeout`.
    pub async fn end_status(&mut self, timeout: Duration) -> tonic::Status {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("stream ended without an error status"),
                Err(status) => return status,
            }
        }
    }
}
