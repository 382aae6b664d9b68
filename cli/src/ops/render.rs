//! Registry messages as operators read them: status names, times, ages, and
//! the JSON documents of `--output json`.
//!
//! The JSON is ours, not the proto3 JSON mapping: snake_case field names as in
//! the `.proto` files, statuses as lowercase words (`healthy`), revisions and
//! counts as numbers (not strings), times as RFC 3339 UTC, and heartbeat ages
//! in seconds — what a `jq` script wants.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard_proto::prost_types;
use switchboard_proto::v1::{
    Agent, AgentStatus, Candidate, DependencyResolution, DependencySpec, Provider, Tool,
    ToolResolution,
};

/// `healthy`, `degraded`, `expired` (or `unspecified`).
pub fn status_name(status: i32) -> &'static str {
    match AgentStatus::try_from(status) {
        Ok(AgentStatus::Healthy) => "healthy",
        Ok(AgentStatus::Degraded) => "degraded",
        Ok(AgentStatus::Expired) => "expired",
        Ok(AgentStatus::Unspecified) | Err(_) => "unspecified",
    }
}

/// RFC 3339 UTC, millisecond precision.
pub fn time(timestamp: Option<&prost_types::Timestamp>) -> Option<String> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    chrono::DateTime::from_timestamp(timestamp.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// How long ago `timestamp` was (zero when it is in the future).
pub fn age(timestamp: Option<&prost_types::Timestamp>) -> Option<Duration> {
    let then = SystemTime::try_from(*timestamp?).ok()?;
    Some(SystemTime::now().duration_since(then).unwrap_or_default())
}

/// `4s`, `2m05s`, `3h12m`, `2d4h`.
pub fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// `4s ago`, or `-` when unknown.
pub fn human_age(timestamp: Option<&prost_types::Timestamp>) -> String {
    age(timestamp).map_or_else(|| "-".to_owned(), |age| format!("{} ago", human_duration(age)))
}

/// `date_service >=1.0 [eu, +fast]`.
pub fn spec_text(spec: &DependencySpec) -> String {
    let mut text = spec.capability.clone();
    if !spec.version.is_empty() {
        text.push(' ');
        text.push_str(&spec.version);
    }
    if !spec.tags.is_empty() {
        text.push_str(&format!(" [{}]", spec.tags.join(", ")));
    }
    text
}

/// `-` for an empty cell.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() { "-".to_owned() } else { text.to_owned() }
}

// === JSON ===

/// An agent.
pub fn agent_json(agent: &Agent) -> Value {
    let labels: BTreeMap<&String, &String> = agent.labels.iter().collect();
    json!({
        "id": agent.id,
        "name": agent.name,
        "version": agent.version,
        "endpoint": agent.endpoint,
        "owner": agent.owner,
        "status": status_name(agent.status),
        "status_reason": agent.status_reason,
        "status_cause": cause_name(agent.cause()),
        "labels": labels,
        "tools": agent.tools.iter().map(tool_json).collect::<Vec<_>>(),
        "create_revision": agent.create_revision,
        "mod_revision": agent.mod_revision,
        "registered_at": time(agent.registered_at.as_ref()),
        "status_changed_at": time(agent.status_changed_at.as_ref()),
        "last_heartbeat_at": time(agent.last_heartbeat_at.as_ref()),
        "last_heartbeat_age_secs": age(agent.last_heartbeat_at.as_ref()).map(|a| a.as_secs_f64()),
    })
}

/// The typed cause of an agent's status, for scripts: `heartbeat_late`,
/// `stream_broke`, `never_heartbeated`, `agent_unhealthy`, `expired`, or
/// `""` when HEALTHY.
fn cause_name(cause: switchboard_proto::v1::StatusReason) -> &'static str {
    use switchboard_proto::v1::StatusReason;
    match cause {
        StatusReason::Unspecified => "",
        StatusReason::HeartbeatLate => "heartbeat_late",
        StatusReason::StreamBroke => "stream_broke",
        StatusReason::NeverHeartbeated => "never_heartbeated",
        StatusReason::Expired => "expired",
        StatusReason::AgentUnhealthy => "agent_unhealthy",
    }
}

/// A tool with its mesh metadata.
pub fn tool_json(tool: &Tool) -> Value {
    json!({
        "name": tool.name,
        "capability": tool.capability,
        "version": tool.version,
        "tags": tool.tags,
        "description": tool.description,
        "input_schema": switchboard_client::proto_json::tool_input_schema(tool),
        "dependencies": tool.dependencies.iter().map(spec_json).collect::<Vec<_>>(),
    })
}

/// A dependency spec.
pub fn spec_json(spec: &DependencySpec) -> Value {
    json!({ "capability": spec.capability, "version": spec.version, "tags": spec.tags })
}

/// A provider.
pub fn provider_json(provider: &Provider) -> Value {
    json!({
        "agent_id": provider.agent_id,
        "agent_name": provider.agent_name,
        "endpoint": provider.endpoint,
        "tool_name": provider.tool_name,
        "capability": provider.capability,
        "version": provider.version,
        "tags": provider.tags,
        "status": status_name(provider.status),
        "score": provider.score,
    })
}

/// A candidate with its verdict.
pub fn candidate_json(candidate: &Candidate) -> Value {
    json!({
        "chosen": candidate.chosen,
        "reason": candidate.reason,
        "provider": candidate.provider.as_ref().map(provider_json),
    })
}

/// The resolution of one spec.
pub fn resolution_json(resolution: &DependencyResolution) -> Value {
    json!({
        "spec": resolution.spec.as_ref().map(spec_json),
        "resolved": !resolution.providers.is_empty(),
        "providers": resolution.providers.iter().map(provider_json).collect::<Vec<_>>(),
        "reason": resolution.reason,
        "candidates": resolution.candidates.iter().map(candidate_json).collect::<Vec<_>>(),
    })
}

/// The resolutions of one tool's dependencies.
pub fn tool_resolution_json(resolution: &ToolResolution) -> Value {
    json!({
        "tool_name": resolution.tool_name,
        "dependencies": resolution.dependencies.iter().map(resolution_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(Duration::from_secs(4)), "4s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 12 * 60)), "3h12m");
        assert_eq!(human_duration(Duration::from_secs(2 * 86400 + 4 * 3600)), "2d4h");
    }

    #[test]
    fn specs_read_as_written() {
        let spec = DependencySpec {
            capability: "date_service".into(),
            version: ">=1.0".into(),
            tags: vec!["eu".into(), "+fast".into()],
        };
        assert_eq!(spec_text(&spec), "date_service >=1.0 [eu, +fast]");
    }
}
