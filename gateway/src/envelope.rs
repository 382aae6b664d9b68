//! The JSON-RPC envelope of one message: what routing needs (method, id,
//! `params.name`, `params._meta`), with everything else kept as the raw
//! bytes the client sent, so a forwarded request reaches the agent as
//! written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One parsed JSON-RPC message; `params` keys keep their raw values.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Params>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<RawValue>>,
}

/// `params`: an object whose members stay raw.
pub(crate) type Params = BTreeMap<String, Box<RawValue>>;

/// Why a body is not one JSON-RPC message.
#[derive(Debug)]
pub(crate) enum Malformed {
    /// Not JSON at all (-32700).
    Parse(String),
    /// JSON, but not a JSON-RPC 2.0 message (-32600).
    Invalid(String),
}

// === impl Envelope ===

impl Envelope {
    /// Parses one message (not a batch).
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let value: &RawValue = serde_json::from_slice(body)
            .map_err(|error| Malformed::Parse(format!("parse error: {error}")))?;
        Self::from_raw(value)
    }

    /// Parses one message already known to be JSON.
    pub fn from_raw(value: &RawValue) -> Result<Self, Malformed> {
        if !value.get().trim_start().starts_with('{') {
            return Err(Malformed::Invalid("invalid request: a message must be an object".into()));
        }
        let envelope: Envelope = serde_json::from_str(value.get()).map_err(|error| {
            Malformed::Invalid(format!("invalid request: {error} (params must be an object)"))
        })?;
        if envelope.jsonrpc != "2.0" {
            return Err(Malformed::Invalid(format!(
                "invalid request: jsonrpc must be \"2.0\", not {:?}",
                envelope.jsonrpc
            )));
        }
        if envelope.method.is_none() && envelope.result.is_none() && envelope.error.is_none() {
            return Err(Malformed::Invalid(
                "invalid request: a message needs a method, a result or an error".into(),
            ));
        }
        Ok(envelope)
    }

    /// True for a request (a method and an id).
    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    /// True for a response (a result or an error, no method).
    pub fn is_response(&self) -> bool {
        self.method.is_none()
    }

    /// A `params` member as a string.
    pub fn param_str(&self, key: &str) -> Option<String> {
        let raw = self.params.as_ref()?.get(key)?;
        serde_json::from_str::<String>(raw.get()).ok()
    }

    /// `params._meta` as JSON (empty when absent).
    pub fn meta(&self) -> serde_json::Map<String, serde_json::Value> {
        self.params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default()
    }

    /// Replaces `params._meta`.
    pub fn set_meta(&mut self, meta: &serde_json::Map<String, serde_json::Value>) {
        if let Ok(raw) = serde_json::value::to_raw_value(meta) {
            self.params.get_or_insert_with(Params::new).insert("_meta".to_owned(), raw);
        }
    }

    /// Sets a `params` member to a string.
    pub fn set_param_str(&mut self, key: &str, value: &str) {
        if let Ok(raw) = serde_json::value::to_raw_value(value) {
            self.params.get_or_insert_with(Params::new).insert(key.to_owned(), raw);
        }
    }

    /// A member of `params.ref` as a string.
    pub fn ref_str(&self, key: &str) -> Option<String> {
        let raw = self.params.as_ref()?.get("ref")?;
        let reference: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw.get()).ok()?;
        serde_json::from_str::<String>(reference.get(key)?.get()).ok()
    }

    /// Sets a member of `params.ref` to a string, keeping the others.
    pub fn set_ref_str(&mut self, key: &str, value: &str) {
        let params = self.params.get_or_insert_with(Params::new);
        let mut reference: BTreeMap<String, Box<RawValue>> = params
            .get("ref")
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default();
        reference.insert(key.to_owned(), raw(&value));
        params.insert("ref".to_owned(), raw(&reference));
    }

    /// The id as its JSON text (a map key).
    pub fn id_key(&self) -> Option<String> {
        self.id.as_ref().map(|id| id.get().to_owned())
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Raw JSON for `value`; `null` if it cannot be written (it always can).
pub(crate) fn raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A JSON-RPC error response with `id` (raw JSON text) and a code and message.
pub(crate) fn error_response(id: Option<&RawValue>, code: i32, message: &str) -> Vec<u8> {
    let id = id.map_or("null", RawValue::get);
    let error = serde_json::json!({"code": code, "message": message});
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_members_and_arguments_keep_their_bytes() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","arguments":{"z":1, "a":[1.50,2]}}}"#;
        let mut envelope = Envelope::parse(body).unwrap();
        assert_eq!(envelope.param_str("name").as_deref(), Some("a"));
        envelope.set_param_str("name", "b");
        let out = String::from_utf8(envelope.to_bytes()).unwrap();
        assert!(out.contains(r#""arguments":{"z":1, "a":[1.50,2]}"#), "{out}");
        assert!(out.contains(r#""name":"b""#), "{out}");
    }

    #[test]
    fn bad_messages_are_parse_or_invalid_errors() {
        assert!(matches!(Envelope::parse(b"{nope"), Err(Malformed::Parse(_))));
        for body in [&b"[1]"[..], br#"{"jsonrpc":"1.0","method":"x"}"#, br#"{"id":1}"#] {
            assert!(matches!(Envelope::parse(body), Err(Malformed::Invalid(_))));
        }
        let params = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"greet"}"#;
        assert!(matches!(Envelope::parse(params), Err(Malformed::Invalid(_))));
    }
}
