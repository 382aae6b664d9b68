//! One address in front of a replica set, as a Kubernetes Service or a TCP
//! load balancer puts it: every new connection goes to the next replica in
//! turn, and its bytes are copied both ways untouched. So a test's clients
//! (each `channel()` is a connection of its own) spread over the replicas,
//! and a write through one is read back through another.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A running round-robin front; stopping it closes every connection.
pub(crate) struct Front {
    stop: CancellationToken,
}

// === impl Front ===

impl Front {
    /// Serves `listener`, handing connections to `replicas` in turn.
    pub(crate) fn start(listener: TcpListener, replicas: Vec<SocketAddr>) -> Self {
        assert!(!replicas.is_empty(), "a front needs a replica");
        let stop = CancellationToken::new();
        let next = Arc::new(AtomicUsize::new(0));
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let replica = replicas[next.fetch_add(1, Ordering::Relaxed) % replicas.len()];
                tokio::spawn(relay(client, replica, stopped.clone()));
            }
        });
        Self { stop }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Copies `client` ↔ `replica` until either side closes or the front stops;
/// a replica that refuses the connection closes the client's.
async fn relay(mut client: TcpStream, replica: SocketAddr, stop: CancellationToken) {
    let Ok(mut upstream) = TcpStream::connect(replica).await else { return };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        () = stop.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
    }
}
