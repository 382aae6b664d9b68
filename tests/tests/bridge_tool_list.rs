//! A bridged stdio server that changes its tool list while it runs: a tiny
//! Python MCP server (the venv's `mcp` package) whose `unlock` tool adds a
//! tool and sends `notifications/tools/list_changed`. The gateway's
//! `tools/list` gains the new tool, which is callable through the gateway,
//! and the server process is the same one (no restart).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use switchboard_bridge::BridgeConfig;
use switchboard_tests::bridge::{BridgeRun, Client, http, venv_python};
use switchboard_tests::{InProcessGateway, TestRegistry, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

/// `unlock` adds `secret` and announces the change; the pid file tells a
/// restart apart from a change in place.
const TOGGLER: &str = r#"
import os, sys
from mcp.server.mcpserver import Context, MCPServer

with open(sys.argv[1], "w") as pid_file:
    pid_file.write(str(os.getpid()))
server = MCPServer("toggler")

def secret() -> str:
    """Listed only after unlock."""
    return "open sesame"

@server.tool()
async def unlock(ctx: Context) -> str:
    """Adds the tool `secret` and announces the new tool list."""
    server.add_tool(secret)
    await ctx.session.send_tool_list_changed()
    return "unlocked"

server.run()
"#;

async fn tool_names(client: &Client) -> Vec<String> {
    let tools = client.list_all_tools().await.unwrap_or_default();
    tools.into_iter().map(|tool| tool.name.to_string()).collect()
}

async fn call_text(client: &Client, tool: &str) -> String {
    let result = client.call_tool(CallToolRequestParams::new(tool.to_owned())).await.unwrap();
    let value = serde_json::to_value(&result).unwrap();
    assert_ne!(value["isError"], true, "{tool}: {value}");
    value["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_added_by_the_server_is_listed_and_callable_through_the_gateway() {
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("toggler.py");
    let pid_file = dir.path().join("pid");
    std::fs::write(&script, TOGGLER).unwrap();
    let text = format!(
        "[servers.toggler]\ncommand = \"{}\"\nargs = [\"{}\", \"{}\"]\n",
        venv_python(),
        script.display(),
        pid_file.display()
    );
    let bridge = BridgeRun::start(BridgeConfig::parse(&text, "bridge.toml").unwrap(), &addr);
    let client = http(&gateway.url()).await;
    eventually("unlock at the gateway", DEADLINE, || async {
        tool_names(&client).await.contains(&"unlock".to_owned()).then_some(())
    })
    .await;
    assert!(!tool_names(&client).await.contains(&"secret".to_owned()));
    let pid = std::fs::read_to_string(&pid_file).unwrap();

    assert_eq!(call_text(&client, "unlock").await, "unlocked");
    eventually("secret at the gateway", DEADLINE, || async {
        tool_names(&client).await.contains(&"secret".to_owned()).then_some(())
    })
    .await;
    assert_eq!(call_text(&client, "secret").await, "open sesame");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid, "the server was not restarted");
    bridge.stop().await.unwrap();
}
