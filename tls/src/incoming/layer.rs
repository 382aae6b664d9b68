//! tonic inserts a connection's [`ConnInfo`] into request extensions; this
//! layer adds what services read: tonic's own `TcpConnectInfo` (so
//! `Request::remote_addr()` keeps working) and [`PeerNames`] after a
//! verified client certificate.

use std::task::{Context, Poll};

use tonic::transport::server::TcpConnectInfo;

use super::ConnInfo;
use crate::PeerNames;

/// Adds `TcpConnectInfo` and [`PeerNames`] to requests on [`Conn`](super::Conn)s.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerNamesLayer;

/// The service of [`PeerNamesLayer`].
#[derive(Debug, Clone)]
pub struct PeerNamesService<S> {
    inner: S,
}

// === impl PeerNamesLayer ===

impl<S> tower::Layer<S> for PeerNamesLayer {
    type Service = PeerNamesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PeerNamesService { inner }
    }
}

// === impl PeerNamesService ===

impl<S, B> tower::Service<http::Request<B>> for PeerNamesService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        insert_peer(request.extensions_mut());
        self.inner.call(request)
    }
}

/// Copies a [`ConnInfo`] in `extensions` into the types services read.
pub(crate) fn insert_peer(extensions: &mut http::Extensions) {
    let Some(info) = extensions.get::<ConnInfo>().cloned() else { return };
    extensions
        .insert(TcpConnectInfo { local_addr: info.local_addr, remote_addr: info.remote_addr });
    if let Some(names) = info.peer_names {
        extensions.insert::<PeerNames>(names);
    }
}
