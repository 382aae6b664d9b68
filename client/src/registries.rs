//! The registry replicas one client may use, and the one it uses now.
//!
//! A client stays on one replica while it answers: with replicas that do not
//! share their state, a client that spread its calls would register on one
//! and heartbeat on another. It starts at a random replica, so a fleet
//! restarted at once does not pile onto the first address of the list, and
//! moves to the next one when the current one fails (cannot connect,
//! `UNAVAILABLE`, a broken stream); once every address has failed, it
//! resolves the list again, since the replicas behind a DNS name change. The
//! pause between attempts is the caller's reconnect backoff.

use std::sync::Arc;

use parking_lot::Mutex;
use tonic::transport::Channel;

use switchboard_tls::ClientTls;

use crate::{ConnectError, RegistryAddrs, connect_lazy_with, connect_with, error_chain};

/// The registry replicas a client may use; clones share which one is
/// current.
///
/// ```no_run
/// use switchboard_client::{Registries, RegistryAddrs};
/// use switchboard_proto::v1::ListAgentsRequest;
/// use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registries = Registries::resolve(RegistryAddrs::parse("10.0.0.1:7600,10.0.0.2:7600")?).await?;
/// // Tried on the current replica, then on the others while they are unavailable.
/// let agents = registries
///     .call(|channel| async move {
///         RegistryServiceClient::new(channel).list_agents(ListAgentsRequest::default()).await
///     })
///     .await?;
/// println!("{} agents", agents.into_inner().agents.len());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Registries {
    inner: Arc<Inner>,
}

/// The replica in use when it was read; hand it back to
/// [`Registries::failed`] when it fails.
#[derive(Clone)]
pub struct Current {
    /// Its address (`http://10.0.0.1:7600`).
    pub address: String,
    /// A channel to it.
    pub channel: Channel,
    generation: u64,
}

struct Inner {
    /// `None` for one fixed channel (nothing to resolve).
    addrs: Option<RegistryAddrs>,
    state: Mutex<State>,
}

struct State {
    candidates: Vec<Candidate>,
    index: usize,
    /// Bumped on every move, so that several users of one failed replica
    /// move on once, not once each.
    generation: u64,
}

#[derive(Clone)]
struct Candidate {
    address: String,
    channel: Channel,
}

// === impl Registries ===

impl Registries {
    /// The replicas of `addrs` as given, names not yet resolved (for callers
    /// that cannot wait; the names are expanded at the first failure).
    /// Nothing is dialled yet.
    pub fn new(addrs: RegistryAddrs) -> Result<Self, ConnectError> {
        let candidates = candidates(addrs.entries().to_vec(), addrs.tls(), &[])?;
        Ok(Self::with(Some(addrs), candidates))
    }

    /// The replicas of `addrs`, each name expanded to every address it
    /// resolves to now. Nothing is dialled yet.
    pub async fn resolve(addrs: RegistryAddrs) -> Result<Self, ConnectError> {
        let candidates = candidates(addrs.resolve().await, addrs.tls(), &[])?;
        Ok(Self::with(Some(addrs), candidates))
    }

    /// One channel, never replaced (a caller that built its own).
    pub fn fixed(address: &str, channel: Channel) -> Self {
        Self::with(None, vec![Candidate { address: address.to_owned(), channel }])
    }

    fn with(addrs: Option<RegistryAddrs>, candidates: Vec<Candidate>) -> Self {
        let index = rand::random_range(0..candidates.len().max(1));
        let state = Mutex::new(State { candidates, index, generation: 0 });
        Self { inner: Arc::new(Inner { addrs, state }) }
    }

    /// The replica in use.
    pub fn current(&self) -> Current {
        let state = self.inner.state.lock();
        state.current()
    }

    /// How many replicas are known now.
    pub fn len(&self) -> usize {
        self.inner.state.lock().candidates.len()
    }

    /// Always false: a list holds at least one address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves on from `failed` to the next replica, unless another user of
    /// these registries already did; past the last one the list is resolved
    /// again. Returns the replica to use now.
    pub async fn failed(&self, failed: &Current) -> Current {
        {
            let mut state = self.inner.state.lock();
            if state.generation != failed.generation {
                return state.current();
            }
            let wraps = state.index + 1 >= state.candidates.len();
            if !wraps || self.inner.addrs.is_none() {
                state.advance(failed);
                return state.current();
            }
        }
        let (fresh, tls) = match &self.inner.addrs {
            Some(addrs) => (addrs.resolve().await, addrs.tls()),
            None => (Vec::new(), None),
        };
        let mut state = self.inner.state.lock();
        if state.generation == failed.generation {
            if let Ok(renewed) = candidates(fresh, tls, &state.candidates)
                && !renewed.is_empty()
            {
                // Continue after the failed replica when it is still listed.
                let at = renewed.iter().position(|c| c.address == failed.address);
                state.candidates = renewed;
                state.index = at.unwrap_or(state.candidates.len() - 1);
            }
            state.advance(failed);
        }
        state.current()
    }

    /// Runs `call` on the current replica and, while it answers
    /// `UNAVAILABLE` (unreachable, shutting down, or without its store), on
    /// each other replica once; returns the last answer.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let mut current = self.current();
        let attempts = self.len().max(1);
        let mut attempt = 1;
        loop {
            match call(current.channel.clone()).await {
                Err(status) if moves_on(&status) && attempt < attempts => {
                    tracing::debug!(address = %current.address, message = status.message(), "registry unavailable; trying the next");
                    current = self.failed(&current).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }
}

impl std::fmt::Debug for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.lock();
        let addresses: Vec<&str> = state.candidates.iter().map(|c| c.address.as_str()).collect();
        f.debug_struct("Registries")
            .field("addresses", &addresses)
            .field("current", &state.index)
            .finish()
    }
}

// === impl State ===

impl State {
    fn current(&self) -> Current {
        let candidate = &self.candidates[self.index % self.candidates.len()];
        Current {
            address: candidate.address.clone(),
            channel: candidate.channel.clone(),
            generation: self.generation,
        }
    }

    fn advance(&mut self, failed: &Current) {
        self.index = (self.index + 1) % self.candidates.len();
        self.generation += 1;
        let next = &self.candidates[self.index].address;
        if *next != failed.address {
            tracing::info!(from = %failed.address, to = %next, "moving to another registry");
        }
    }
}

/// Whether a failed call may succeed on another replica.
pub fn moves_on(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
}

/// Lazy channels to `addresses` (over `tls` when given), reusing those
/// already open to the same address.
fn candidates(
    addresses: Vec<String>,
    tls: Option<&ClientTls>,
    open: &[Candidate],
) -> Result<Vec<Candidate>, ConnectError> {
    addresses
        .into_iter()
        .map(|address| match open.iter().find(|c| c.address == address) {
            Some(candidate) => Ok(candidate.clone()),
            None => Ok(Candidate { channel: connect_lazy_with(&address, tls)?, address }),
        })
        .collect()
}

/// Connects now to the first replica of `addrs` that answers, trying them in
/// the order given (names expanded), over the list's TLS when it has one;
/// the error names every address tried.
///
/// ```no_run
/// use switchboard_client::{RegistryAddrs, connect_any};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), switchboard_client::ConnectError> {
/// let (address, channel) = connect_any(&RegistryAddrs::parse("10.0.0.1:7600,10.0.0.2:7600")?).await?;
/// println!("connected to {address}");
/// # drop(channel);
/// # Ok(())
/// # }
/// ```
pub async fn connect_any(addrs: &RegistryAddrs) -> Result<(String, Channel), ConnectError> {
    let mut causes = Vec::new();
    for address in addrs.resolve().await {
        match connect_with(&address, addrs.tls()).await {
            Ok(channel) => return Ok((address, channel)),
            Err(ConnectError::Unreachable { cause, .. }) => causes.push((address, cause)),
            Err(error) => causes.push((address, error_chain(&error))),
        }
    }
    let cause = match causes.as_slice() {
        [(_, cause)] => cause.clone(),
        several => {
            several.iter().map(|(a, cause)| format!("{a}: {cause}")).collect::<Vec<_>>().join("; ")
        }
    };
    Err(ConnectError::Unreachable { address: addrs.to_string(), cause })
}

#[cfg(test)]
mod tests;
