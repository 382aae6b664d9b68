//! A TCP relay on `127.0.0.1:0` that injects network faults on one link.
//!
//! The kernel's own tool for this, `tc qdisc … netem`, needs the `sch_netem`
//! module, which the test machines do not have ("Specified qdisc kind is
//! unknown"). A relay in the test process gives the same faults on loopback,
//! needs no privileges, and is driven by the run's seed:
//!
//! - **delay**: every chunk is held this long before it is forwarded, in
//!   order, without throttling the link (chunks queue, bounded);
//! - **loss**: each chunk is lost with this probability, and a lost chunk
//!   cuts its connection (TCP never loses bytes silently; what a client sees
//!   of loss on a real network is stalls and, past its timeouts, resets);
//! - **partition**: nothing is forwarded either way and new connections are
//!   accepted but carry nothing, while every socket stays open: a half-open
//!   link that only timers and keepalives can notice. Healing resumes the
//!   flow where it stopped;
//! - **cut**: every open connection is reset (RST) at once.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Chunks in flight per direction while a delay holds them.
const IN_FLIGHT: usize = 256;

/// The faults on a link; the default is a healthy link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFaults {
    /// Added to every chunk, each way.
    pub delay: Duration,
    /// Probability that a chunk is lost (cutting its connection).
    pub loss: f64,
    /// Nothing flows; sockets stay open.
    pub partitioned: bool,
}

/// A running relay; dropping it closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    link: Arc<Link>,
    accept: JoinHandle<()>,
}

/// State shared by the relay's connections.
struct Link {
    upstream: Mutex<SocketAddr>,
    faults: watch::Sender<LinkFaults>,
    rng: Mutex<StdRng>,
    /// Cancelled by [`FaultProxy::cut`]; connections hold the one current
    /// when they were accepted.
    generation: Mutex<CancellationToken>,
    closing: CancellationToken,
}

// === impl FaultProxy ===

impl FaultProxy {
    /// A relay on `127.0.0.1:0` to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(io::Error::other)?, upstream, seed).await
    }

    /// A relay listening on `listen` (a namespace's address, for instance).
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr, seed: u64) -> io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let link = Arc::new(Link {
            upstream: Mutex::new(upstream),
            faults: watch::Sender::new(LinkFaults::default()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            generation: Mutex::new(CancellationToken::new()),
            closing: CancellationToken::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, link.clone()));
        Ok(Self { addr, link, accept })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends new connections to `upstream` (a restarted registry's port).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.link.upstream.lock().unwrap() = upstream;
    }

    /// Applies `faults` to every connection, open or new.
    pub fn set(&self, faults: LinkFaults) {
        self.link.faults.send_replace(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> LinkFaults {
        *self.link.faults.borrow()
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.set(LinkFaults::default());
    }

    /// Resets every open connection.
    pub fn cut(&self) {
        let mut generation = self.link.generation.lock().unwrap();
        generation.cancel();
        *generation = CancellationToken::new();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.link.closing.cancel();
        self.accept.abort();
    }
}

// === impl Link ===

impl Link {
    /// Waits while the link is partitioned.
    async fn open(&self) {
        let mut faults = self.faults.subscribe();
        let _ = faults.wait_for(|f| !f.partitioned).await;
    }

    /// Whether this chunk is lost.
    fn lose(&self) -> bool {
        let loss = self.faults.borrow().loss;
        loss > 0.0 && self.rng.lock().unwrap().random_bool(loss.min(1.0))
    }

    fn delay(&self) -> Duration {
        self.faults.borrow().delay
    }
}

async fn accept_loop(listener: TcpListener, link: Arc<Link>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(relay(client, link.clone()));
            }
            // Out of descriptors, say: give connections time to close.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Relays one connection until either side closes, a chunk is lost, the
/// link is cut or the relay is dropped.
async fn relay(client: TcpStream, link: Arc<Link>) {
    let cut = link.generation.lock().unwrap().clone();
    let _ = client.set_nodelay(true);
    let connected = tokio::select! {
        connected = async {
            link.open().await;
            let upstream = *link.upstream.lock().unwrap();
            TcpStream::connect(upstream).await
        } => connected,
        () = cut.cancelled() => return reset(client),
        () = link.closing.cancelled() => return reset(client),
    };
    let Ok(upstream) = connected else { return reset(client) };
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let result = tokio::select! {
        result = async {
            tokio::try_join!(
                pump(&mut client_read, &mut upstream_write, &link),
                pump(&mut upstream_read, &mut client_write, &link),
            )
        } => result.map(|_| ()),
        () = cut.cancelled() => Err(io::Error::other("cut")),
        () = link.closing.cancelled() => Err(io::Error::other("closing")),
    };
    if result.is_err() {
        // Reset both sides, as a dead link or a crashed peer would.
        for stream in [client_write.as_ref(), upstream_write.as_ref()] {
            let _ = stream.set_zero_linger();
        }
    }
}

fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Copies one direction, applying the link's faults; forwards a clean EOF
/// as a half-close.
async fn pump(read: &mut OwnedReadHalf, write: &mut OwnedWriteHalf, link: &Link) -> io::Result<()> {
    let (chunks, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reading = async move {
        let mut buffer = vec![0; 16 * 1024];
        loop {
            // Stop reading while partitioned: the bytes wait in the kernel's
            // buffers, and flow again once healed.
            link.open().await;
            let read = read.read(&mut buffer).await?;
            if read == 0 {
                return Ok(());
            }
            if link.lose() {
                return Err(io::Error::other("chunk lost"));
            }
            let at = Instant::now() + link.delay();
            if chunks.send((at, buffer[..read].to_vec())).await.is_err() {
                return Err(io::Error::other("writer gone"));
            }
        }
    };
    let writing = async {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            link.open().await;
            write.write_all(&chunk).await?;
        }
        write.shutdown().await
    };
    tokio::try_join!(reading, writing).map(|_| ())
}
