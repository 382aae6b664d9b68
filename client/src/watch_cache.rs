//! A local, always-consistent view of the registry's agents, fed by Watch.
//!
//! - The first message of every (re)subscription is authoritative: a snapshot
//!   is staged aside and swapped in whole at END_OF_SNAPSHOT, so readers see
//!   the old view until the new one is complete — never an empty or partial
//!   one: a gateway that routed from a half-received snapshot would refuse
//!   calls to agents that are alive.
//! - After any break it resumes from its last revision (replay, no relist),
//!   with exponential backoff and full jitter — on the next registry replica
//!   when it was given several ([`WatchCache::spawn_on`]). A replica of
//!   another store answers with another epoch, and the cache resyncs from
//!   its snapshot while readers keep the old view.
//! - Within one epoch a revision that goes backwards — in a change, a
//!   bookmark or a whole snapshot — is rejected, never published, and the
//!   cache relists (etcd #15271); a new epoch means a new store: relist.
//! - Owners (the gateway, the CLI) read [`WatchCache::view`] without locks or
//!   wait for changes on [`WatchCache::subscribe`].

use std::sync::Arc;

use imbl::OrdMap;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{Agent, EventType, WatchFilter, WatchRequest, WatchResponse};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::{Backoff, Current, Registries};

/// How a cache watches.
///
/// ```
/// use switchboard_client::WatchCacheConfig;
/// use switchboard_proto::v1::WatchFilter;
///
/// // Only the agents providing one capability.
/// let config = WatchCacheConfig {
///     filter: WatchFilter { capability: "date_service".into(), ..WatchFilter::default() },
///     ..WatchCacheConfig::default()
/// };
/// # drop(config);
/// ```
#[derive(Debug, Clone, Default)]
pub struct WatchCacheConfig {
    /// Which agents to keep.
    pub filter: WatchFilter,
    /// Delays between reconnects.
    pub backoff: Backoff,
    /// The token sent with every Watch (a registry with auth wants a
    /// viewer or above).
    pub bearer: crate::Bearer,
}

/// One consistent view of the watched agents.
///
/// ```
/// use switchboard_client::CacheView;
/// use switchboard_proto::v1::AgentStatus;
///
/// let view = CacheView::default();
/// assert!(!view.complete, "nothing received yet");
/// let healthy = view.agents.values().filter(|a| a.status() == AgentStatus::Healthy).count();
/// assert_eq!(healthy, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CacheView {
    /// Store epoch the view belongs to.
    pub epoch: String,
    /// Revision the view reflects.
    pub revision: u64,
    /// Agents by id.
    pub agents: OrdMap<String, Arc<Agent>>,
    /// False until the first snapshot is complete.
    pub complete: bool,
}

/// A running cache; dropping it stops the watch.
///
/// ```no_run
/// use switchboard_client::{DEFAULT_REGISTRY_ADDR, WatchCache, WatchCacheConfig, connect_lazy};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), switchboard_client::ConnectError> {
/// let cache = WatchCache::spawn(connect_lazy(DEFAULT_REGISTRY_ADDR)?, WatchCacheConfig::default());
/// cache.ready().await;
/// let view = cache.view();
/// println!("{} agents at revision {}", view.agents.len(), view.revision);
///
/// let mut changes = cache.subscribe();
/// while changes.changed().await.is_ok() {
///     println!("now {} agents", changes.borrow().agents.len());
/// }
/// # Ok(())
/// # }
/// ```
pub struct WatchCache {
    view: watch::Receiver<Arc<CacheView>>,
    stop: CancellationToken,
}

// === impl WatchCache ===

impl WatchCache {
    /// Starts watching through `channel`.
    pub fn spawn(channel: Channel, config: WatchCacheConfig) -> Self {
        Self::spawn_on(Registries::fixed("registry", channel), config)
    }

    /// Starts watching one of `registries`, moving to the next when its
    /// stream breaks.
    pub fn spawn_on(registries: Registries, config: WatchCacheConfig) -> Self {
        let (publish, view) = watch::channel(Arc::new(CacheView::default()));
        let stop = CancellationToken::new();
        let follower = Follower {
            current: registries.current(),
            registries,
            config,
            publish,
            view: CacheView::default(),
            relist: true,
        };
        tokio::spawn(follower.run(stop.clone()));
        Self { view, stop }
    }

    /// The current view (cheap: an `Arc`).
    pub fn view(&self) -> Arc<CacheView> {
        self.view.borrow().clone()
    }

    /// A receiver notified on every change of the view.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CacheView>> {
        self.view.clone()
    }

    /// Waits until the first snapshot is in.
    pub async fn ready(&self) {
        let mut view = self.view.clone();
        let _ = view.wait_for(|v| v.complete).await;
    }
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Why a stream was abandoned.
#[derive(Debug)]
enum Broken {
    /// Transport or server error: resume from the last revision.
    Stream(tonic::Status),
    /// The server contradicted itself: relist from scratch.
    Protocol(String),
}

struct Follower {
    registries: Registries,
    /// The replica followed now.
    current: Current,
    config: WatchCacheConfig,
    publish: watch::Sender<Arc<CacheView>>,
    /// The view as last published (or being built on top of).
    view: CacheView,
    /// Ask for a snapshot rather than a resume next time.
    relist: bool,
}

// === impl Follower ===

impl Follower {
    async fn run(mut self, stop: CancellationToken) {
        let mut backoff = self.config.backoff.clone();
        loop {
            let outcome = tokio::select! {
                () = stop.cancelled() => return,
                outcome = self.follow_once(&mut backoff) => outcome,
            };
            match outcome {
                Broken::Stream(status) => {
                    tracing::debug!(code = ?status.code(), message = status.message(), "watch broke; resuming");
                    self.current = self.registries.failed(&self.current).await;
                }
                Broken::Protocol(reason) => {
                    tracing::warn!(%reason, "watch stream inconsistent; relisting");
                    self.relist = true;
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn follow_once(&mut self, backoff: &mut Backoff) -> Broken {
        let request = WatchRequest {
            since_revision: if self.relist { 0 } else { self.view.revision },
            store_epoch: if self.relist { String::new() } else { self.view.epoch.clone() },
            filter: Some(self.config.filter.clone()),
        };
        // `since_revision = 0` is always answered with a snapshot — also on a
        // resume from a view at revision 0 — and an empty one has no entries
        // to open the staging map.
        let snapshot_due = request.since_revision == 0;
        let mut client = WatchServiceClient::new(self.current.channel.clone());
        let mut request = tonic::Request::new(request);
        self.config.bearer.apply(&mut request);
        let mut stream = match client.watch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Broken::Stream(status),
        };
        let mut staging: Option<OrdMap<String, Arc<Agent>>> = snapshot_due.then(OrdMap::new);
        loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    backoff.reset();
                    if let Err(broken) = self.apply(message, &mut staging) {
                        return broken;
                    }
                }
                Ok(None) => return Broken::Stream(tonic::Status::unavailable("watch ended")),
                Err(status) => return Broken::Stream(status),
            }
        }
    }

    fn apply(
        &mut self,
        message: WatchResponse,
        staging: &mut Option<OrdMap<String, Arc<Agent>>>,
    ) -> Result<(), Broken> {
        let kind = EventType::try_from(message.r#type).unwrap_or(EventType::Unspecified);
        match kind {
            EventType::ResyncRequired => *staging = Some(OrdMap::new()),
            EventType::Snapshot => {
                let agent =
                    message.agent.ok_or_else(|| protocol("snapshot entry without agent"))?;
                staging.get_or_insert_with(OrdMap::new).insert(agent.id.clone(), Arc::new(agent));
            }
            EventType::EndOfSnapshot => {
                let agents =
                    staging.take().ok_or_else(|| protocol("end of snapshot without one"))?;
                // A snapshot older than the view within the same epoch (a
                // lagging or rolled-back server) is refused: the old view
                // stays until a snapshot at least as new arrives.
                if self.view.complete
                    && message.store_epoch == self.view.epoch
                    && message.revision < self.view.revision
                {
                    return Err(protocol(&format!(
                        "snapshot revision went backwards: {} after {}",
                        message.revision, self.view.revision
                    )));
                }
                self.view = CacheView {
                    epoch: message.store_epoch,
                    revision: message.revision,
                    agents,
                    complete: true,
                };
                self.relist = false;
                self.publish();
            }
            EventType::Bookmark => {
                self.check_order(&message, true)?;
                self.view.revision = message.revision;
            }
            EventType::Added
            | EventType::Changed
            | EventType::StatusChanged
            | EventType::Removed => {
                if staging.is_some() {
                    return Err(protocol("change before the snapshot ended"));
                }
                self.check_order(&message, false)?;
                let agent = message.agent.ok_or_else(|| protocol("change without agent"))?;
                if kind == EventType::Removed {
                    self.view.agents.remove(&agent.id);
                } else {
                    self.view.agents.insert(agent.id.clone(), Arc::new(agent));
                }
                self.view.revision = message.revision;
                self.publish();
            }
            EventType::Unspecified => return Err(protocol("message of unknown type")),
        }
        Ok(())
    }

    /// Rejects a revision that goes backwards (or repeats, for changes) within
    /// the epoch, and an epoch switch without a snapshot.
    fn check_order(&self, message: &WatchResponse, allow_equal: bool) -> Result<(), Broken> {
        if message.store_epoch != self.view.epoch {
            return Err(protocol(&format!(
                "epoch changed from {:?} to {:?} without a snapshot",
                self.view.epoch, message.store_epoch
            )));
        }
        let ok = if allow_equal {
            message.revision >= self.view.revision
        } else {
            message.revision > self.view.revision
        };
        if !ok {
            return Err(protocol(&format!(
                "revision went backwards: {} after {}",
                message.revision, self.view.revision
            )));
        }
        Ok(())
    }

    fn publish(&self) {
        self.publish.send_replace(Arc::new(self.view.clone()));
    }
}

fn protocol(reason: &str) -> Broken {
    Broken::Protocol(reason.to_owned())
}
