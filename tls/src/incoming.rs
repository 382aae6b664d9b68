//! Turning a `TcpListener` into a stream of connections, plaintext or TLS,
//! for tonic (`serve_with_incoming`) and for [`serve_http`](crate::serve_http).
//!
//! Handshakes run in their own tasks (at most [`MAX_HANDSHAKES`] at once,
//! each within [`HANDSHAKE_TIMEOUT`]), so one slow or silent client never
//! holds up the accept loop. A failed handshake — a plaintext client on the
//! TLS port, an untrusted client certificate — is logged at debug and the
//! connection dropped (a plaintext client is told first that the port
//! wants TLS); it is the client's mistake, never the server's.

mod layer;
mod plaintext;
mod stream;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::{PeerNames, ServerTls};

pub(crate) use layer::insert_peer;
pub use layer::{PeerNamesLayer, PeerNamesService};
pub use stream::Conn;

/// Most handshakes in progress at once; further connections wait in the
/// kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;
/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet taken by the server.
const READY_QUEUE: usize = 64;

/// What a server knows about a connection: addresses and, after a verified
/// client certificate, its names. Inserted into every request's extensions
/// (tonic: through [`Connected`](tonic::transport::server::Connected) and
/// [`PeerNamesLayer`]).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub remote_addr: Option<SocketAddr>,
    /// The listener's address.
    pub local_addr: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The verified client certificate's names (mTLS only).
    pub peer_names: Option<PeerNames>,
}

/// Connections accepted on a listener, TLS-handshaken when the server has a
/// configuration. Dropping it stops accepting.
pub struct Incoming {
    ready: mpsc::Receiver<Conn>,
    _accepting: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

// === impl Incoming ===

impl Incoming {
    /// Accepts on `listener`; `tls: None` serves plaintext. Must be called
    /// inside a tokio runtime.
    pub fn new(listener: TcpListener, tls: Option<ServerTls>) -> Self {
        // A server's handlers may build HTTP clients (rmcp, reqwest).
        crate::ensure_crypto_provider();
        let (send, ready) = mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(accept_loop(listener, tls, send));
        Self { ready, _accepting: AbortOnDrop(accepting) }
    }

    /// The next connection; `None` once accepting has stopped.
    pub async fn next_conn(&mut self) -> Option<Conn> {
        self.ready.recv().await
    }
}

impl Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().ready.poll_recv(cx).map(|conn| conn.map(Ok))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<ServerTls>, ready: mpsc::Sender<Conn>) {
    let local_addr = listener.local_addr().ok();
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    // Owned here: aborting the loop aborts the handshakes in progress.
    let mut handshakes = JoinSet::new();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ready.closed() => return,
        };
        while handshakes.try_join_next().is_some() {}
        let (tcp, remote_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, as axum and
                // hyper do, instead of spinning.
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let info =
            ConnInfo { remote_addr: Some(remote_addr), local_addr, tls: false, peer_names: None };
        let Some(tls) = &tls else {
            drop(permit);
            if ready.send(Conn::plain(tcp, info)).await.is_err() {
                return;
            }
            continue;
        };
        let (acceptor, ready) = (TlsAcceptor::from(tls.config()), ready.clone());
        handshakes.spawn(async move {
            let conn = handshake(acceptor, tcp, info).await;
            drop(permit);
            if let Some(conn) = conn {
                let _ = ready.send(conn).await;
            }
        });
    }
}

async fn handshake(acceptor: TlsAcceptor, tcp: TcpStream, mut info: ConnInfo) -> Option<Conn> {
    let remote = info.remote_addr;
    let accepting = async {
        if plaintext::is_plaintext(&tcp).await {
            tracing::debug!(?remote, "plaintext client on the tls port: told to use tls");
            plaintext::refuse(tcp).await;
            return None;
        }
        Some(acceptor.accept(tcp).await)
    };
    let accepted = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accepting).await {
        Ok(None) => return None,
        Ok(Some(accepted)) => Ok(accepted),
        Err(elapsed) => Err(elapsed),
    };
    match accepted {
        Ok(Ok(stream)) => {
            let (_, session) = stream.get_ref();
            info.tls = true;
            info.peer_names =
                session.peer_certificates().and_then(|chain| chain.first()).map(crate::peer::names);
            Some(Conn::tls(stream, info))
        }
        Ok(Err(error)) => {
            tracing::debug!(?remote, %error, "tls handshake failed (a plaintext client, or an untrusted certificate)");
            None
        }
        Err(_) => {
            tracing::debug!(?remote, "tls handshake timed out");
            None
        }
    }
}
