//! Agents registered in bulk and then heartbeating on their own streams: the
//! load of `heartbeat`, the stored agents of `restart`, and the background
//! agents of `watch-fanout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_proto::v1::RegisterAgentRequest;
use tonic::transport::Channel;

use crate::error::BenchResult;
use crate::fixture::{agent_request, register_all};
use crate::fleet::{Fleet, Mode};
use crate::target::RegistryTarget;

use super::Ctx;

/// Longest wait for every stream's first ack.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Registrations in flight while populating.
const REGISTER_CONCURRENCY: usize = 64;

/// Registered agents with open heartbeat streams.
pub(crate) struct Population {
    /// Their streams.
    pub fleet: Fleet,
    /// Their ids.
    pub ids: Vec<String>,
    /// The connections the streams are spread over.
    pub channels: Vec<Channel>,
    /// The registry's RSS once they were registered, before the streams opened.
    pub registered_rss_mb: Option<f64>,
}

impl Ctx<'_> {
    /// Registers `agents` agents of `group` over `connections` connections
    /// (showing progress), opens one heartbeat stream each, heartbeating at
    /// the interval the registry asked for, and waits for every first ack.
    pub async fn populate(
        &self,
        target: &RegistryTarget,
        group: &str,
        tag: &str,
        agents: usize,
        connections: usize,
    ) -> BenchResult<Population> {
        let requests = (0..agents).map(|i| agent_request(group, tag, i)).collect();
        self.populate_with(target, requests, connections).await
    }

    /// [`populate`](Self::populate) with these registrations.
    pub async fn populate_with(
        &self,
        target: &RegistryTarget,
        requests: Vec<RegisterAgentRequest>,
        connections: usize,
    ) -> BenchResult<Population> {
        let agents = requests.len();
        let channels = target.channels(connections).await?;
        let ids: Vec<String> = requests.iter().map(|r| r.agent_id.clone()).collect();
        let done = Arc::new(AtomicU64::new(0));
        let registered = {
            let label = format!("registering {agents} agents");
            let _shown = self.progress.phase(&label, "registered", None, done.clone());
            let counted = || {
                done.fetch_add(1, Ordering::Relaxed);
            };
            register_all(&channels, requests, REGISTER_CONCURRENCY, counted).await?
        };
        let interval = registered
            .last
            .as_ref()
            .and_then(|r| r.heartbeat.as_ref())
            .and_then(|h| h.interval)
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or(Duration::from_secs(5));
        let registered_rss_mb = target.stats().and_then(|s| s.rss_mb());
        let fleet = Fleet::start(ids.clone(), &channels, Mode::Every(interval))?;
        self.progress
            .say(format!("opening {agents} heartbeat streams over {} connections", channels.len()));
        fleet.wait_ready(READY_TIMEOUT).await?;
        Ok(Population { fleet, ids, channels, registered_rss_mb })
    }
}
