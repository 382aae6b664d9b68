//! The everything agent's fixed definitions and answers, as MCP JSON.

use serde_json::{Value, json};

/// A 1x1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A WAV file holding no samples.
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}})
}

fn string_argument(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
    })
}

/// Every tool, as `tools/list` shows it.
pub fn tools() -> Value {
    let plain = |name: &str, description: &str| json!({"name": name, "description": description, "inputSchema": no_arguments()});
    json!([
        {
            "name": "test_simple_text",
            "title": "Simple text",
            "description": "Returns a simple text response",
            "inputSchema": no_arguments(),
            "outputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
            "annotations": {"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false},
        },
        plain("test_image_content", "Returns an image (a 1x1 red PNG)"),
        plain("test_audio_content", "Returns audio (a WAV file)"),
        plain("test_embedded_resource", "Returns an embedded text resource"),
        plain("test_multiple_content_types", "Returns text, an image and a resource"),
        plain("test_tool_with_logging", "Sends three log messages while it runs"),
        plain("test_error_handling", "Always fails, as a tool error"),
        plain("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100"),
        {
            "name": "test_sampling",
            "description": "Asks the client's LLM to answer a prompt",
            "inputSchema": string_argument("prompt", "The prompt to send to the LLM"),
        },
        {
            "name": "test_elicitation",
            "description": "Asks the user for a username and an email address",
            "inputSchema": string_argument("message", "The message to show the user"),
        },
        plain("test_elicitation_sep1034_defaults", "Asks the user, with defaults for every field"),
        plain("test_elicitation_sep1330_enums", "Asks the user, with every kind of enum"),
        {
            "name": "json_schema_2020_12_tool",
            "description": "Tool with JSON Schema 2020-12 features",
            "inputSchema": {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                    },
                },
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                },
                "additionalProperties": false,
            },
        },
    ])
}

/// A result holding one text block.
pub fn text(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

/// A tool error holding one text block.
pub fn error(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

/// The answer of a tool that needs nothing from the call.
pub fn fixed_result(tool: &str) -> Option<Value> {
    let image = json!({"type": "image", "data": PNG, "mimeType": "image/png"});
    Some(match tool {
        "test_simple_text" => {
            let words = "This is a simple text response for testing.";
            json!({
                "content": [{"type": "text", "text": words}],
                "structuredContent": {"text": words},
            })
        }
        "test_image_content" => json!({"content": [image]}),
        "test_audio_content" => {
            json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]})
        }
        "test_embedded_resource" => json!({"content": [{
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        }]}),
        "test_multiple_content_types" => json!({"content": [
            {"type": "text", "text": "Multiple content types test:"},
            image,
            {
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": json!({"test": "data", "value": 123}).to_string(),
                },
            },
        ]}),
        "test_error_handling" => error("This tool intentionally returns an error for testing"),
        "json_schema_2020_12_tool" => text("JSON Schema 2020-12 tool called"),
        _ => return None,
    })
}

/// The `elicitation/create` of `test_elicitation`.
pub fn elicitation_user(message: &str) -> Value {
    json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        },
    })
}

/// The `elicitation/create` with a default for every primitive type.
pub fn elicitation_defaults() -> Value {
    json!({
        "mode": "form",
        "message": "Please review and update the form fields with defaults",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verified user", "default": true},
            },
        },
    })
}

/// The `elicitation/create` with each of the five enum forms.
pub fn elicitation_enums() -> Value {
    let titled = |values: [(&str, &str); 3]| -> Vec<Value> {
        values.iter().map(|(value, title)| json!({"const": value, "title": title})).collect()
    };
    json!({
        "mode": "form",
        "message": "Please select options from the enum fields",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": titled([
                        ("value1", "First Option"),
                        ("value2", "Second Option"),
                        ("value3", "Third Option"),
                    ]),
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "items": {"anyOf": titled([
                        ("value1", "First Choice"),
                        ("value2", "Second Choice"),
                        ("value3", "Third Choice"),
                    ])},
                },
            },
        },
    })
}

/// Every direct resource, as `resources/list` shows it.
pub fn resources() -> Value {
    json!([
        {
            "uri": "test://static-text",
            "name": "static-text",
            "title": "Static text",
            "description": "A static text resource",
            "mimeType": "text/plain",
        },
        {
            "uri": "test://static-binary",
            "name": "static-binary",
            "description": "A static binary resource (a PNG)",
            "mimeType": "image/png",
        },
        {
            "uri": "test://watched-resource",
            "name": "watched-resource",
            "description": "A resource clients may subscribe to",
            "mimeType": "text/plain",
        },
    ])
}

/// Every resource template.
pub fn resource_templates() -> Value {
    json!([{
        "uriTemplate": "test://template/{id}/data",
        "name": "template-data",
        "description": "Data for an id, substituted into the URI",
        "mimeType": "application/json",
    }])
}

/// The contents at `uri`, if there is such a resource.
pub fn read(uri: &str) -> Option<Value> {
    let text = |mime: &str, text: &str| json!([{"uri": uri, "mimeType": mime, "text": text}]);
    match uri {
        "test://static-text" => {
            Some(text("text/plain", "This is the content of the static text resource."))
        }
        "test://static-binary" => Some(json!([{"uri": uri, "mimeType": "image/png", "blob": PNG}])),
        "test://watched-resource" => Some(text("text/plain", "The watched resource.")),
        _ => {
            let id = uri.strip_prefix("test://template/")?.strip_suffix("/data")?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            let data =
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            Some(text("application/json", &data.to_string()))
        }
    }
}

/// Every prompt, as `prompts/list` shows it.
pub fn prompts() -> Value {
    let required = |name: &str, description: &str| json!({"name": name, "description": description, "required": true});
    json!([
        {"name": "test_simple_prompt", "description": "A prompt without arguments"},
        {
            "name": "test_prompt_with_arguments",
            "title": "Prompt with arguments",
            "description": "A prompt with two arguments",
            "arguments": [
                required("arg1", "First test argument"),
                required("arg2", "Second test argument"),
            ],
        },
        {
            "name": "test_prompt_with_embedded_resource",
            "description": "A prompt embedding a resource",
            "arguments": [required("resourceUri", "URI of the resource to embed")],
        },
        {"name": "test_prompt_with_image", "description": "A prompt with an image"},
    ])
}

fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

/// `test_simple_prompt`'s messages.
pub fn simple_prompt() -> Value {
    json!([user(json!({"type": "text", "text": "This is a simple prompt for testing."}))])
}

/// `test_prompt_with_arguments`'s messages.
pub fn prompt_with_arguments(arg1: &str, arg2: &str) -> Value {
    let text = format!("Prompt with arguments: arg1='{arg1}', arg2='{arg2}'");
    json!([user(json!({"type": "text", "text": text}))])
}

/// `test_prompt_with_embedded_resource`'s messages.
pub fn prompt_with_resource(uri: &str) -> Value {
    json!([
        user(json!({"type": "resource", "resource": {
            "uri": uri,
            "mimeType": "text/plain",
            "text": "Embedded resource content for testing.",
        }})),
        user(json!({"type": "text", "text": "Please process the embedded resource above."})),
    ])
}

/// `test_prompt_with_image`'s messages.
pub fn prompt_with_image() -> Value {
    json!([
        user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
        user(json!({"type": "text", "text": "Please analyze the image above."})),
    ])
}

/// Completions of a prompt or template argument starting with `prefix`.
pub fn completions(prefix: &str) -> Vec<&'static str> {
    ["paris", "park", "party", "test", "testing", "value"]
        .into_iter()
        .filter(|value| value.starts_with(prefix))
        .collect()
}
