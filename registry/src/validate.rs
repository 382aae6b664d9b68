//! Validation of everything a client sends. Every rejection names the field
//! and the value, so an operator can fix the request without reading code.
//!
//! A quoted value is cut to its first [`SHOWN_CHARS`] characters
//! ([`shown`]): errors travel in gRPC headers, and a client refuses headers
//! past its metadata limit (16 KiB by default in tonic), so echoing a 5 KB id
//! in full would turn `INVALID_ARGUMENT` into the client's own
//! `RESOURCE_EXHAUSTED`, and hide which field was wrong.

use std::collections::HashMap;

use prost::Message as _;
use switchboard_proto::v1::{AgentHealth, DependencySpec, RegisterAgentRequest, Tool};

use crate::config::Limits;
use crate::error::{RegistryError, RegistryResult};
use crate::resolution::{TagConstraints, VersionConstraint, parse_version};

/// Longest agent id.
const MAX_ID_LEN: usize = 128;
/// Longest endpoint URL.
const MAX_ENDPOINT_LEN: usize = 2048;
/// Longest agent software version.
const MAX_VERSION_LEN: usize = 64;
/// Most failing check names one heartbeat may carry.
pub const MAX_FAILING_CHECKS: usize = 64;
/// Characters of a client's value quoted in an error message.
pub const SHOWN_CHARS: usize = 64;

/// A client's value quoted for an error message: in full when short,
/// otherwise its first [`SHOWN_CHARS`] characters (cut on a char boundary),
/// `…` and the full length: `shown("a b")` is `"a b"` (quoted), a 100-byte
/// value is its first 64 characters quoted, then `… (100 bytes)`.
pub fn shown(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// True for names, tags and capabilities: `[a-z0-9][a-z0-9_.-]{0,63}`.
pub fn is_valid_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
        _ => return false,
    }
    bytes.len() <= 64
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(b))
}

/// True for MCP tool names valid in every client: `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_tool_name(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True for agent ids: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_agent_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    matches!(bytes.first(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.len() <= MAX_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b))
}

/// Checks an agent id given to Get, Deregister or a heartbeat.
pub fn agent_id(field: &str, id: &str) -> RegistryResult<()> {
    if id.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    if !is_valid_agent_id(id) {
        return Err(RegistryError::invalid(
            field,
            format!("bad agent id {}: want [A-Za-z0-9][A-Za-z0-9_.-]{{0,127}}", shown(id)),
        ));
    }
    Ok(())
}

fn name(field: &str, text: &str) -> RegistryResult<()> {
    if text.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    filter_name(field, text)
}

/// Checks an optional name, tag or capability (a filter of ListAgents or
/// Watch): empty means "any".
pub fn filter_name(field: &str, text: &str) -> RegistryResult<()> {
    if !text.is_empty() && !is_valid_name(text) {
        return Err(RegistryError::invalid(
            field,
            format!("bad name {}: want [a-z0-9][a-z0-9_.-]{{0,63}}", shown(text)),
        ));
    }
    Ok(())
}

fn tags(field: &str, tags: &[String], limits: &Limits) -> RegistryResult<()> {
    if tags.len() > limits.max_tags {
        return Err(RegistryError::invalid(
            field,
            format!("{} tags, at most {} allowed", tags.len(), limits.max_tags),
        ));
    }
    for (i, tag) in tags.iter().enumerate() {
        name(&format!("{field}[{i}]"), tag)?;
    }
    Ok(())
}

fn endpoint(text: &str) -> RegistryResult<()> {
    let field = "endpoint";
    if text.is_empty() {
        return Err(RegistryError::invalid(field, "must not be empty"));
    }
    if text.len() > MAX_ENDPOINT_LEN {
        return Err(RegistryError::invalid(field, format!("longer than {MAX_ENDPOINT_LEN} bytes")));
    }
    let uri: http::Uri = text
        .parse()
        .map_err(|e| RegistryError::invalid(field, format!("bad url {}: {e}", shown(text))))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(RegistryError::invalid(
            field,
            format!("bad url {}: want http:// or https:// with a host", shown(text)),
        )),
    }
}

/// Checks an agent's labels, from a registration or a heartbeat's label
/// update: keys are names, values at most `max_label_value_bytes`.
pub fn labels(
    field: &str,
    labels: &HashMap<String, String>,
    limits: &Limits,
) -> RegistryResult<()> {
    if labels.len() > limits.max_labels {
        return Err(RegistryError::invalid(
            field,
            format!("{} labels, at most {} allowed", labels.len(), limits.max_labels),
        ));
    }
    // Sorted, so the same bad request always names the same label.
    let mut sorted: Vec<_> = labels.iter().collect();
    sorted.sort_unstable();
    for (key, value) in sorted {
        let entry = format!("{field}[{}]", shown(key));
        name(&entry, key)?;
        if value.len() > limits.max_label_value_bytes {
            return Err(RegistryError::invalid(
                entry,
                format!("value longer than {} bytes", limits.max_label_value_bytes),
            ));
        }
    }
    Ok(())
}

/// Checks a heartbeat's verdict of the agent on itself: at most
/// [`MAX_FAILING_CHECKS`] failing checks, each named like a tag.
pub fn agent_health(field: &str, health: &AgentHealth) -> RegistryResult<()> {
    let failing = &health.failing_checks;
    if failing.len() > MAX_FAILING_CHECKS {
        return Err(RegistryError::invalid(
            format!("{field}.failing_checks"),
            format!("{} checks, at most {MAX_FAILING_CHECKS} allowed", failing.len()),
        ));
    }
    for (i, check) in failing.iter().enumerate() {
        name(&format!("{field}.failing_checks[{i}]"), check)?;
    }
    Ok(())
}

/// Checks a dependency spec (also used by ResolveDependencies).
pub fn dependency(field: &str, spec: &DependencySpec, limits: &Limits) -> RegistryResult<()> {
    name(&format!("{field}.capability"), &spec.capability)?;
    VersionConstraint::parse(&spec.version)
        .map_err(|e| RegistryError::invalid(format!("{field}.version"), e))?;
    if spec.tags.len() > limits.max_tags {
        return Err(RegistryError::invalid(
            format!("{field}.tags"),
            format!("{} tags, at most {} allowed", spec.tags.len(), limits.max_tags),
        ));
    }
    TagConstraints::parse(&spec.tags)
        .map_err(|e| RegistryError::invalid(format!("{field}.tags"), e))?;
    Ok(())
}

fn tool(field: &str, tool: &Tool, limits: &Limits) -> RegistryResult<()> {
    if !is_valid_tool_name(&tool.name) {
        return Err(RegistryError::invalid(
            format!("{field}.name"),
            format!("bad tool name {}: want [A-Za-z0-9_-]{{1,64}}", shown(&tool.name)),
        ));
    }
    if !tool.capability.is_empty() {
        name(&format!("{field}.capability"), &tool.capability)?;
    }
    parse_version(&tool.version)
        .map_err(|e| RegistryError::invalid(format!("{field}.version"), e))?;
    tags(&format!("{field}.tags"), &tool.tags, limits)?;
    if tool.description.len() > limits.max_description_bytes {
        return Err(RegistryError::invalid(
            format!("{field}.description"),
            format!("longer than {} bytes", limits.max_description_bytes),
        ));
    }
    if let Some(schema) = &tool.input_schema {
        let size = schema.encoded_len();
        if size > limits.max_schema_bytes {
            return Err(RegistryError::invalid(
                format!("{field}.input_schema"),
                format!("{size} bytes, at most {} allowed", limits.max_schema_bytes),
            ));
        }
        // Held encoded (never decoded by the registry itself), so checked
        // here: every reader can count on a schema that decodes.
        if let Err(error) = schema.decode_struct() {
            return Err(RegistryError::invalid(
                format!("{field}.input_schema"),
                format!("not a google.protobuf.Struct: {error}"),
            ));
        }
    }
    if tool.dependencies.len() > limits.max_dependencies {
        return Err(RegistryError::invalid(
            format!("{field}.dependencies"),
            format!(
                "{} dependencies, at most {} allowed",
                tool.dependencies.len(),
                limits.max_dependencies
            ),
        ));
    }
    for (i, spec) in tool.dependencies.iter().enumerate() {
        dependency(&format!("{field}.dependencies[{i}]"), spec, limits)?;
    }
    Ok(())
}

/// Checks a whole registration the way `RegisterAgent` does, before
/// anything of it is stored; the error names the first bad field.
pub fn registration(request: &RegisterAgentRequest, limits: &Limits) -> RegistryResult<()> {
    if !request.agent_id.is_empty() {
        agent_id("agent_id", &request.agent_id)?;
    }
    name("name", &request.name)?;
    if request.version.len() > MAX_VERSION_LEN {
        return Err(RegistryError::invalid(
            "version",
            format!("longer than {MAX_VERSION_LEN} bytes"),
        ));
    }
    endpoint(&request.endpoint)?;
    let size = request.encoded_len();
    if size > limits.max_agent_bytes {
        return Err(RegistryError::invalid(
            "tools",
            format!(
                "the agent and its tools encode to {size} bytes, over the store's limit of {} \
                 bytes per agent",
                limits.max_agent_bytes
            ),
        ));
    }
    labels("labels", &request.labels, limits)?;
    if request.tools.len() > limits.max_tools {
        return Err(RegistryError::invalid(
            "tools",
            format!("{} tools, at most {} allowed", request.tools.len(), limits.max_tools),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in request.tools.iter().enumerate() {
        let field = format!("tools[{i}]");
        tool(&field, t, limits)?;
        if !seen.insert(t.name.as_str()) {
            return Err(RegistryError::invalid(
                format!("{field}.name"),
                format!("duplicate tool name {}", shown(&t.name)),
            ));
        }
    }
    mcp::definitions(request)
}

mod mcp;

#[cfg(test)]
mod tests;
