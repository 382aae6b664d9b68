//! Registry configuration: plain structs, validated before any port is bound.

use std::time::Duration;

use switchboard_health::LivenessConfig;
use switchboard_telemetry::audit::AuditTarget;

use crate::access::AuthConfig;

/// Everything the registry core needs to know.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Heartbeat timing, status ladder and mass-expiry guard.
    pub liveness: LivenessConfig,
    /// Event history kept for watch replay, newest first: at most this many events.
    pub history_max_events: usize,
    /// Event history older than this is compacted.
    pub history_max_age: Duration,
    /// Watch: a live watcher further behind the latest revision than this
    /// many events is ended with a resumable status. Keep it below
    /// `history_max_events`, so the watcher can resume by replay instead of
    /// a fresh snapshot.
    pub watch_max_lag: usize,
    /// Watch: a watcher with messages to send whose connection takes none
    /// for this long is ended with a resumable status (and stops pinning the
    /// snapshot it was sending).
    pub slow_watcher_timeout: Duration,
    /// Watch: idle streams get a progress bookmark this often.
    pub bookmark_interval: Duration,
    /// Most mutations committed (and flushed) together: a batch closes when
    /// the previous flush ends, or at this many mutations (a bound on its
    /// memory, not its size in normal operation).
    pub max_batch: usize,
    /// Limits on what a client may send.
    pub limits: Limits,
    /// Authentication and roles (off by default).
    pub auth: AuthConfig,
    /// Where every control-plane change is recorded (off by default).
    pub audit_log: AuditTarget,
}

/// Input limits. Each is enforced with `INVALID_ARGUMENT` naming the field,
/// except `max_message_bytes`: a message over it is refused by the gRPC
/// decoder before any field is read, with `RESOURCE_EXHAUSTED` naming the
/// limit (gRPC's code for a message too large).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most tools per agent.
    pub max_tools: usize,
    /// Most dependency specs per tool.
    pub max_dependencies: usize,
    /// Largest encoded input schema of one tool, in bytes.
    pub max_schema_bytes: usize,
    /// Most labels per agent.
    pub max_labels: usize,
    /// Longest label value, in bytes.
    pub max_label_value_bytes: usize,
    /// Longest tool description, in bytes.
    pub max_description_bytes: usize,
    /// Most tags per tool or dependency.
    pub max_tags: usize,
    /// Largest gRPC message the registry decodes, in bytes; larger ones get
    /// `RESOURCE_EXHAUSTED`.
    pub max_message_bytes: usize,
    /// Largest encoded registration (the agent and all its tools), in bytes.
    /// No limit beyond `max_message_bytes` by default; a store whose records
    /// are bounded (etcd: one value per agent) lowers it at startup.
    pub max_agent_bytes: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            liveness: LivenessConfig::default(),
            history_max_events: 10_000,
            history_max_age: Duration::from_secs(3600),
            watch_max_lag: 8192,
            slow_watcher_timeout: Duration::from_secs(10),
            bookmark_interval: Duration::from_secs(5),
            max_batch: 512,
            limits: Limits::default(),
            auth: AuthConfig::default(),
            audit_log: AuditTarget::Off,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tools: 256,
            max_dependencies: 32,
            max_schema_bytes: 64 * 1024,
            max_labels: 64,
            max_label_value_bytes: 256,
            max_description_bytes: 4096,
            max_tags: 32,
            max_message_bytes: 4 * 1024 * 1024,
            max_agent_bytes: usize::MAX,
        }
    }
}

impl RegistryConfig {
    /// Checks every setting; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        self.liveness.validate().map_err(|e| e.to_string())?;
        let positive = [
            ("history_max_events", self.history_max_events),
            ("watch_max_lag", self.watch_max_lag),
            ("max_batch", self.max_batch),
            ("max_message_bytes", self.limits.max_message_bytes),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if self.slow_watcher_timeout.is_zero() {
            return Err("slow_watcher_timeout must be greater than 0".into());
        }
        if self.bookmark_interval.is_zero() {
            return Err("bookmark_interval must be greater than 0".into());
        }
        Ok(())
    }
}
