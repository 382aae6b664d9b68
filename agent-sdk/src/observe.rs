//! Observes MCP traffic at the HTTP layer, in front of rmcp: a `tools/call`
//! POST is counted by tool and outcome and timed. Bodies are small JSON-RPC
//! messages; anything larger than [`MAX_OBSERVED_BYTES`] or not JSON passes
//! through unobserved.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt as _;

use crate::metrics::METRICS;

/// Larger bodies are not parsed.
const MAX_OBSERVED_BYTES: usize = 1 << 20;

/// The `tools/call` a request carries, if any.
fn called_tool(body: &[u8]) -> Option<String> {
    let message: serde_json::Value = serde_json::from_slice(body).ok()?;
    if message.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    Some(message.get("params")?.get("name")?.as_str()?.to_owned())
}

/// `ok`, `tool_error` or `error`, from a JSON answer.
fn outcome(body: &[u8]) -> &'static str {
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(body) else { return "ok" };
    if message.get("error").is_some() {
        "error"
    } else if message.pointer("/result/isError").and_then(serde_json::Value::as_bool) == Some(true)
    {
        "tool_error"
    } else {
        "ok"
    }
}

/// axum middleware recording tool calls.
pub async fn tool_calls(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_OBSERVED_BYTES).await else {
        // Too large to observe: rmcp would refuse it anyway.
        return Response::builder()
            .status(http::StatusCode::PAYLOAD_TOO_LARGE)
            .body(Body::from("request body too large"))
            .unwrap_or_default();
    };
    let tool = called_tool(&bytes);
    let request = Request::from_parts(parts, Body::from(bytes));
    let Some(tool) = tool else { return next.run(request).await };
    let started = Instant::now();
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            METRICS.tool_call(&tool, "error", started.elapsed());
            return Response::from_parts(parts, Body::empty());
        }
    };
    METRICS.tool_call(&tool, outcome(&bytes), started.elapsed());
    Response::from_parts(parts, Body::from(bytes))
}
