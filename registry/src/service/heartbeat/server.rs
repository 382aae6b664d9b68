//! The Heartbeat service, written by hand so that pushed wiring goes out as
//! the bytes it was encoded to once.
//!
//! The generated `HeartbeatServiceServer` fixes the stream's response type to
//! `StreamHeartbeatsResponse`, which would make every stream own (and
//! encode) its own copy of a pushed wiring: a change that rewires a thousand
//! dependents sharing a spec would encode the same message a thousand times.
//! This one routes the same paths with the same decoders, and its stream
//! encoder writes an [`Outgoing::Encoded`] frame as it is; the wire format is
//! unchanged, so clients use the generated client.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes};
use prost::Message as _;
use switchboard_proto::v1::{
    SendHeartbeatRequest, SendHeartbeatResponse, StreamHeartbeatsRequest, StreamHeartbeatsResponse,
};
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::{Request, Response, Status, Streaming};

use super::{HeartbeatApi, ResponseStream};

/// The gRPC path of the heartbeat stream.
const STREAM_PATH: &str = "/switchboard.v1.HeartbeatService/StreamHeartbeats";
/// The gRPC path of the unary heartbeat.
const SEND_PATH: &str = "/switchboard.v1.HeartbeatService/SendHeartbeat";
/// Initial encode buffer of a heartbeat stream (acks are ~60 bytes); it
/// grows as a pushed wiring needs.
const BUFFER_SIZE: usize = 1024;
/// Encoded bytes after which a stream hands a chunk to HTTP/2 (tonic's
/// default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// One message of a heartbeat stream, towards the agent.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A message encoded on its way out (acks, control messages).
    Message(StreamHeartbeatsResponse),
    /// An encoded `StreamHeartbeatsResponse` shared with other streams.
    Encoded(Bytes),
}

/// `switchboard.v1.HeartbeatService` over a [`HeartbeatApi`].
#[derive(Clone)]
pub struct HeartbeatServer {
    api: Arc<HeartbeatApi>,
    max_decoding_message_size: usize,
}

// === impl HeartbeatServer ===

impl HeartbeatServer {
    /// Serves `api`, refusing requests over `max_decoding_message_size` bytes.
    pub fn new(api: HeartbeatApi, max_decoding_message_size: usize) -> Self {
        Self { api: Arc::new(api), max_decoding_message_size }
    }
}

impl NamedService for HeartbeatServer {
    const NAME: &'static str = "switchboard.v1.HeartbeatService";
}

impl<B> Service<http::Request<B>> for HeartbeatServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let api = self.api.clone();
        let max = Some(self.max_decoding_message_size);
        match request.uri().path() {
            STREAM_PATH => Box::pin(async move {
                let mut grpc = Grpc::new(PushCodec).apply_max_message_size_config(max, None);
                Ok(grpc.streaming(StreamMethod(api), request).await)
            }),
            SEND_PATH => Box::pin(async move {
                let codec = switchboard_proto::codec::CompactCodec::<
                    SendHeartbeatResponse,
                    SendHeartbeatRequest,
                >::default();
                let mut grpc = Grpc::new(codec).apply_max_message_size_config(max, None);
                Ok(grpc.unary(SendMethod(api), request).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("").into_http()) }),
        }
    }
}

/// `StreamHeartbeats` as tonic's streaming handler.
struct StreamMethod(Arc<HeartbeatApi>);

impl StreamingService<StreamHeartbeatsRequest> for StreamMethod {
    type Response = Outgoing;
    type ResponseStream = ResponseStream;
    type Future = BoxFuture<Response<ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<StreamHeartbeatsRequest>>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move { api.stream_heartbeats(request).await })
    }
}

/// `SendHeartbeat` as tonic's unary handler.
struct SendMethod(Arc<HeartbeatApi>);

impl UnaryService<SendHeartbeatRequest> for SendMethod {
    type Response = SendHeartbeatResponse;
    type Future = BoxFuture<Response<SendHeartbeatResponse>, Status>;

    fn call(&mut self, request: Request<SendHeartbeatRequest>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move { api.send_heartbeat(request).await })
    }
}

/// The stream's codec: shared frames go out as they are, everything else is
/// encoded by prost; requests are decoded by prost with the project's small
/// buffers.
#[derive(Debug, Clone, Copy, Default)]
struct PushCodec;

type RequestCodec =
    switchboard_proto::codec::CompactCodec<StreamHeartbeatsResponse, StreamHeartbeatsRequest>;

impl Codec for PushCodec {
    type Encode = Outgoing;
    type Decode = StreamHeartbeatsRequest;
    type Encoder = PushEncoder;
    type Decoder = <RequestCodec as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        PushEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestCodec::default().decoder()
    }
}

/// Writes an outgoing message into tonic's buffer.
#[derive(Debug, Clone, Copy, Default)]
struct PushEncoder;

impl Encoder for PushEncoder {
    type Item = Outgoing;
    type Error = Status;

    fn encode(&mut self, item: Outgoing, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Outgoing::Message(message) => message
                .encode(dst)
                .map_err(|e| Status::internal(format!("encoding a heartbeat response: {e}"))),
            Outgoing::Encoded(bytes) => {
                dst.put_slice(&bytes);
                Ok(())
            }
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_proto::v1::stream_heartbeats_response::Message;
    use switchboard_proto::v1::{DependencyResolution, DependencySpec, Provider, ToolResolution};

    use super::*;
    use crate::state::Wiring;

    #[test]
    fn a_shared_push_decodes_as_the_message_it_encodes() {
        let tools = vec![ToolResolution {
            tool_name: "use_it".into(),
            dependencies: vec![DependencyResolution {
                spec: Some(DependencySpec {
                    capability: "date".into(),
                    ..DependencySpec::default()
                }),
                providers: vec![Provider { agent_id: "p".into(), ..Provider::default() }],
                ..DependencyResolution::default()
            }],
        }];
        let wiring = Arc::new(Wiring::new(7, tools.clone()));
        let first = wiring.encoded_push();
        assert_eq!(first, wiring.encoded_push(), "encoded once, the same bytes every time");
        let decoded = StreamHeartbeatsResponse::decode(first).expect("a valid message");
        let Some(Message::Resolution(update)) = decoded.message else {
            panic!("a resolution update, got {decoded:?}");
        };
        assert_eq!(update.resolution_revision, 7);
        assert_eq!(update.resolutions, tools);
    }
}
