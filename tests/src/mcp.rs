//! A real MCP client (rmcp, through the pool the SDK and gateway use) for
//! calling agents and the gateway from tests.

use rmcp::model::{CallToolRequestParams, CallToolResult};
use switchboard_client::{McpCallError, McpPool, McpPoolConfig};

/// Calls `tool` at `endpoint` with JSON `arguments` on a fresh session.
pub async fn call_tool(
    endpoint: &str,
    tool: &str,
    arguments: serde_json::Value,
) -> Result<CallToolResult, McpCallError> {
    let pool = McpPool::new(McpPoolConfig::default());
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = arguments.as_object().cloned();
    pool.call_tool(endpoint, params).await
}

/// The text of a result.
pub fn text(result: &CallToolResult) -> String {
    switchboard_agent::text_of(result)
}
