//! The service every typed call goes through: a balancer over the
//! endpoints, boxed so the client has one type whatever the transport.
//!
//! tonic's own balancer (`Channel::balance_list`) dials with its plain HTTP
//! connector and takes no other, and keeps a dead member in its rotation
//! (about a third of the calls fail while one of three members is down).
//! So every endpoint gets one lazily connected channel (dialled by our
//! connector: plain TCP, or TLS reloading its certificate files when they
//! change), balanced by tower's power-of-two-choices balancer behind a
//! bounded buffer, the same pieces tonic's balancer is made of. A member whose connection failed
//! (refused, timed out, a failed handshake, a connection lost mid-call; a
//! gRPC error is an answer, not a failure) is avoided for [`AVOID`]: the
//! balancer compares two members and takes the one without a recent
//! failure, so a dead or unreachable member costs about one call per
//! period instead of its share of every call. Once the period is over the
//! next call that picks it dials it again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use switchboard_tls::{ClientTls, Connector};
use tokio::time::Instant;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt as _;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::Load;
use tower::util::BoxCloneSyncService;

/// Calls waiting for the balancer at most (tonic's own default): a full
/// buffer makes callers wait, it never grows.
const BUFFER: usize = 1024;

/// How long a member whose connection failed is passed over while another
/// is available.
const AVOID: Duration = Duration::from_secs(2);

/// The balanced service over every endpoint.
pub(crate) type Transport =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A failure below gRPC (connecting, TLS, HTTP/2), as the balancer reports
/// it. A named type, not a bare boxed error: the generated clients' bounds
/// on a boxed error trip the compiler's `Send` inference in async callers.
/// tonic reads the cause (e.g. "connection refused") through `source`.
#[derive(Debug)]
pub(crate) struct TransportError(tower::BoxError);

/// One TLS member's channel and when its connection last failed.
#[derive(Clone)]
struct Member {
    channel: Channel,
    failed_at: Arc<ArcSwapOption<Instant>>,
}

/// A balancer over `endpoints`, each dialled with `tls` when it is given.
/// Nothing is dialled before the first call.
pub(crate) fn balance(endpoints: Vec<Endpoint>, tls: Option<ClientTls>) -> Transport {
    let members: Vec<Member> = endpoints
        .into_iter()
        .map(|endpoint| Member {
            channel: endpoint.connect_with_connector_lazy(Connector::new(tls.clone())),
            failed_at: Arc::new(ArcSwapOption::empty()),
        })
        .collect();
    let balanced = Buffer::new(Balance::new(ServiceList::new(members)), BUFFER);
    BoxCloneSyncService::new(balanced.map_err(TransportError))
}

// === impl Member ===

impl Load for Member {
    /// 1 while the member is avoided, 0 otherwise: the balancer takes the
    /// lower of two.
    type Metric = u8;

    fn load(&self) -> u8 {
        let failed_at = self.failed_at.load();
        u8::from(failed_at.as_deref().is_some_and(|at| at.elapsed() < AVOID))
    }
}

impl tower::Service<http::Request<Body>> for Member {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, tonic::transport::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let failed_at = self.failed_at.clone();
        let call = self.channel.call(request);
        Box::pin(async move {
            let result = call.await;
            // The channel fails only below gRPC: etcd's own errors are
            // responses (`grpc-status`), never an `Err` here.
            match &result {
                // A load, not a store, on the common path: no write per call.
                Ok(_) if failed_at.load().is_some() => failed_at.store(None),
                Ok(_) => {}
                Err(_) => failed_at.store(Some(Arc::new(Instant::now()))),
            }
            result
        })
    }
}

// === impl TransportError ===

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_member_whose_connection_failed_is_avoided_then_tried_again() {
        tokio::time::pause();
        let dir = tempfile::tempdir().unwrap();
        let dev = switchboard_tls::dev::generate(dir.path(), &[], &[]).unwrap();
        let tls = ClientTls::load(&dev.client_config("")).unwrap();
        // A port nobody listens on any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{port}")).unwrap();
        let member = Member {
            channel: endpoint.connect_with_connector_lazy(tls.connector()),
            failed_at: Arc::new(ArcSwapOption::empty()),
        };
        assert_eq!(member.load(), 0, "not dialled yet");

        let error = member.clone().oneshot(http::Request::new(Body::empty())).await.unwrap_err();
        assert!(format!("{error:?}").contains("ConnectionRefused"), "{error:?}");
        assert_eq!(member.load(), 1, "avoided after failing to dial");

        tokio::time::advance(AVOID).await;
        assert_eq!(member.load(), 0, "tried again once the period is over");
    }
}
