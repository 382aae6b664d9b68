//! Checks of the MCP definitions an agent registers verbatim: tools'
//! definitions, resources, resource templates, prompts, capabilities and
//! server info. The registry keeps these as the bytes the agent sent and
//! never re-models them; it only proves they are JSON objects of a bounded
//! size whose routing key (`name`, `uri`, `uriTemplate`) is the one the
//! registration names, so the gateway can route by the key and serve the
//! bytes unchanged.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use switchboard_proto::v1::RegisterAgentRequest;

use crate::error::{RegistryError, RegistryResult};

/// Largest MCP definition of one tool, resource, template or prompt.
pub const MAX_DEFINITION_BYTES: usize = 128 * 1024;
/// Largest capabilities or server-info object.
pub const MAX_INFO_BYTES: usize = 16 * 1024;
/// Most resources per agent.
pub const MAX_RESOURCES: usize = 1024;
/// Most resource templates, and most prompts, per agent.
pub const MAX_TEMPLATES_OR_PROMPTS: usize = 256;
/// Longest resource URI or URI template.
const MAX_URI_LEN: usize = 2048;
/// How much of a bad value an error message repeats.
const SHOWN: usize = 64;

/// The routing keys of a definition; everything else is skipped unread.
#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "uriTemplate")]
    uri_template: Option<Cow<'a, str>>,
}

/// Which key a definition must carry.
#[derive(Clone, Copy)]
enum Key {
    Name,
    Uri,
    UriTemplate,
}

/// Checks every MCP definition of a registration.
pub fn definitions(request: &RegisterAgentRequest) -> RegistryResult<()> {
    for (i, tool) in request.tools.iter().enumerate() {
        let field = format!("tools[{i}].mcp_definition");
        definition(&field, &tool.mcp_definition, Key::Name, &tool.name)?;
    }
    let resources = request.resources.iter().map(|r| (r.uri.as_str(), &r.mcp_definition[..]));
    listed("resources", resources, MAX_RESOURCES, Key::Uri)?;
    let templates =
        request.resource_templates.iter().map(|t| (t.uri_template.as_str(), &t.mcp_definition[..]));
    listed("resource_templates", templates, MAX_TEMPLATES_OR_PROMPTS, Key::UriTemplate)?;
    let prompts = request.prompts.iter().map(|p| (p.name.as_str(), &p.mcp_definition[..]));
    listed("prompts", prompts, MAX_TEMPLATES_OR_PROMPTS, Key::Name)?;
    object("mcp_capabilities", &request.mcp_capabilities)?;
    object("mcp_server_info", &request.mcp_server_info)
}

/// One list of keyed definitions: bounded, keys valid and unique, each
/// definition present and naming its key.
fn listed<'a>(
    list: &str,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>,
    max: usize,
    key: Key,
) -> RegistryResult<()> {
    count(list, entries.len(), max)?;
    let mut seen = HashSet::new();
    for (i, (name, bytes)) in entries.enumerate() {
        let field = format!("{list}[{i}]");
        match key {
            Key::Name => prompt_name(&format!("{field}.name"), name, &mut seen)?,
            Key::Uri => uri(&format!("{field}.uri"), name, &mut seen)?,
            Key::UriTemplate => uri(&format!("{field}.uri_template"), name, &mut seen)?,
        }
        required(&field, bytes)?;
        definition(&format!("{field}.mcp_definition"), bytes, key, name)?;
    }
    Ok(())
}

/// True for MCP prompt (and tool) names as the specification allows them:
/// 1-128 characters of `[A-Za-z0-9_.-]`.
pub fn is_valid_mcp_name(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn count(field: &str, n: usize, max: usize) -> RegistryResult<()> {
    if n > max {
        return Err(RegistryError::invalid(field, format!("{n} entries, at most {max} allowed")));
    }
    Ok(())
}

fn required(field: &str, bytes: &[u8]) -> RegistryResult<()> {
    if bytes.is_empty() {
        return Err(RegistryError::invalid(format!("{field}.mcp_definition"), "must not be empty"));
    }
    Ok(())
}

fn uri<'a>(field: &str, uri: &'a str, seen: &mut HashSet<&'a str>) -> RegistryResult<()> {
    if uri.is_empty() || uri.len() > MAX_URI_LEN || uri.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            field,
            format!("bad URI {:?}: want 1-{MAX_URI_LEN} printable characters", shown(uri)),
        ));
    }
    if !seen.insert(uri) {
        return Err(RegistryError::invalid(field, format!("duplicate {:?}", shown(uri))));
    }
    Ok(())
}

fn prompt_name<'a>(field: &str, name: &'a str, seen: &mut HashSet<&'a str>) -> RegistryResult<()> {
    if !is_valid_mcp_name(name) {
        return Err(RegistryError::invalid(
            field,
            format!("bad prompt name {:?}: want [A-Za-z0-9_.-]{{1,128}}", shown(name)),
        ));
    }
    if !seen.insert(name) {
        return Err(RegistryError::invalid(
            field,
            format!("duplicate prompt name {:?}", shown(name)),
        ));
    }
    Ok(())
}

/// A definition, when given: a JSON object whose key equals `expected`.
fn definition(field: &str, bytes: &[u8], key: Key, expected: &str) -> RegistryResult<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes.len() > MAX_DEFINITION_BYTES {
        return Err(too_large(field, bytes.len(), MAX_DEFINITION_BYTES));
    }
    let keys: Keys<'_> = serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::invalid(field, format!("not a JSON object: {e}")))?;
    let (name, found) = match key {
        Key::Name => ("name", keys.name),
        Key::Uri => ("uri", keys.uri),
        Key::UriTemplate => ("uriTemplate", keys.uri_template),
    };
    match found {
        Some(found) if found == expected => Ok(()),
        Some(found) => Err(RegistryError::invalid(
            field,
            format!("{name} {:?} differs from {:?}", shown(&found), shown(expected)),
        )),
        None => Err(RegistryError::invalid(field, format!("has no {name:?}"))),
    }
}

/// Capabilities and server info: a JSON object when given.
fn object(field: &str, bytes: &[u8]) -> RegistryResult<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes.len() > MAX_INFO_BYTES {
        return Err(too_large(field, bytes.len(), MAX_INFO_BYTES));
    }
    serde_json::from_slice::<std::collections::HashMap<Cow<'_, str>, serde::de::IgnoredAny>>(bytes)
        .map(|_| ())
        .map_err(|e| RegistryError::invalid(field, format!("not a JSON object: {e}")))
}

fn too_large(field: &str, size: usize, max: usize) -> RegistryError {
    RegistryError::invalid(field, format!("{size} bytes, at most {max} allowed"))
}

/// At most [`SHOWN`] characters of a value, for error messages.
fn shown(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => Cow::Owned(format!("{}…", &text[..at])),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use switchboard_proto::v1::{Prompt, Resource, Tool};

    use super::*;

    fn request() -> RegisterAgentRequest {
        RegisterAgentRequest {
            tools: vec![Tool {
                name: "forecast".into(),
                mcp_definition: br#"{"name":"forecast","annotations":{"readOnlyHint":true}}"#
                    .to_vec()
                    .into(),
                ..Tool::default()
            }],
            resources: vec![Resource {
                uri: "file:///a.txt".into(),
                mcp_definition: br#"{"uri":"file:///a.txt","name":"a"}"#.to_vec().into(),
            }],
            prompts: vec![Prompt {
                name: "greet".into(),
                mcp_definition: br#"{"name":"greet"}"#.to_vec().into(),
            }],
            mcp_capabilities: br#"{"tools":{"listChanged":true}}"#.to_vec().into(),
            ..RegisterAgentRequest::default()
        }
    }

    fn error(request: &RegisterAgentRequest) -> String {
        definitions(request).unwrap_err().to_string()
    }

    #[test]
    fn complete_definitions_pass() {
        definitions(&request()).unwrap();
    }

    #[test]
    fn a_definition_must_name_what_it_defines() {
        let mut bad = request();
        bad.tools[0].mcp_definition = br#"{"name":"other"}"#.to_vec().into();
        assert_eq!(error(&bad), r#"tools[0].mcp_definition: name "other" differs from "forecast""#);
        bad.tools[0].mcp_definition = br#"[1,2]"#.to_vec().into();
        assert!(error(&bad).starts_with("tools[0].mcp_definition: not a JSON object"));
        let mut bad = request();
        bad.resources[0].mcp_definition = br#"{"name":"a"}"#.to_vec().into();
        assert_eq!(error(&bad), r#"resources[0].mcp_definition: has no "uri""#);
    }

    #[test]
    fn keys_are_unique_and_bounded() {
        let mut bad = request();
        bad.prompts.push(bad.prompts[0].clone());
        assert_eq!(error(&bad), r#"prompts[1].name: duplicate prompt name "greet""#);
        let mut bad = request();
        bad.prompts[0].name = "x".repeat(5000);
        let message = error(&bad);
        assert!(message.len() < 200, "long values are cut: {message}");
        let mut bad = request();
        bad.mcp_capabilities = b"not json".to_vec().into();
        assert!(error(&bad).starts_with("mcp_capabilities: not a JSON object"));
    }
}
