//! `switchboard call <tool> --args JSON`: one tool call through the gateway,
//! as any MCP client would make it.
//!
//! Prints the result's text (or its structured content when it has no text);
//! with `--output json`, the MCP `CallToolResult` as the gateway sent it.
//! Exit codes: 1 when the tool reports `isError` or the call fails, 3 when
//! the gateway is unreachable, 4 when the gateway has no such tool.

use std::time::Duration;

use clap::Args;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use switchboard_client::{McpCallError, McpPool, McpPoolConfig};

use super::ExitCode;
use super::common::{self, GatewayFlag, Output, OutputFlag};
use crate::settings::ClientTlsArgs;

/// Flags of `switchboard call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The tool's name as the gateway lists it.
    tool: String,
    /// The tool's arguments, a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
    /// Longest wait for the answer (`500ms`, `30s`, `2m`).
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    timeout: Duration,
    #[command(flatten)]
    gateway: GatewayFlag,
    /// TLS to the gateway.
    #[command(flatten)]
    tls: ClientTlsArgs,
    #[command(flatten)]
    output: OutputFlag,
}

/// Calls the tool and prints its result.
pub async fn run(args: CallArgs) -> anyhow::Result<()> {
    let arguments = match serde_json::from_str::<serde_json::Value>(&args.args) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(ExitCode::error(ExitCode::USAGE, "--args: want a JSON object")),
        Err(error) => {
            return Err(ExitCode::error(ExitCode::USAGE, format!("--args: bad JSON: {error}")));
        }
    };
    let gateway = &args.gateway.gateway;
    let tls = common::client_tls(&args.tls, gateway)?;
    let pool =
        McpPool::new(McpPoolConfig { call_timeout: args.timeout, tls, ..McpPoolConfig::default() });
    let mut params = CallToolRequestParams::new(args.tool.clone());
    params.arguments = Some(arguments);
    let result = match pool.call_tool(gateway, params).await {
        Ok(result) => result,
        Err(error) => return Err(call_error(&pool, gateway, &args.tool, error).await),
    };
    match args.output.output {
        Output::Json => common::print_json(&serde_json::to_value(&result)?),
        Output::Table => println!("{}", text(&result)),
    }
    if result.is_error == Some(true) {
        return Err(ExitCode::error(
            ExitCode::FAILED,
            format!("tool {:?} reported an error", args.tool),
        ));
    }
    Ok(())
}

/// Maps a failed call to an exit code; an MCP error for a tool the gateway
/// does not list is "not found".
async fn call_error(
    pool: &McpPool,
    gateway: &str,
    tool: &str,
    error: McpCallError,
) -> anyhow::Error {
    match error {
        McpCallError::Unreachable { message, .. } => ExitCode::error(
            ExitCode::UNREACHABLE,
            format!("cannot reach the gateway at {gateway}: {message}"),
        ),
        McpCallError::Mcp { error, .. } => {
            let listed = pool.list_tools(gateway).await;
            if listed.is_ok_and(|tools| !tools.iter().any(|t| t.name == tool)) {
                return ExitCode::error(
                    ExitCode::NOT_FOUND,
                    format!("no tool {tool:?} at the gateway {gateway} ({})", error.message),
                );
            }
            ExitCode::error(
                ExitCode::FAILED,
                format!("tool {tool:?} failed: error {}: {}", error.code.0, error.message),
            )
        }
        other => ExitCode::error(ExitCode::FAILED, format!("tool {tool:?}: {other}")),
    }
}

/// The text blocks of a result; its structured content when it has none.
fn text(result: &CallToolResult) -> String {
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect();
    if texts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        return serde_json::to_string_pretty(structured).unwrap_or_default();
    }
    texts.join("\n")
}
