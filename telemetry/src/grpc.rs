//! Server spans for gRPC services (a tower layer for tonic's `Server::layer`).
//!
//! One span per RPC, kind SERVER, named `package.Service/Method`, with the
//! RPC semantic-convention attributes (`rpc.system`, `rpc.service`,
//! `rpc.method`), continuing a caller's `traceparent` from the request
//! metadata. Failures returned as trailers-only responses (every unary
//! error) set `rpc.grpc.status_code` and `error.type`. For streaming RPCs
//! the span covers opening the stream. Health checks are not traced: probes
//! would drown everything else.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Adds a server span to every gRPC call.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcServerTraceLayer;

/// The service made by [`GrpcServerTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcServerTrace<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

// === impl GrpcServerTraceLayer ===

impl<S> tower::Layer<S> for GrpcServerTraceLayer {
    type Service = GrpcServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcServerTrace { inner }
    }
}

// === impl GrpcServerTrace ===

impl<S, B, R> tower::Service<http::Request<B>> for GrpcServerTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(span) = server_span(&request) else {
            return Box::pin(self.inner.call(request));
        };
        let call = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(async move {
            let result = call.instrument(span.clone()).await;
            if let Ok(response) = &result {
                record_status(&span, response.headers());
            }
            result
        })
    }
}

fn server_span<B>(request: &http::Request<B>) -> Option<tracing::Span> {
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/')?;
    if service == "grpc.health.v1.Health" {
        return None;
    }
    let span = tracing::info_span!(
        "grpc",
        otel.name = %path,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if let Some(parent) = crate::propagation::from_headers(request.headers()) {
        let _ = span.set_parent(parent);
    }
    Some(span)
}

/// Records a trailers-only status (how tonic answers every unary error).
fn record_status(span: &tracing::Span, headers: &http::HeaderMap) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<i32>().ok())
    else {
        return;
    };
    span.record("rpc.grpc.status_code", code);
    if code == 0 {
        return;
    }
    span.record("error.type", status_name(code));
    // Server faults mark the span as failed; a caller's mistake does not.
    if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
        span.record("otel.status_code", "error");
    }
}

/// The canonical name of a gRPC status code.
pub fn status_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_made_for_rpcs_but_not_health_checks() {
        let rpc = http::Request::builder()
            .uri("/switchboard.v1.RegistryService/RegisterAgent")
            .body(())
            .unwrap();
        assert!(server_span(&rpc).is_some());
        let health = http::Request::builder().uri("/grpc.health.v1.Health/Check").body(()).unwrap();
        assert!(server_span(&health).is_none());
        let garbage = http::Request::builder().uri("/nothing").body(()).unwrap();
        assert!(server_span(&garbage).is_none());
    }

    #[test]
    fn status_names_are_canonical() {
        assert_eq!(status_name(5), "NOT_FOUND");
        assert_eq!(status_name(99), "_OTHER");
    }
}
