//! Watch streams recorded whole, and a checker for the guarantees a watcher
//! relies on (the same as etcd's): ordered by revision, no duplicate, no
//! gap, snapshot then live, one epoch per stream. The checker replays what a watcher received onto
//! the view it started from and hands back the view at a given revision, so
//! a test can compare it with `ListAgents` at that same revision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_proto::v1::registry_service_client::RegistryServiceClient;
use switchboard_proto::v1::watch_service_client::WatchServiceClient;
use switchboard_proto::v1::{Agent, EventType, ListAgentsRequest, WatchRequest, WatchResponse};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Agents by id, as a watcher or `ListAgents` sees them.
pub type View = BTreeMap<String, Agent>;

/// A Watch stream read continuously into memory.
pub struct WatchRecorder {
    log: Arc<Mutex<Recorded>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Recorded {
    messages: Vec<WatchResponse>,
    end: Option<tonic::Status>,
}

impl WatchRecorder {
    /// Opens `request` on `channel` and records every message and the end.
    pub fn start(channel: Channel, request: WatchRequest) -> Self {
        let log = Arc::new(Mutex::new(Recorded::default()));
        let sink = log.clone();
        let task = tokio::spawn(async move {
            let mut client = WatchServiceClient::new(channel);
            let mut stream = match client.watch(request).await {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    sink.lock().unwrap().end = Some(status);
                    return;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(message)) => sink.lock().unwrap().messages.push(message),
                    Ok(None) => {
                        sink.lock().unwrap().end = Some(tonic::Status::ok("stream ended"));
                        return;
                    }
                    Err(status) => {
                        sink.lock().unwrap().end = Some(status);
                        return;
                    }
                }
            }
        });
        Self { log, task }
    }

    /// Everything received so far.
    pub fn messages(&self) -> Vec<WatchResponse> {
        self.log.lock().unwrap().messages.clone()
    }

    /// How the stream ended, if it did.
    pub fn end(&self) -> Option<tonic::Status> {
        self.log.lock().unwrap().end.clone()
    }

    /// Waits until the messages satisfy `done`; panics after `timeout` or if
    /// the stream ends first.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&[WatchResponse]) -> bool,
    ) -> Vec<WatchResponse> {
        crate::eventually(what, timeout, || {
            let log = self.log.lock().unwrap();
            let result = if done(&log.messages) {
                Some(log.messages.clone())
            } else {
                if let Some(end) = &log.end {
                    panic!("{what}: stream ended first: {end:?}");
                }
                None
            };
            std::future::ready(result)
        })
        .await
    }

    /// Waits until some message (event, bookmark or end of snapshot)
    /// promises that everything up to `revision` was delivered.
    pub async fn wait_for_progress(&self, revision: u64, timeout: Duration) -> Vec<WatchResponse> {
        self.wait_until(&format!("progress to revision {revision}"), timeout, |messages| {
            messages.iter().any(|m| m.revision >= revision && !is_snapshot_entry(m))
        })
        .await
    }
}

impl Drop for WatchRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_snapshot_entry(message: &WatchResponse) -> bool {
    message.r#type == EventType::Snapshot as i32
}

/// How a watcher was started, for [`check_stream`].
#[derive(Debug, Clone)]
pub struct Started {
    /// `since_revision` of the request.
    pub since: u64,
    /// The client's view at `since` (ignored when `since` is 0).
    pub base: View,
    /// True when the watch had a filter: revisions may skip, and a resumed
    /// filtered watch may report removals of agents the client never held.
    pub filtered: bool,
}

/// What a watcher's stream amounted to.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The watcher's view at the cutoff.
    pub view: View,
    /// Revision the view is known complete at (≤ the cutoff).
    pub revision: u64,
    /// Epoch of every message.
    pub epoch: String,
    /// The RESYNC_REQUIRED marker, if the stream began with one.
    pub resync: Option<WatchResponse>,
    /// Change events applied after the snapshot or from the resume point.
    pub events: Vec<WatchResponse>,
}

/// Replays `messages` onto `started.base`, checking the watch guarantees
/// along the way; stops before the first message beyond `cutoff`.
pub fn check_stream(
    messages: &[WatchResponse],
    started: &Started,
    cutoff: u64,
) -> Result<Checked, String> {
    let mut checked = Checked {
        view: if started.since == 0 { View::new() } else { started.base.clone() },
        revision: started.since,
        ..Checked::default()
    };
    // Agents of a snapshot being received; `None` when none is due.
    let mut staging: Option<(Option<u64>, View)> =
        (started.since == 0).then(|| (None, View::new()));
    // A resumed filtered watch does not know what the client holds.
    let lenient = started.filtered && started.since > 0;
    for (index, message) in messages.iter().enumerate() {
        let at = || format!("message {index} ({:?} r{})", kind(message), message.revision);
        if checked.epoch.is_empty() {
            checked.epoch.clone_from(&message.store_epoch);
        } else if message.store_epoch != checked.epoch {
            return Err(format!(
                "{}: epoch {:?} after {:?}",
                at(),
                message.store_epoch,
                checked.epoch
            ));
        }
        match kind(message) {
            EventType::ResyncRequired => {
                if index != 0 || started.since == 0 {
                    return Err(format!("{}: RESYNC_REQUIRED not first on a resume", at()));
                }
                checked.resync = Some(message.clone());
                staging = Some((None, View::new()));
            }
            EventType::Snapshot => {
                let Some((revision, agents)) = &mut staging else {
                    return Err(format!("{}: snapshot entry outside a snapshot", at()));
                };
                if *revision.get_or_insert(message.revision) != message.revision {
                    return Err(format!("{}: snapshot entries of different revisions", at()));
                }
                if message.revision > cutoff {
                    return Err(format!("{}: snapshot beyond the cutoff {cutoff}", at()));
                }
                let agent = message.agent.clone().ok_or_else(|| format!("{}: no agent", at()))?;
                if agent.mod_revision > message.revision {
                    return Err(format!("{}: agent {} newer than the snapshot", at(), agent.id));
                }
                if agents.insert(agent.id.clone(), normalized(agent)).is_some() {
                    return Err(format!("{}: agent twice in the snapshot", at()));
                }
            }
            EventType::EndOfSnapshot => {
                let Some((revision, agents)) = staging.take() else {
                    return Err(format!("{}: END_OF_SNAPSHOT without a snapshot", at()));
                };
                if revision.is_some_and(|r| r != message.revision) {
                    return Err(format!("{}: END_OF_SNAPSHOT revision differs from entries", at()));
                }
                if message.revision > cutoff {
                    return Err(format!("{}: snapshot beyond the cutoff {cutoff}", at()));
                }
                checked.view = agents;
                checked.revision = message.revision;
            }
            EventType::Bookmark => {
                if staging.is_some() {
                    return Err(format!("{}: bookmark inside a snapshot", at()));
                }
                if message.revision > cutoff {
                    break;
                }
                let ok = if started.filtered {
                    message.revision >= checked.revision
                } else {
                    message.revision == checked.revision
                };
                if !ok {
                    return Err(format!("{}: bookmark after revision {}", at(), checked.revision));
                }
                checked.revision = message.revision;
            }
            EventType::Added
            | EventType::Changed
            | EventType::StatusChanged
            | EventType::Removed => {
                if staging.is_some() {
                    return Err(format!("{}: change inside a snapshot", at()));
                }
                if message.revision > cutoff {
                    break;
                }
                if message.revision <= checked.revision {
                    return Err(format!(
                        "{}: revision not after {} (duplicate or out of order)",
                        at(),
                        checked.revision
                    ));
                }
                if !started.filtered && message.revision != checked.revision + 1 {
                    return Err(format!("{}: gap after revision {}", at(), checked.revision));
                }
                apply_change(&mut checked.view, message, lenient)
                    .map_err(|e| format!("{}: {e}", at()))?;
                checked.revision = message.revision;
                checked.events.push(message.clone());
            }
            EventType::Unspecified => return Err(format!("{}: unknown type", at())),
        }
    }
    if staging.is_some() {
        return Err("the snapshot is incomplete".into());
    }
    Ok(checked)
}

fn apply_change(view: &mut View, message: &WatchResponse, lenient: bool) -> Result<(), String> {
    let agent = message.agent.clone().ok_or("no agent")?;
    let held = view.contains_key(&agent.id);
    match kind(message) {
        EventType::Removed => {
            if !held && !lenient {
                return Err(format!("REMOVED of {} which the watcher does not hold", agent.id));
            }
            if message.reason.is_empty() {
                return Err("REMOVED without a reason".into());
            }
            view.remove(&agent.id);
        }
        other => {
            if agent.mod_revision != message.revision {
                return Err(format!(
                    "agent {} at mod_revision {} in an event of revision {}",
                    agent.id, agent.mod_revision, message.revision
                ));
            }
            if other == EventType::Added && held {
                return Err(format!("ADDED of {} which the watcher already holds", agent.id));
            }
            if other != EventType::Added && !held && !lenient {
                return Err(format!("{other:?} of {} which the watcher does not hold", agent.id));
            }
            view.insert(agent.id.clone(), normalized(agent));
        }
    }
    Ok(())
}

/// The type of a watch message.
pub fn kind(message: &WatchResponse) -> EventType {
    EventType::try_from(message.r#type).unwrap_or(EventType::Unspecified)
}

/// An agent without the fields that vary between reads of one revision
/// (`last_heartbeat_at` comes from liveness, not from the store).
pub fn normalized(mut agent: Agent) -> Agent {
    agent.last_heartbeat_at = None;
    agent
}

/// Every agent matching `request`'s filters (all pages) and the revision of
/// the first page.
pub async fn list_agents(
    client: &mut RegistryServiceClient<Channel>,
    request: ListAgentsRequest,
) -> (u64, View) {
    let mut view = View::new();
    let mut page_token = String::new();
    let mut revision = None;
    loop {
        let page = client
            .list_agents(ListAgentsRequest {
                page_size: 1000,
                page_token: page_token.clone(),
                ..request.clone()
            })
            .await
            .expect("list agents")
            .into_inner();
        revision.get_or_insert(page.revision);
        for agent in page.agents {
            view.insert(agent.id.clone(), normalized(agent));
        }
        if page.next_page_token.is_empty() {
            return (revision.unwrap_or(0), view);
        }
        page_token = page.next_page_token;
    }
}

/// The resume revision a watch stream ended with: the
/// `switchboard-resume-revision` metadata of its status.
pub fn resume_revision(status: &tonic::Status) -> Option<u64> {
    status.metadata().get("switchboard-resume-revision")?.to_str().ok()?.parse().ok()
}
