//! The scenarios: each starts real parts, runs a seeded schedule of faults
//! under load, heals everything, reads the final state, and checks the whole
//! history. The short runs of `tests/tests/robustness.rs` and the soak
//! (`switchboard-soak --minutes N`) run the same code with more rounds.

mod agent_faults;
mod disk_full;
mod netns_partition;
mod registry_crash;
mod watchers;

use std::time::Duration;

use tokio::time::Instant;

use super::agent::{AgentSpec, RecordedAgent};
use super::cluster::Settings;
use super::load::{read_all, registry_client};
use super::run::Run;
use super::watcher::Watcher;
use crate::history::Rules;

pub use agent_faults::agent_faults;
pub use disk_full::{DiskFull, disk_full};
pub use netns_partition::netns_partition;
pub use registry_crash::registry_crashes;
pub use watchers::watcher_faults;

/// Longest wait for the registry to serve again, or a watcher to catch up.
const PATIENCE: Duration = Duration::from_secs(30);
/// Longest wait for a dependent to hear of its provider's crash. The target
/// is 1 s; this leaves room for two busy cores shared with other tests.
const TELL_WITHIN: Duration = Duration::from_secs(3);
/// Clock slack around the registry's timestamps.
const SLACK: Duration = Duration::from_millis(250);

/// The rules for a registry with `settings`.
fn rules(settings: &Settings) -> Rules {
    Rules { expired_after: settings.expired_after, tell_within: TELL_WITHIN, slack: SLACK }
}

/// An in-process agent `<name>-<n as 8 hex>` providing `provides`.
async fn agent(
    run: &mut Run,
    registry: &str,
    settings: &Settings,
    name: &str,
    n: u32,
    provides: &str,
    depends_on: Option<&str>,
) -> RecordedAgent {
    let spec = AgentSpec {
        agent_id: format!("{name}-{n:08x}"),
        provides: provides.to_owned(),
        depends_on: depends_on.map(str::to_owned),
        every: settings.interval,
    };
    let seed = run.sub_seed();
    RecordedAgent::start(spec, registry, &run.history, seed).await
}

/// The end of a run: one final read once the registry serves again (the
/// state every acknowledged write is checked against), then every watcher
/// given time to catch up with it. A watcher that does not is a violation
/// the checker reports.
async fn settle(run: &mut Run, registry: &str, watchers: &mut [Watcher]) {
    let mut client = registry_client(registry);
    let deadline = Instant::now() + PATIENCE;
    let revision = loop {
        if let Some((revision, _)) = read_all(&mut client, "final", &run.history).await {
            break revision;
        }
        if Instant::now() >= deadline {
            run.note("the registry never served the final read".into());
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for watcher in watchers.iter_mut() {
        if !catch_up(watcher, revision).await {
            run.note(format!("{} did not reach revision {revision}", watcher.name));
        }
    }
}

/// Waits for a watcher to reach `revision` for as long as it makes
/// progress (a slow watcher far behind, resyncing, can need minutes), and at
/// most `PATIENCE` without any.
async fn catch_up(watcher: &mut Watcher, revision: u64) -> bool {
    let give_up = Instant::now() + PATIENCE * 10;
    let mut seen = watcher.reached();
    while Instant::now() < give_up {
        if watcher.wait_reached(revision, PATIENCE).await {
            return true;
        }
        if watcher.reached() == seen {
            return false;
        }
        seen = watcher.reached();
    }
    false
}
