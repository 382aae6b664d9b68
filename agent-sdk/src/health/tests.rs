use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// A check that fails while `failing` is set.
fn switchable(name: &str, failing: &Arc<AtomicBool>) -> HealthCheck {
    let failing = failing.clone();
    HealthCheck::new(name, move || {
        let failing = failing.load(Ordering::SeqCst);
        async move { if failing { Err("disk full") } else { Ok(()) } }
    })
    .interval(Duration::from_secs(1))
}

async fn verdict_where(health: &Health, accept: impl FnMut(&Verdict) -> bool) -> Verdict {
    health.subscribe().wait_for(accept).await.map(|v| v.clone()).unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_failing_check_makes_the_agent_not_ready_until_it_passes() {
    let failing = Arc::new(AtomicBool::new(false));
    let stop = CancellationToken::new();
    let (health, _tasks) = Health::start(vec![switchable("disk", &failing)], &stop);
    assert_eq!(health.heartbeat_field(), Some(AgentHealth { ready: true, failing_checks: vec![] }));

    failing.store(true, Ordering::SeqCst);
    let verdict = verdict_where(&health, |v| !v.failing.is_empty()).await;
    assert_eq!(verdict.failing, ["disk"]);
    assert!(!health.is_ready());
    let field = health.heartbeat_field();
    assert_eq!(field, Some(AgentHealth { ready: false, failing_checks: vec!["disk".into()] }));
    let state = &health.states()[0];
    assert_eq!((state.ok, state.last_error.as_deref()), (Some(false), Some("disk full")));
    assert!(state.last_run.is_some());

    failing.store(false, Ordering::SeqCst);
    verdict_where(&health, |v| v.failing.is_empty()).await;
    assert!(health.is_ready());
    assert_eq!(health.states()[0].last_error, None);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_check_that_hangs_or_panics_fails() {
    let stop = CancellationToken::new();
    let hangs =
        HealthCheck::new("db", || async { std::future::pending::<Result<(), String>>().await })
            .timeout(Duration::from_millis(500));
    let panics = HealthCheck::new("cache", || async { panic!("boom") as Result<(), String> });
    let (health, _tasks) = Health::start(vec![hangs, panics], &stop);
    let verdict = verdict_where(&health, |v| v.failing.len() == 2).await;
    assert_eq!(verdict.failing, ["db", "cache"]);
    let errors: Vec<_> = health.states().into_iter().map(|s| s.last_error).collect();
    assert_eq!(errors, [Some("timed out after 500ms".into()), Some("check panicked".into())]);
    stop.cancel();
}

#[test]
fn an_agent_without_checks_sends_no_verdict() {
    let (health, tasks) = Health::start(Vec::new(), &CancellationToken::new());
    assert!(tasks.is_empty());
    assert_eq!(health.heartbeat_field(), None);
    assert!(health.is_ready());
}

#[test]
fn bad_settings_are_refused_naming_the_check() {
    let ok = || HealthCheck::new("disk", || async { Ok::<(), String>(()) });
    let refused = |checks: Vec<HealthCheck>| validate(&checks).unwrap_err().to_string();
    assert!(refused(vec![ok(), ok()]).contains(r#"health check "disk" is registered twice"#));
    let bad_name = HealthCheck::new("Disk Space", || async { Ok::<(), String>(()) });
    assert!(refused(vec![bad_name]).contains(r#"health check "Disk Space": bad name"#));
    assert!(refused(vec![ok().interval(Duration::ZERO)]).contains("interval must be above zero"));
    assert!(refused(vec![ok().timeout(Duration::ZERO)]).contains("timeout must be above zero"));
    assert!(validate(&[ok()]).is_ok());
}
