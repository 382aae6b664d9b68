//! What the registry writes to the audit log: one record per control-plane
//! change, at the point where its outcome is known.
//!
//! Changes a caller asks for (register, deregister, a label update on a
//! heartbeat) are recorded by the RPC handler once the registry has
//! answered: a success only after its durable commit, a refusal (invalid
//! argument, not found, shutting down) with the reason. Changes the
//! registry makes by itself (an agent DEGRADED, EXPIRED, HEALTHY again, or
//! evicted after its retention) are recorded by the writer after the commit
//! that makes them durable, with `who` = `registry`. Each change is
//! recorded exactly once, and reads are never recorded.
//!
//! Who called is decided in one place, [`actor`]: the identity the access
//! layer authenticated, and the peer address.

use serde_json::{Value, json};
use switchboard_proto::v1::{Agent, AgentStatus};
use switchboard_telemetry::audit::{AuditLog, AuditOutcome, AuditRecord};

use crate::error::RegistryError;

/// `who` of the changes the registry makes by itself.
pub(crate) const REGISTRY: &str = "registry";

/// Longest target or reason kept in a record: bad input can be megabytes.
const MAX_TEXT: usize = 256;

/// Who made a request, and from where.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    /// The identity (`anonymous` while requests carry none).
    pub who: String,
    /// The peer's address, when the transport knows it.
    pub from: Option<String>,
}

/// Who sent `request`: the identity `caller` was authenticated as
/// (`anonymous` while auth is off) and the peer address.
pub(crate) fn actor<T>(request: &tonic::Request<T>, caller: &crate::access::Caller) -> Actor {
    Actor {
        who: caller.identity().to_owned(),
        from: request.remote_addr().map(|addr| addr.to_string()),
    }
}

/// Records a change `caller` asked for: `Ok(detail)` once it is durable,
/// or the error that refused it.
pub(crate) fn requested<T>(
    log: &AuditLog,
    actor: &Actor,
    action: &str,
    target: &str,
    result: &Result<T, RegistryError>,
    detail: impl FnOnce(&T) -> Value,
) {
    if !log.is_enabled() {
        return;
    }
    let reason;
    let (outcome, detail) = match result {
        Ok(value) => (AuditOutcome::Ok, Some(detail(value))),
        Err(error) => {
            reason = refusal(error);
            (AuditOutcome::Error(&reason), None)
        }
    };
    log.record(&AuditRecord {
        who: &actor.who,
        action,
        target: clip(target),
        from: actor.from.as_deref(),
        outcome,
        detail,
    });
}

/// Records a status change the registry made by itself, from the agent as
/// committed (`removed`: evicted after its retention).
pub(crate) fn transition(log: &AuditLog, agent: &Agent, revision: u64, removed: bool) {
    let (action, detail) = if removed {
        ("evict", json!({ "revision": revision, "status": status_name(agent.status()) }))
    } else {
        let mut detail = json!({ "revision": revision, "status": status_name(agent.status()) });
        if !agent.status_reason.is_empty() {
            detail["reason"] = Value::String(clip(&agent.status_reason).to_owned());
        }
        ("status", detail)
    };
    log.record(&AuditRecord {
        who: REGISTRY,
        action,
        target: &agent.id,
        from: None,
        outcome: AuditOutcome::Ok,
        detail: Some(detail),
    });
}

/// The outcome of a refused change: the status code's name and the message
/// the caller got (internal failures stay generic, as on the wire).
fn refusal(error: &RegistryError) -> String {
    let code = match error {
        RegistryError::InvalidArgument { .. } => "invalid argument",
        RegistryError::AgentNotFound(_) | RegistryError::TokenNotFound(_) => "not found",
        RegistryError::Unauthenticated(_) => "unauthenticated",
        RegistryError::PermissionDenied(_) => "permission denied",
        RegistryError::ShuttingDown => "unavailable",
        RegistryError::Store(_) => return "internal: storage error".to_owned(),
    };
    format!("{code}: {}", clip(&error.to_string()))
}

/// The lowercase status name (`healthy`, `degraded`, `expired`).
fn status_name(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Healthy => "healthy",
        AgentStatus::Degraded => "degraded",
        AgentStatus::Expired => "expired",
        AgentStatus::Unspecified => "unspecified",
    }
}

/// `text` cut to at most [`MAX_TEXT`] bytes, on a character boundary.
fn clip(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_code_and_long_texts_are_cut() {
        let invalid = RegistryError::invalid("tools[0].name", "bad name \"\"");
        assert_eq!(refusal(&invalid), "invalid argument: tools[0].name: bad name \"\"");
        let missing = RegistryError::AgentNotFound("ghost-1".into());
        assert_eq!(refusal(&missing), "not found: agent \"ghost-1\" not found");
        let long = "é".repeat(1000);
        assert!(clip(&long).len() <= MAX_TEXT);
        assert!(clip(&long).chars().all(|c| c == 'é'));
    }
}
