//! Drives the liveness tracker's timers: sleeps until the next deadline,
//! polls the due transitions and hands the affected agents to the writer.

use std::sync::Arc;

use tokio::time::Instant;

use crate::shared::Shared;

/// Sleep used when no deadline is pending (a registration wakes us earlier).
const IDLE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Follows the store's sweeper election until the registry closes: only
/// the elected replica tracks the agents no replica owns.
pub(crate) async fn follow_sweeper(
    shared: Arc<Shared>,
    mut elected: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let sweeper = *elected.borrow_and_update();
        crate::feed::sweep(&shared, sweeper);
        tokio::select! {
            () = shared.closing.cancelled() => return,
            changed = elected.changed() => if changed.is_err() { return },
        }
    }
}

/// Runs until the registry closes.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let next = shared.liveness.lock().next_deadline();
        let wake_at = next.unwrap_or_else(|| Instant::now() + IDLE);
        tokio::select! {
            () = shared.closing.cancelled() => return,
            () = shared.liveness_changed.notified() => continue,
            () = tokio::time::sleep_until(wake_at) => {}
        }
        let (transitions, guard_active) = {
            let mut tracker = shared.liveness.lock();
            let transitions = tracker.poll(Instant::now());
            (transitions, tracker.guard_active())
        };
        shared.metrics.guard_active.set(i64::from(guard_active));
        if transitions.is_empty() {
            continue;
        }
        shared.metrics.transitions.inc_by(transitions.len() as u64);
        shared.mark_dirty(transitions.into_iter().map(|t| t.key));
    }
}
