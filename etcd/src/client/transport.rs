//! The service every typed call goes through: a balancer over the
//! endpoints, boxed so the client has one type whatever the transport.
//!
//! Plaintext uses tonic's own balancer (`Channel::balance_list`). It dials
//! with tonic's plain HTTP connector and takes no other, so TLS endpoints
//! get one lazily connected channel each (dialled by the TLS connector,
//! which reloads its certificate files when they change), balanced by
//! tower's power-of-two-choices balancer behind a bounded buffer, the same
//! pieces tonic's balancer is made of. A member that is down fails the
//! calls that picked it and is redialled on the next one, as with tonic's.

use switchboard_tls::ClientTls;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::ServiceExt as _;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::Constant;
use tower::util::BoxCloneSyncService;

/// Calls waiting for the balancer at most (tonic's own default): a full
/// buffer makes callers wait, it never grows.
const BUFFER: usize = 1024;

/// The balanced service over every endpoint.
pub(crate) type Transport =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// A failure below gRPC (connecting, TLS, HTTP/2), as the balancer reports
/// it. A named type, not a bare boxed error: the generated clients' bounds
/// on a boxed error trip the compiler's `Send` inference in async callers.
/// tonic reads the cause (e.g. "connection refused") through `source`.
#[derive(Debug)]
pub(crate) struct TransportError(tower::BoxError);

/// A balancer over `endpoints`, each dialled with `tls` when it is given.
/// Nothing is dialled before the first call.
pub(crate) fn balance(endpoints: Vec<Endpoint>, tls: Option<ClientTls>) -> Transport {
    match tls {
        None => BoxCloneSyncService::new(
            Channel::balance_list(endpoints.into_iter())
                .map_err(|error| TransportError(error.into())),
        ),
        Some(tls) => {
            let channels: Vec<_> = endpoints
                .into_iter()
                // The load is constant: p2c then picks at random among the
                // ready channels, as tonic's balancer does.
                .map(|endpoint| {
                    Constant::new(endpoint.connect_with_connector_lazy(tls.connector()), 0_usize)
                })
                .collect();
            let balanced = Buffer::new(Balance::new(ServiceList::new(channels)), BUFFER);
            BoxCloneSyncService::new(balanced.map_err(TransportError))
        }
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
