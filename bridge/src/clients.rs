//! Programs of their own for downstream sessions (`session = "per-client"`).
//!
//! A stdio program serves exactly one MCP session, so a server that keeps
//! per-session state (a log level, subscriptions, its own memory) keeps
//! clients apart only with one program per downstream session. The program
//! starts on the session's first request, initialized with that client's
//! capabilities and `clientInfo`, and stops when the session ends (the
//! client's DELETE, or the endpoint expiring it). At most `max_sessions`
//! run at once: one more gets an MCP error naming the limit at once, never
//! a wait. A program that exits ends only its client's session: every later
//! request of that session gets an error saying so, and the client opens a
//! new session to get a new program.

use std::sync::{Arc, Mutex};

use rmcp::model::ClientConfig;
use rmcp::{ErrorData, Peer, RoleClient};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::ServerConfig;
use crate::relay::{Downstream, Relay};
use crate::upstream;

/// Starts the programs of one server's downstream sessions.
pub struct Pool {
    server: ServerConfig,
    permits: Arc<Semaphore>,
}

/// The program of one downstream session; dropping it stops the program.
pub struct ClientSession {
    /// The client side of the program's session.
    pub peer: Peer<RoleClient>,
    /// The one downstream client it serves.
    pub downstream: Arc<Downstream>,
    ended: Arc<Mutex<Option<String>>>,
    _stop: DropGuard,
}

// === impl Pool ===

impl Pool {
    /// A pool for `server`, bounded by its `max_sessions`.
    pub fn new(server: &ServerConfig) -> Self {
        Self { server: server.clone(), permits: Arc::new(Semaphore::new(server.max_sessions)) }
    }

    /// Starts a program for a downstream session whose client said `hello`
    /// at `initialize`.
    pub async fn open(&self, hello: Option<&ClientConfig>) -> Result<ClientSession, ErrorData> {
        let name = &self.server.name;
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            ErrorData::internal_error(
                format!(
                    "bridge {name:?}: all {} per-client sessions (max_sessions) are open; close \
                     a session or raise max_sessions",
                    self.server.max_sessions
                ),
                None,
            )
        })?;
        // Its list changes are the first program's too, which the
        // registration follows: nobody listens on this channel.
        let (changes, _) = mpsc::channel(1);
        let downstream = Arc::new(Downstream::default());
        let mut relay = Relay::new(name, downstream.clone(), changes);
        if let Some(hello) = hello {
            // The client's capabilities and identity; the protocol revision
            // stays the bridge's own, which it speaks to every program.
            relay = relay.for_client(ClientConfig::new(
                hello.capabilities.clone(),
                hello.client_info.clone(),
            ));
        }
        let mut session = upstream::connect(&self.server, relay).await.map_err(|error| {
            ErrorData::internal_error(
                format!("bridge {name:?}: cannot start a program for this session: {error}"),
                None,
            )
        })?;
        tracing::info!(server = %name, "started a program for a client session");
        let peer = session.peer().clone();
        let ended = Arc::new(Mutex::new(None));
        let stop = CancellationToken::new();
        let (name, ended_by, stopped) = (name.clone(), ended.clone(), stop.clone());
        tokio::spawn(async move {
            // The permit is held until the program is gone.
            let _permit = permit;
            tokio::select! {
                reason = session.ended() => {
                    tracing::warn!(server = %name, %reason, "a client session's program ended");
                    if let Ok(mut ended) = ended_by.lock() {
                        *ended = Some(reason);
                    }
                }
                () = stopped.cancelled() => {
                    tracing::info!(server = %name, "client session ended; stopping its program");
                }
            }
            session.stop().await;
        });
        Ok(ClientSession { peer, downstream, ended, _stop: stop.drop_guard() })
    }
}

// === impl ClientSession ===

impl ClientSession {
    /// Why the program is gone, if it is.
    pub fn ended(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|ended| ended.clone())
    }
}
