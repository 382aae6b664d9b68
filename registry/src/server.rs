//! Serving a registry: the gRPC port (Registry, Heartbeat, Watch, Access,
//! `grpc.health.v1`, reflection v1 and v1alpha) and the admin HTTP port
//! (`/healthz`, `/readyz`, `/metrics`, plus routes the caller adds there).
//!
//! Every RPC gets a server span continuing the caller's `traceparent`
//! ([`GrpcServerTraceLayer`]). A request tonic cannot decode — over
//! `limits.max_message_bytes`, or not the RPC's message — is answered
//! `RESOURCE_EXHAUSTED` or `INVALID_ARGUMENT` ([`DecodeErrors`]).
//!
//! Both ports speak TLS when given a [`ServerTls`] (with mTLS, the client
//! certificate's names reach every request as `PeerNames`); plaintext
//! otherwise, which is the default on loopback.

mod decode_errors;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_health::{MetricsRenderer, Readiness, probe_router};
use switchboard_proto::v1::access_service_server::AccessServiceServer;
use switchboard_proto::v1::registry_service_server::RegistryServiceServer;
use switchboard_telemetry::grpc::GrpcServerTraceLayer;
use switchboard_tls::{Incoming, PeerNamesLayer, ServerTls};
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::registry::Registry;
use crate::service::watch::WatchServer;
use crate::service::{AccessApi, HeartbeatApi, HeartbeatServer, RegistryApi, WatchApi};

pub use decode_errors::DecodeErrors;

/// HTTP/2 keepalive: a half-open connection is noticed within
/// `KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT`, well inside `expired_after`.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 connection window. h2 guards against floods of tiny DATA frames
/// with a per-connection budget of half this window: every received frame
/// under 256 bytes that the application has not read yet takes `256 - len`
/// from it, and a connection that exhausts it is closed with GOAWAY
/// (`ENHANCE_YOUR_CALM`, "too_many_data_frames"), breaking every stream it
/// carries. A heartbeat is a ~40-byte frame, so with hyper's default 1 MiB
/// window a connection died once ~2,400 heartbeats were waiting to be read —
/// exactly what a saturated registry with a few thousand streams per
/// connection has queued. 16 MiB lets ~37k heartbeats wait per connection:
/// a busy registry reads them later instead of dropping the connection. The
/// window is flow-control credit, not memory set aside; what a client can
/// make the server buffer stays bounded by it.
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// An error while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The reflection service could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The admin server failed.
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
}

/// Serves the registry's gRPC services on `listener` until `shutdown`
/// completes, then finishes in-flight calls.
pub async fn serve_grpc(
    registry: Registry,
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RegistryServiceServer<RegistryApi>>().await;
    health.set_serving::<HeartbeatServer>().await;
    health.set_serving::<WatchServer>().await;
    health.set_serving::<AccessServiceServer<AccessApi>>().await;
    if let Some(reachable) = registry.store_reachable() {
        tokio::spawn(follow_store(reachable, health.clone(), registry.closing()));
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(switchboard_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(switchboard_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let max = registry.config().limits.max_message_bytes;
    let incoming = Incoming::new(listener, tls);
    // Reflection describes the contract, never the state, so like health it
    // stays open with auth on; a setting leaves it out altogether.
    let reflection = registry.config().auth.reflection;
    Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .initial_connection_window_size(CONNECTION_WINDOW)
        .layer(PeerNamesLayer)
        .layer(GrpcServerTraceLayer)
        .add_service(health_service)
        .add_optional_service(reflection.then_some(reflection_v1))
        .add_optional_service(reflection.then_some(reflection_v1alpha))
        .add_service(DecodeErrors::new(
            AccessServiceServer::new(AccessApi::new(registry.clone()))
                .max_decoding_message_size(max),
            max,
        ))
        .add_service(DecodeErrors::new(
            RegistryServiceServer::new(RegistryApi::new(registry.clone()))
                .max_decoding_message_size(max),
            max,
        ))
        // Hand-written, to send each pushed wiring's shared encoding as it is.
        .add_service(DecodeErrors::new(
            HeartbeatServer::new(HeartbeatApi::new(registry.clone()), max),
            max,
        ))
        // Hand-written, to send each event's shared encoding as it is.
        .add_service(DecodeErrors::new(WatchServer::new(WatchApi::new(registry), max), max))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// While the store cannot take writes, the whole server (`""`) and the
/// Registry service (whose writes would fail) are NOT_SERVING in
/// `grpc.health.v1`; Heartbeat and Watch keep serving from memory.
async fn follow_store(
    mut reachable: tokio::sync::watch::Receiver<bool>,
    health: tonic_health::server::HealthReporter,
    closing: tokio_util::sync::CancellationToken,
) {
    use tonic::server::NamedService as _;
    use tonic_health::ServingStatus;
    loop {
        let status = if *reachable.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        health.set_service_status("", status).await;
        health.set_service_status(RegistryServiceServer::<RegistryApi>::NAME, status).await;
        tokio::select! {
            () = closing.cancelled() => return,
            changed = reachable.changed() => if changed.is_err() { return },
        }
    }
}

/// Serves `/healthz`, `/readyz`, `/metrics`, service discovery and `extra`
/// (the dashboard, when the binary mounts it) on `listener` until `shutdown`.
pub async fn serve_admin(
    registry: Registry,
    readiness: Readiness,
    listener: TcpListener,
    tls: Option<ServerTls>,
    extra: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let sd = crate::sd::sd_router(registry.clone());
    let renderer: MetricsRenderer = Arc::new(move || registry.render_metrics());
    let router = probe_router(readiness, renderer).merge(sd).merge(extra);
    switchboard_tls::serve_http(listener, tls, router, shutdown).await?;
    Ok(())
}
