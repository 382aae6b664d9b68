//! Answers a request tonic cannot decode with the caller's status codes.
//!
//! tonic decodes a unary or server-streaming request before our handler runs,
//! and answers a failure itself — `OUT_OF_RANGE` for a message over
//! `max_decoding_message_size`, `INTERNAL` for bytes that are not the RPC's
//! message — as a trailers-only response (the status in the headers, the
//! `Status` in the response extensions). Neither code is right: the first is
//! gRPC's `RESOURCE_EXHAUSTED`, the second the caller's `INVALID_ARGUMENT`.
//! tonic 0.14.9 has no hook into its decoder's errors, and the generated
//! servers fix the codec, so this wrapper rewrites those responses on the way
//! out ([`crate::error::decode_failure`] decides which, and to what).
//! Keeping tonic's limit (rather than decoding with a higher one and checking
//! sizes ourselves) keeps the memory bound: tonic refuses an oversized message
//! from its length prefix, before buffering it.
//!
//! The bidirectional heartbeat stream decodes inside its handler; it maps the
//! same statuses itself.

use std::task::{Context, Poll};

use tonic::Status;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use crate::error::decode_failure;

/// A gRPC service whose decoder failures are answered with the caller's codes.
#[derive(Debug, Clone)]
pub struct DecodeErrors<S> {
    inner: S,
    max_message_bytes: usize,
}

// === impl DecodeErrors ===

impl<S> DecodeErrors<S> {
    /// Wraps `inner`, whose decoding limit is `max_message_bytes`.
    pub fn new(inner: S, max_message_bytes: usize) -> Self {
        Self { inner, max_message_bytes }
    }
}

impl<S: NamedService> NamedService for DecodeErrors<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req, B> Service<Req> for DecodeErrors<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let call = self.inner.call(request);
        let limit = self.max_message_bytes;
        Box::pin(async move {
            let mut response = call.await?;
            let replacement =
                response.extensions().get::<Status>().and_then(|s| decode_failure(s, limit));
            if let Some(status) = replacement {
                rewrite(&mut response, status);
            }
            Ok(response)
        })
    }
}

/// Replaces the status of a trailers-only response.
fn rewrite<B>(response: &mut http::Response<B>, status: Status) {
    let headers = response.headers_mut();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    match status.add_header(headers) {
        Ok(()) => {
            response.extensions_mut().insert(status);
        }
        Err(error) => {
            // Our own messages are plain text, so this cannot happen; if it
            // did, a generic status still beats a response with none.
            tracing::error!(%error, "cannot write a rewritten grpc status");
            let _ = Status::invalid_argument("request cannot be decoded").add_header(headers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_answer_becomes_resource_exhausted_in_the_headers() {
        let mut response: http::Response<()> = Status::out_of_range(
            "Error, decoded message length too large: found 10 bytes, the limit is: 4 bytes",
        )
        .into_http();
        let status = decode_failure(response.extensions().get::<Status>().unwrap(), 4).unwrap();
        rewrite(&mut response, status);
        let seen = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(seen.code(), tonic::Code::ResourceExhausted);
        assert!(seen.message().contains("limit of 4 bytes"), "{seen:?}");
    }
}
