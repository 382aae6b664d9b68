//! Reloading a configuration when its files change.
//!
//! Polling modification times once a second is small, portable and good
//! enough for certificates that rotate in hours or days; a change is picked
//! up by the next handshake after the poll. The task holds only a weak
//! reference, so it ends once every handle to the configuration is gone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::TlsError;
use crate::files::{Named, stamps};

/// How often the files are checked.
const POLL: Duration = Duration::from_secs(1);

/// Watches `files` and stores `build()` into `current` after each change.
/// Without a tokio runtime the configuration stays as loaded.
pub(crate) fn watch<T, F>(
    what: &'static str,
    files: Vec<Named>,
    current: &Arc<ArcSwap<T>>,
    build: F,
) where
    T: Send + Sync + 'static,
    F: Fn() -> Result<T, TlsError> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(what, "no async runtime: certificate files are not watched for changes");
        return;
    };
    let current: Weak<ArcSwap<T>> = Arc::downgrade(current);
    runtime.spawn(async move {
        let mut seen = stamps(&files.iter().collect::<Vec<_>>());
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(current) = current.upgrade() else { return };
            let now = stamps(&files.iter().collect::<Vec<_>>());
            if now == seen {
                continue;
            }
            // A failed load is retried at the next change only: a file that
            // stays broken is reported once, not every second.
            seen = now;
            match build() {
                Ok(config) => {
                    current.store(Arc::new(config));
                    tracing::info!(what, "certificate files changed: new connections use them");
                }
                Err(error) => {
                    tracing::warn!(what, %error, "certificate files changed but do not load; keeping the previous ones");
                }
            }
        }
    });
}
