//! Serving an axum router on a listener, plaintext or TLS, with each
//! request carrying the connection's [`ConnInfo`], axum's
//! `ConnectInfo<SocketAddr>` and, after a verified client certificate,
//! [`PeerNames`](crate::PeerNames).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

use crate::ServerTls;
use crate::incoming::{Conn, ConnInfo, Incoming};

/// Serves `app` on `listener` until `shutdown`, then lets open requests
/// finish (axum's graceful shutdown); `tls: None` serves plaintext.
///
/// ```no_run
/// # async fn run(tls: Option<switchboard_tls::ServerTls>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
/// switchboard_tls::serve_http(listener, tls, app, std::future::pending()).await
/// # }
/// ```
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<ServerTls>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let listener = HttpListener { incoming: Incoming::new(listener, tls), local };
    axum::serve(listener, MakeService(app)).with_graceful_shutdown(shutdown).await
}

struct HttpListener {
    incoming: Incoming,
    local: SocketAddr,
}

impl axum::serve::Listener for HttpListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.incoming.next_conn().await {
            Some(conn) => {
                let remote = conn.info().remote_addr.unwrap_or(self.local);
                (conn, remote)
            }
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Makes one [`WithConn`] per connection.
#[derive(Clone)]
struct MakeService(Router);

impl tower::Service<IncomingStream<'_, HttpListener>> for MakeService {
    type Response = WithConn;
    type Error = Infallible;
    type Future = std::future::Ready<Result<WithConn, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: IncomingStream<'_, HttpListener>) -> Self::Future {
        let info = incoming.io().info().clone();
        std::future::ready(Ok(WithConn { router: self.0.clone(), info }))
    }
}

/// The router, with the connection's facts added to each request.
#[derive(Clone)]
struct WithConn {
    router: Router,
    info: ConnInfo,
}

impl tower::Service<Request> for WithConn {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as tower::Service<Request>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let extensions = request.extensions_mut();
        if let Some(remote) = self.info.remote_addr {
            extensions.insert(axum::extract::ConnectInfo(remote));
        }
        extensions.insert(self.info.clone());
        crate::incoming::insert_peer(extensions);
        self.router.call(request)
    }
}
