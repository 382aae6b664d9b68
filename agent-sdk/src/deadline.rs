//! Request deadlines: how long the caller still waits for a tool's answer.
//!
//! A caller (the gateway) writes the milliseconds it has left into the
//! request's `params._meta` under [`DEADLINE_META_KEY`]. The SDK reads it when
//! a `tools/call` arrives and keeps the deadline for the task running the
//! tool, so every [`crate::Dependency`] call that tool makes gives up
//! [`DEADLINE_MARGIN`] before the caller would: the tool still has time to
//! answer, degraded, instead of the caller timing out with nothing.
//!
//! The deadline belongs to the task serving the call: a task the tool spawns
//! does not inherit it (wrap that task's future in [`with_deadline`] with
//! [`current_deadline`] to pass it on).

use std::future::Future;
use std::time::Duration;

use rmcp::model::JsonObject;
use tokio::time::Instant;

/// The `_meta` key carrying the caller's remaining time, in milliseconds.
pub const DEADLINE_META_KEY: &str = "io.switchboard/deadlineMs";

/// Time kept back from the caller's deadline for the tool to answer after a
/// dependency call gave up.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The remaining time a request's `_meta` announces, when it carries a
/// non-negative number of milliseconds under [`DEADLINE_META_KEY`].
pub fn deadline_of(meta: &JsonObject) -> Option<Duration> {
    let value = meta.get(DEADLINE_META_KEY)?;
    let millis = value
        .as_u64()
        .or_else(|| value.as_f64().filter(|ms| ms.is_finite() && *ms >= 0.0).map(|ms| ms as u64))?;
    Some(Duration::from_millis(millis))
}

/// The deadline of the call the current task serves, if its caller set one.
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

/// Runs `future` with `deadline` as the current call's deadline.
pub async fn with_deadline<F: Future>(deadline: Option<Instant>, future: F) -> F::Output {
    match deadline {
        Some(deadline) => DEADLINE.scope(deadline, future).await,
        None => future.await,
    }
}

/// The time a dependency call may take: its own `limit`, shortened so it
/// ends [`DEADLINE_MARGIN`] before the current call's deadline (zero when
/// that is already past).
pub fn budget(limit: Duration) -> Duration {
    match current_deadline() {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            limit.min(left.saturating_sub(DEADLINE_MARGIN))
        }
        None => limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: serde_json::Value) -> JsonObject {
        JsonObject::from_iter([(DEADLINE_META_KEY.to_owned(), value)])
    }

    #[test]
    fn reads_milliseconds_and_ignores_junk() {
        assert_eq!(deadline_of(&meta(serde_json::json!(1500))), Some(Duration::from_millis(1500)));
        assert_eq!(deadline_of(&meta(serde_json::json!(2.5))), Some(Duration::from_millis(2)));
        assert_eq!(deadline_of(&meta(serde_json::json!(-3))), None);
        assert_eq!(deadline_of(&meta(serde_json::json!("soon"))), None);
        assert_eq!(deadline_of(&JsonObject::new()), None);
    }

    #[tokio::test]
    async fn the_budget_ends_before_the_deadline() {
        let limit = Duration::from_secs(30);
        assert_eq!(budget(limit), limit, "no deadline: the setting alone");
        let hour = Duration::from_secs(3600);
        let soon = Some(Instant::now() + Duration::from_secs(10));
        let inside = with_deadline(soon, async { budget(hour) }).await;
        assert!(inside <= Duration::from_secs(10) - DEADLINE_MARGIN, "{inside:?}");
        assert!(inside > Duration::from_secs(5), "{inside:?}");
        let far = Some(Instant::now() + hour);
        let short = with_deadline(far, async { budget(Duration::from_millis(10)) }).await;
        assert_eq!(short, Duration::from_millis(10), "the setting wins when shorter");
        let past = with_deadline(Some(Instant::now()), async { budget(limit) }).await;
        assert_eq!(past, Duration::ZERO);
    }
}
