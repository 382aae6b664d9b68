//! JSON ↔ protobuf `Struct`, for tool input schemas: agents send JSON
//! Schema as a `Struct` in their registration, the gateway hands it back to
//! MCP clients as JSON.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Value as Json};

/// A JSON object as a protobuf `Struct`.
///
/// ```
/// use switchboard_client::proto_json::{from_struct, to_struct};
///
/// let schema = serde_json::json!({"type": "object", "required": ["name"], "minProperties": 1});
/// let object = schema.as_object().cloned().unwrap_or_default();
/// let round_trip = from_struct(&to_struct(&object));
/// assert_eq!(serde_json::Value::Object(round_trip), schema, "whole numbers stay integers");
/// ```
pub fn to_struct(object: &Map<String, Json>) -> Struct {
    Struct { fields: object.iter().map(|(k, v)| (k.clone(), to_value(v))).collect() }
}

/// A protobuf `Struct` as a JSON object (see [`to_struct`] for an example).
pub fn from_struct(object: &Struct) -> Map<String, Json> {
    object.fields.iter().map(|(k, v)| (k.clone(), from_value(v))).collect()
}

/// A registered tool's argument schema: the `input_schema` field older
/// agents send, else the `inputSchema` of the MCP definition newer ones
/// send as bytes. `None` when neither has one (or the definition does not
/// parse): shown as absent, never an error.
///
/// ```
/// use switchboard_client::proto_json::tool_input_schema;
/// use switchboard_proto::v1::Tool;
///
/// let definition = br#"{"name":"echo","inputSchema":{"type":"object"}}"#;
/// let tool = Tool { mcp_definition: definition.to_vec().into(), ..Tool::default() };
/// assert_eq!(tool_input_schema(&tool), Some(serde_json::json!({"type": "object"})));
/// ```
pub fn tool_input_schema(tool: &switchboard_proto::v1::Tool) -> Option<Json> {
    if let Some(schema) = tool.input_schema.as_ref().and_then(|s| s.decode_struct().ok()) {
        return Some(Json::Object(from_struct(&schema)));
    }
    mcp_definition_field(tool, "inputSchema")
}

/// One top-level member (`annotations`, `title`, …) of a tool's MCP
/// definition, when the agent sent one that parses.
pub fn mcp_definition_field(tool: &switchboard_proto::v1::Tool, member: &str) -> Option<Json> {
    let mut definition: Json = serde_json::from_slice(&tool.mcp_definition).ok()?;
    definition.get_mut(member).map(Json::take)
}

fn from_value(value: &Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(object)) => Json::Object(from_struct(object)),
    }
}

/// Whole numbers come back as integers (`"minimum": 1`, not `1.0`).
fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        #[allow(clippy::cast_possible_truncation)]
        return Json::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
}

fn to_value(json: &Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => {
            Kind::ListValue(ListValue { values: items.iter().map(to_value).collect() })
        }
        Json::Object(object) => Kind::StructValue(to_struct(object)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_schemas_keep_their_shape() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
            "required": ["name"],
        });
        let converted = to_struct(schema.as_object().unwrap());
        let Some(Kind::ListValue(required)) = &converted.fields["required"].kind else { panic!() };
        assert_eq!(required.values.len(), 1);
        let Some(Kind::StructValue(properties)) = &converted.fields["properties"].kind else {
            panic!()
        };
        assert!(properties.fields.contains_key("name"));
    }
}
