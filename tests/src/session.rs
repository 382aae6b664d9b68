//! A test agent's heartbeat stream: sends heartbeats on a timer and hands
//! every registry message to the test.

use std::time::Duration;

use switchboard_proto::v1::heartbeat_service_client::HeartbeatServiceClient;
use switchboard_proto::v1::stream_heartbeats_response::Message;
use switchboard_proto::v1::{ResolutionUpdate, StreamHeartbeatsRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// An open heartbeat stream.
pub struct HeartbeatSession {
    pub agent_id: String,
    received: mpsc::UnboundedReceiver<Result<Message, tonic::Status>>,
    task: JoinHandle<()>,
}

impl HeartbeatSession {
    /// Opens a stream for `agent_id`, heartbeating every `every`.
    pub async fn open(channel: Channel, agent_id: &str, every: Duration) -> Self {
        let (outgoing, requests) = mpsc::channel(16);
        let id = agent_id.to_owned();
        let sender = tokio::spawn(async move {
            for sequence in 1.. {
                let heartbeat = StreamHeartbeatsRequest {
                    agent_id: id.clone(),
                    sequence,
                    ..Default::default()
                };
                if outgoing.send(heartbeat).await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        });
        let mut client = HeartbeatServiceClient::new(channel);
        let (sink, received) = mpsc::unbounded_channel();
        let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
        let response = client.stream_heartbeats(stream).await;
        let task = tokio::spawn(async move {
            let _sender = AbortOnDrop(sender);
            let mut inbound = match response {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    let _ = sink.send(Err(status));
                    return;
                }
            };
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        if let Some(message) = message.message {
                            let _ = sink.send(Ok(message));
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        let _ = sink.send(Err(status));
                        return;
                    }
                }
            }
        });
        Self { agent_id: agent_id.to_owned(), received, task }
    }

    /// The next message, or panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Message, tonic::Status> {
        tokio::time::timeout(timeout, self.received.recv())
            .await
            .unwrap_or_else(|_| panic!("{}: no message within {timeout:?}", self.agent_id))
            .unwrap_or_else(|| Err(tonic::Status::cancelled("stream over")))
    }

    /// The next resolution update satisfying `accept`, skipping acks and
    /// other updates; panics after `timeout`.
    pub async fn resolution_where(
        &mut self,
        timeout: Duration,
        mut accept: impl FnMut(&ResolutionUpdate) -> bool,
    ) -> ResolutionUpdate {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{}: no matching resolution within {timeout:?}",
                self.agent_id
            );
            if let Ok(Message::Resolution(update)) = self.next(left).await
                && accept(&update)
            {
                return update;
            }
        }
    }

    /// Every resolution update received within `window` (for "no push" checks).
    pub async fn resolutions_within(&mut self, window: Duration) -> Vec<ResolutionUpdate> {
        let deadline = tokio::time::Instant::now() + window;
        let mut updates = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, self.received.recv()).await
        {
            if let Ok(Message::Resolution(update)) = message {
                updates.push(update);
            }
        }
        updates
    }

    /// Ends the stream abruptly (like a crash of the agent's connection).
    pub fn abort(self) {
        self.task.abort();
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
