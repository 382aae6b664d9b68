//! Liveness settings: plain structs with defaults, validated before use.
//!
//! The tracker itself never re-checks these; a binary calls
//! [`LivenessConfig::validate`] once, before it binds a port.

use std::time::Duration;

/// Heartbeat timing, the status ladder and the mass-expiry guard.
#[derive(Debug, Clone, PartialEq)]
pub struct LivenessConfig {
    /// How often agents heartbeat (default 5 s). Also the guard's recheck
    /// period for expirations it holds back.
    pub interval: Duration,
    /// No heartbeat for this long makes an agent DEGRADED (default 15 s).
    pub degraded_after: Duration,
    /// No heartbeat for this long makes an agent EXPIRED (default 30 s).
    pub expired_after: Duration,
    /// EXPIRED records are kept this long for operators, then purged (default 10 min).
    pub retention: Duration,
    /// The mass-expiry guard.
    pub guard: GuardConfig,
}

/// Settings of the mass-expiry guard (see the [crate docs](crate#mass-expiry-guard)).
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// More than this share of tracked agents expiring within `window`
    /// engages the guard (default 0.5). `1.0` never engages it.
    pub max_expiring_fraction: f64,
    /// The sliding window over which expirations are counted (default 30 s).
    pub window: Duration,
    /// The guard never engages with fewer tracked agents than this (default 10).
    pub min_agents: usize,
}

/// A setting is out of range; the message names it and its value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{setting} ({value:?}) must be greater than zero")]
    NotPositive {
        /// The setting's name, e.g. `guard.window`.
        setting: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A duration is not greater than the one it must exceed.
    #[error("{setting} ({value:?}) must be greater than {other} ({other_value:?})")]
    NotGreater {
        /// The setting's name.
        setting: &'static str,
        /// Its value.
        value: Duration,
        /// The setting it must exceed.
        other: &'static str,
        /// That setting's value.
        other_value: Duration,
    },
    /// `guard.max_expiring_fraction` is not in (0, 1].
    #[error("guard.max_expiring_fraction ({0}) must be in (0, 1]")]
    Fraction(f64),
}

// === impl LivenessConfig ===

impl Default for LivenessConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            degraded_after: Duration::from_secs(15),
            expired_after: Duration::from_secs(30),
            retention: Duration::from_secs(600),
            guard: GuardConfig::default(),
        }
    }
}

impl LivenessConfig {
    /// Checks every rule: `interval > 0`, `degraded_after > interval`,
    /// `expired_after > degraded_after`, `retention > 0`, the guard's fraction
    /// in (0, 1] and its window > 0. Returns the first violation.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchboard_health::LivenessConfig;
    ///
    /// let config = LivenessConfig { degraded_after: Duration::from_secs(2), ..Default::default() };
    /// let error = config.validate().unwrap_err();
    /// assert_eq!(error.to_string(), "degraded_after (2s) must be greater than interval (5s)");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("interval", self.interval)?;
        greater("degraded_after", self.degraded_after, "interval", self.interval)?;
        greater("expired_after", self.expired_after, "degraded_after", self.degraded_after)?;
        positive("retention", self.retention)?;
        self.guard.validate()
    }
}

// === impl GuardConfig ===

impl Default for GuardConfig {
    fn default() -> Self {
        Self { max_expiring_fraction: 0.5, window: Duration::from_secs(30), min_agents: 10 }
    }
}

impl GuardConfig {
    /// Checks the fraction is in (0, 1] and the window is positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fraction = self.max_expiring_fraction;
        // Written so that NaN is rejected too.
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(ConfigError::Fraction(fraction));
        }
        positive("guard.window", self.window)
    }
}

fn positive(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() { Err(ConfigError::NotPositive { setting, value }) } else { Ok(()) }
}

fn greater(
    setting: &'static str,
    value: Duration,
    other: &'static str,
    other_value: Duration,
) -> Result<(), ConfigError> {
    if value > other_value {
        Ok(())
    } else {
        Err(ConfigError::NotGreater { setting, value, other, other_value })
    }
}

#[cfg(test)]
mod tests;
