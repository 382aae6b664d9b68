//! The Watch service, written by hand so that it sends pre-encoded frames.
//!
//! The generated `WatchServiceServer` fixes the response type to
//! `WatchResponse`, which would make every watcher own (and encode) a copy of
//! each message. This one routes the same path with the same decoder for
//! `WatchRequest` and an encoder that writes [`Frame`] bytes as they are; the
//! wire format is unchanged, so clients use the generated client.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use switchboard_proto::v1::WatchRequest;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};

use super::WatchApi;
use super::cursor::WatchStream;
use super::frame::{Frame, FrameCodec};

/// The gRPC path of the one RPC.
const WATCH_PATH: &str = "/switchboard.v1.WatchService/Watch";

/// `switchboard.v1.WatchService` over a [`WatchApi`].
#[derive(Clone)]
pub struct WatchServer {
    api: Arc<WatchApi>,
    max_decoding_message_size: usize,
}

// === impl WatchServer ===

impl WatchServer {
    /// Serves `api`, refusing requests over `max_decoding_message_size` bytes.
    pub fn new(api: WatchApi, max_decoding_message_size: usize) -> Self {
        Self { api: Arc::new(api), max_decoding_message_size }
    }
}

impl NamedService for WatchServer {
    const NAME: &'static str = "switchboard.v1.WatchService";
}

impl<B> Service<http::Request<B>> for WatchServer
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
        if request.uri().path() != WATCH_PATH {
            return Box::pin(async move { Ok(Status::unimplemented("").into_http()) });
        }
        let method = WatchMethod(self.api.clone());
        let max = self.max_decoding_message_size;
        Box::pin(async move {
            let mut grpc = Grpc::new(FrameCodec).apply_max_message_size_config(Some(max), None);
            Ok(grpc.server_streaming(method, request).await)
        })
    }
}

/// The Watch method as tonic's server-streaming handler.
struct WatchMethod(Arc<WatchApi>);

impl ServerStreamingService<WatchRequest> for WatchMethod {
    type Response = Frame;
    type ResponseStream = WatchStream;
    type Future = BoxFuture<Response<WatchStream>, Status>;

    fn call(&mut self, request: Request<WatchRequest>) -> Self::Future {
        let api = self.0.clone();
        Box::pin(async move {
            let caller = api.registry.access().authenticate_fresh(&request).await?;
            caller.require_read()?;
            let ended = caller.can_end().then(|| Box::pin(caller.ended()) as _);
            api.watch(request.into_inner(), ended).map(Response::new)
        })
    }
}
