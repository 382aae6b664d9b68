//! How a refused request is answered: the HTTP status and the
//! `WWW-Authenticate` challenge the MCP authorization spec asks for, and a
//! JSON-RPC error body that says why in words.
//!
//! | refusal | HTTP | JSON-RPC code |
//! |---|---|---|
//! | no or bad credentials | 401 + `WWW-Authenticate: Bearer resource_metadata="…"` | -32010 |
//! | scope missing | 403 + `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"` | -32011 |
//! | policy denial | 200 (a JSON-RPC error naming the rule) | -32011 |
//! | rate limited | 429 + `Retry-After` (and `retryAfterMs` in the error data) | -32012 |

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::value::RawValue;

use super::{AuthFailure, Limited, OAuthConfig, SCOPES};

/// JSON-RPC code: the caller is not authenticated.
pub const UNAUTHENTICATED: i32 = -32010;
/// JSON-RPC code: the caller may not do this (scope or policy).
pub const FORBIDDEN: i32 = -32011;
/// JSON-RPC code: over a rate limit; retry later.
pub const RATE_LIMITED: i32 = -32012;

/// Why the access layer refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Unauthenticated { failure: AuthFailure, metadata: Option<String> },
    Scope { scope: &'static str, metadata: Option<String> },
    Denied { rule: Arc<str>, tool: String },
    Limited(Limited),
}

// === impl Refusal ===

impl Refusal {
    /// The audit outcome / metric label.
    pub(crate) fn label(&self) -> String {
        match self {
            Self::Unauthenticated { failure, .. } => format!("unauthenticated:{}", failure.cause()),
            Self::Scope { scope, .. } => format!("insufficient_scope:{scope}"),
            Self::Denied { rule, .. } => format!("denied:{rule}"),
            Self::Limited(limited) => format!("rate_limited:{}", limited.scope),
        }
    }

    pub(crate) fn code(&self) -> i32 {
        match self {
            Self::Unauthenticated { .. } => UNAUTHENTICATED,
            Self::Scope { .. } | Self::Denied { .. } => FORBIDDEN,
            Self::Limited(_) => RATE_LIMITED,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Self::Unauthenticated { failure, .. } => failure.message().to_owned(),
            Self::Scope { scope, .. } => format!("forbidden: the token lacks scope {scope:?}"),
            Self::Denied { rule, tool } => {
                format!("forbidden: tool {tool:?} denied by access rule {rule:?}")
            }
            Self::Limited(limited) => format!(
                "rate limited: the {} limit is reached; retry in {} ms",
                limited.scope,
                limited.retry_after.as_millis().max(1)
            ),
        }
    }

    /// The HTTP answer to the request with JSON-RPC `id`.
    pub(crate) fn response(&self, id: Option<&RawValue>) -> Response {
        let data = match self {
            Self::Limited(limited) => {
                serde_json::json!({"retryAfterMs": limited.retry_after.as_millis().max(1) as u64})
            }
            Self::Denied { rule, .. } => serde_json::json!({"rule": &**rule}),
            _ => serde_json::Value::Null,
        };
        let mut error = serde_json::json!({"code": self.code(), "message": self.message()});
        if !data.is_null() {
            error["data"] = data;
        }
        let id = id.map_or(serde_json::Value::Null, |id| {
            serde_json::from_str(id.get()).unwrap_or(serde_json::Value::Null)
        });
        let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string();
        let (status, challenge, retry) = match self {
            Self::Unauthenticated { failure, metadata } => {
                let mut challenge = String::from("Bearer");
                let mut params = Vec::new();
                if let Some(url) = metadata {
                    params.push(format!("resource_metadata=\"{url}\""));
                }
                if *failure != AuthFailure::Missing {
                    params.push("error=\"invalid_token\"".to_owned());
                    params.push(format!("error_description=\"{}\"", failure.message()));
                }
                if !params.is_empty() {
                    challenge.push(' ');
                    challenge.push_str(&params.join(", "));
                }
                (StatusCode::UNAUTHORIZED, Some(challenge), None)
            }
            Self::Scope { scope, metadata } => {
                let mut challenge =
                    format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
                if let Some(url) = metadata {
                    challenge.push_str(&format!(", resource_metadata=\"{url}\""));
                }
                (StatusCode::FORBIDDEN, Some(challenge), None)
            }
            Self::Denied { .. } => (StatusCode::OK, None, None),
            Self::Limited(limited) => {
                let seconds = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
                (StatusCode::TOO_MANY_REQUESTS, None, Some(seconds))
            }
        };
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = retry {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Where the metadata of `resource` is served (RFC 9728 §3.1: the
/// well-known prefix goes between the host and the resource's path).
pub(crate) fn metadata_url(resource: &str) -> String {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("https", resource));
    let (host, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let path = path.trim_end_matches('/');
    format!("{scheme}://{host}/.well-known/oauth-protected-resource{path}")
}

/// The protected-resource metadata document.
pub(crate) fn metadata(config: &OAuthConfig) -> serde_json::Value {
    serde_json::json!({
        "resource": config.resource,
        "authorization_servers": config.authorization_servers,
        "scopes_supported": SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard MCP gateway",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_sits_between_host_and_path() {
        assert_eq!(
            metadata_url("https://gw.example.com/mcp"),
            "https://gw.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:7700"),
            "http://127.0.0.1:7700/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn a_missing_token_is_challenged_with_the_metadata_url() {
        let refusal = Refusal::Unauthenticated {
            failure: AuthFailure::Missing,
            metadata: Some("http://gw/.well-known/oauth-protected-resource/mcp".into()),
        };
        let response = refusal.response(None);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer resource_metadata="http://gw/.well-known/oauth-protected-resource/mcp""#
        );
    }
}
