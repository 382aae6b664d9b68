//! Registry messages as the JSON the page reads. Enums become short
//! lowercase words (`degraded`, `heartbeat_late`) so the page needs no
//! table of proto names.

use serde_json::{Value, json};
use switchboard_client::proto_json::{mcp_definition_field, tool_input_schema};
use switchboard_proto::v1::{
    Agent, AgentStatus, Candidate, DependencyResolution, DependencySpec, EventType, Provider,
    StatusReason, Tool, ToolResolution, WatchResponse,
};

/// A Watch message: `{type, revision, epoch, agent?, reason, time, compact_revision}`.
pub(crate) fn watch_event(event: &WatchResponse) -> Value {
    json!({
        "type": event_type(event.r#type),
        "revision": event.revision,
        "epoch": event.store_epoch,
        "agent": event.agent.as_ref().map(agent),
        "reason": event.reason,
        "time": event.time.as_ref().map(millis),
        "compact_revision": event.compact_revision,
    })
}

/// `EVENT_TYPE_STATUS_CHANGED` → `status_changed`.
pub(crate) fn event_type(value: i32) -> String {
    let name = EventType::try_from(value).map_or("EVENT_TYPE_UNSPECIFIED", |t| t.as_str_name());
    short(name, "EVENT_TYPE_")
}

pub(crate) fn agent(agent: &Agent) -> Value {
    json!({
        "id": agent.id,
        "name": agent.name,
        "version": agent.version,
        "endpoint": agent.endpoint,
        "labels": agent.labels,
        "tools": agent.tools.iter().map(tool).collect::<Vec<_>>(),
        "status": status(agent.status),
        "status_cause": cause(agent.status_cause),
        "status_reason": agent.status_reason,
        "mod_revision": agent.mod_revision,
        "registered_at": agent.registered_at.as_ref().map(millis),
        "status_changed_at": agent.status_changed_at.as_ref().map(millis),
        "last_heartbeat_at": agent.last_heartbeat_at.as_ref().map(millis),
    })
}

fn tool(tool: &Tool) -> Value {
    json!({
        "name": tool.name,
        "capability": tool.capability,
        "version": tool.version,
        "tags": tool.tags,
        "description": tool.description,
        "input_schema": tool_input_schema(tool),
        "annotations": mcp_definition_field(tool, "annotations"),
        "dependencies": tool.dependencies.iter().map(spec).collect::<Vec<_>>(),
    })
}

fn spec(spec: &DependencySpec) -> Value {
    json!({ "capability": spec.capability, "version": spec.version, "tags": spec.tags })
}

pub(crate) fn tool_resolution(resolution: &ToolResolution) -> Value {
    json!({
        "tool": resolution.tool_name,
        "dependencies": resolution.dependencies.iter().map(dependency).collect::<Vec<_>>(),
    })
}

pub(crate) fn dependency(resolution: &DependencyResolution) -> Value {
    json!({
        "spec": resolution.spec.as_ref().map(spec),
        "providers": resolution.providers.iter().map(provider).collect::<Vec<_>>(),
        "reason": resolution.reason,
        "candidates": resolution.candidates.iter().map(candidate).collect::<Vec<_>>(),
    })
}

fn candidate(candidate: &Candidate) -> Value {
    json!({
        "provider": candidate.provider.as_ref().map(provider),
        "chosen": candidate.chosen,
        "reason": candidate.reason,
    })
}

fn provider(provider: &Provider) -> Value {
    json!({
        "agent_id": provider.agent_id,
        "agent_name": provider.agent_name,
        "tool": provider.tool_name,
        "capability": provider.capability,
        "version": provider.version,
        "status": status(provider.status),
        "status_cause": cause(provider.status_cause),
    })
}

fn status(value: i32) -> String {
    let name = AgentStatus::try_from(value).map_or("AGENT_STATUS_UNSPECIFIED", |s| s.as_str_name());
    short(name, "AGENT_STATUS_")
}

fn cause(value: i32) -> String {
    let name =
        StatusReason::try_from(value).map_or("STATUS_REASON_UNSPECIFIED", |s| s.as_str_name());
    short(name, "STATUS_REASON_")
}

fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase()
}

/// Milliseconds since the Unix epoch, what JavaScript's `Date` takes.
pub(crate) fn millis(time: &prost_types::Timestamp) -> i64 {
    time.seconds.saturating_mul(1000).saturating_add(i64::from(time.nanos / 1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_become_short_words() {
        assert_eq!(event_type(EventType::StatusChanged as i32), "status_changed");
        assert_eq!(status(AgentStatus::Degraded as i32), "degraded");
        assert_eq!(cause(StatusReason::StreamBroke as i32), "stream_broke");
        assert_eq!(status(99), "unspecified", "unknown values do not fail the page");
    }
}
