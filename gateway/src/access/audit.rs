//! The call audit: one JSON line per `tools/call`, `resources/read` and
//! `prompts/get` (and completion) — refused ones too — on the audit sink:
//! who (the principal), what (method and tool), which agent served it,
//! the outcome, the latency, and the SHA-256 of the arguments. The
//! arguments themselves only when the operator asks: they may carry
//! personal data.

use std::time::Duration;

use serde_json::value::RawValue;
use sha2::Digest as _;
use switchboard_telemetry::audit::{AuditLog, AuditOutcome, AuditRecord, AuditTarget};

/// The call audit of one gateway.
#[derive(Debug, Clone)]
pub(crate) struct CallAudit {
    log: AuditLog,
    arguments: bool,
}

/// One audited call.
pub(crate) struct Entry<'a> {
    pub principal: &'a str,
    pub method: &'a str,
    pub target: &'a str,
    pub agent: Option<&'a str>,
    /// `ok`, `tool_error`, or why it failed or was refused.
    pub outcome: &'a str,
    pub latency: Duration,
    pub arguments: Option<&'a RawValue>,
    pub from: Option<&'a str>,
}

// === impl CallAudit ===

impl CallAudit {
    pub(crate) fn open(target: &AuditTarget, arguments: bool) -> std::io::Result<Self> {
        Ok(Self { log: AuditLog::open(target)?, arguments })
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.log.is_enabled()
    }

    pub(crate) fn record(&self, entry: &Entry<'_>) {
        if !self.log.is_enabled() {
            return;
        }
        let text = entry.arguments.map_or("", RawValue::get);
        let digest = sha2::Sha256::digest(text.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push_str(&format!("{byte:02x}"));
        }
        let mut detail = serde_json::json!({
            "latency_ms": entry.latency.as_secs_f64() * 1000.0,
            "arguments_sha256": hex,
        });
        if let Some(agent) = entry.agent {
            detail["agent"] = agent.into();
        }
        if self.arguments
            && let Some(arguments) = entry.arguments
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(arguments.get())
        {
            detail["arguments"] = value;
        }
        let outcome = if entry.outcome == "ok" {
            AuditOutcome::Ok
        } else {
            AuditOutcome::Error(entry.outcome)
        };
        self.log.record(&AuditRecord {
            who: entry.principal,
            action: entry.method,
            target: entry.target,
            from: entry.from,
            outcome,
            detail: Some(detail),
        });
    }
}
