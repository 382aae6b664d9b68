use std::time::Duration;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn rejected(config: LivenessConfig) -> String {
    match config.validate() {
        Ok(()) => panic!("config should be rejected: {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn defaults_are_valid() {
    let config = LivenessConfig::default();
    assert_eq!(config.interval, secs(5));
    assert_eq!(config.degraded_after, secs(15));
    assert_eq!(config.expired_after, secs(30));
    assert_eq!(config.retention, secs(600));
    assert_eq!(config.guard.max_expiring_fraction, 0.5);
    assert_eq!(config.guard.window, secs(30));
    assert_eq!(config.guard.min_agents, 10);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn interval_must_be_positive() {
    let message = rejected(LivenessConfig { interval: Duration::ZERO, ..Default::default() });
    assert_eq!(message, "interval (0ns) must be greater than zero");
}

#[test]
fn degraded_after_must_exceed_interval() {
    let message = rejected(LivenessConfig { degraded_after: secs(2), ..Default::default() });
    assert_eq!(message, "degraded_after (2s) must be greater than interval (5s)");
    // Equal is not enough.
    let message = rejected(LivenessConfig { degraded_after: secs(5), ..Default::default() });
    assert_eq!(message, "degraded_after (5s) must be greater than interval (5s)");
}

#[test]
fn expired_after_must_exceed_degraded_after() {
    let message = rejected(LivenessConfig { expired_after: secs(15), ..Default::default() });
    assert_eq!(message, "expired_after (15s) must be greater than degraded_after (15s)");
}

#[test]
fn retention_must_be_positive() {
    let message = rejected(LivenessConfig { retention: Duration::ZERO, ..Default::default() });
    assert_eq!(message, "retention (0ns) must be greater than zero");
}

#[test]
fn fraction_must_be_in_zero_one() {
    for bad in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
        let guard = GuardConfig { max_expiring_fraction: bad, ..Default::default() };
        let message = rejected(LivenessConfig { guard, ..Default::default() });
        assert!(message.starts_with("guard.max_expiring_fraction ("), "{message}");
        assert!(message.ends_with(") must be in (0, 1]"), "{message}");
    }
    let guard = GuardConfig { max_expiring_fraction: 1.0, ..Default::default() };
    assert_eq!(LivenessConfig { guard, ..Default::default() }.validate(), Ok(()));
}

#[test]
fn guard_window_must_be_positive() {
    let guard = GuardConfig { window: Duration::ZERO, ..Default::default() };
    let message = rejected(LivenessConfig { guard, ..Default::default() });
    assert_eq!(message, "guard.window (0ns) must be greater than zero");
}
