//! Real third-party MCP servers bridged into the mesh with no code: npm's
//! `server-filesystem` and `server-everything` and PyPI's `mcp-server-time`
//! (stdio programs, installed by `tests/run`). What the gateway lists and
//! answers must be what the server lists and answers directly over stdio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use switchboard_bridge::BridgeConfig;
use switchboard_bridge::config::Source;
use switchboard_proto::v1::ListAgentsRequest;
use switchboard_tests::bridge::{BridgeRun, Client, direct, http, json, npm_server, venv_python};
use switchboard_tests::{InProcessGateway, TestRegistry, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

/// Definitions by their key (`name` or `uri`), as JSON.
fn by_key(items: Vec<Value>, key: &str) -> BTreeMap<String, Value> {
    items.into_iter().map(|item| (item[key].as_str().unwrap().to_owned(), item)).collect()
}

async fn tools(client: &Client) -> BTreeMap<String, Value> {
    by_key(client.list_all_tools().await.unwrap().iter().map(json).collect(), "name")
}

async fn resources(client: &Client) -> BTreeMap<String, Value> {
    by_key(client.list_all_resources().await.unwrap().iter().map(json).collect(), "uri")
}

async fn prompts(client: &Client) -> BTreeMap<String, Value> {
    by_key(client.list_all_prompts().await.unwrap().iter().map(json).collect(), "name")
}

async fn call(client: &Client, tool: &str, arguments: Value) -> Value {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = arguments.as_object().cloned();
    json(&client.call_tool(params).await.unwrap_or_else(|e| panic!("tools/call {tool}: {e}")))
}

/// Waits until the gateway serves exactly the tools `expected` (by name).
async fn gateway_tools(gateway: &InProcessGateway, expected: &BTreeMap<String, Value>) -> Client {
    let client = http(&gateway.url()).await;
    eventually("the bridged tools at the gateway", DEADLINE, || async {
        let listed = tools(&client).await;
        (listed.keys().eq(expected.keys())).then_some(())
    })
    .await;
    client
}

async fn agents_named(registry: &TestRegistry, name: &str) -> Vec<switchboard_proto::v1::Agent> {
    let request = ListAgentsRequest { name: name.into(), ..Default::default() };
    registry.registry_client().await.list_agents(request).await.unwrap().into_inner().agents
}

fn config(text: &str) -> BridgeConfig {
    BridgeConfig::parse(text, "bridge.toml").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_tools_reach_the_gateway_with_their_annotations_and_mesh_metadata() {
    let registry = TestRegistry::start().await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("hello.txt"), "hello from the bridge\n").unwrap();
    let root = root.display().to_string();
    let program = npm_server("mcp-server-filesystem");
    let bridge = BridgeRun::start(
        config(&format!(
            r#"
[servers.files]
command = "{program}"
args = ["{root}"]

[servers.files.tools.read_text_file]
capability = "files.read"
version = "1.2.0"
tags = ["local"]
"#
        )),
        &registry.addr.to_string(),
    );

    let direct = direct(&program, &[&root]).await;
    let expected = tools(&direct).await;
    assert!(expected.contains_key("read_text_file"), "{:?}", expected.keys());
    let through = gateway_tools(&gateway, &expected).await;
    // Every definition verbatim: descriptions, schemas, annotations.
    assert_eq!(tools(&through).await, expected);
    assert!(expected["read_text_file"]["annotations"]["readOnlyHint"].as_bool().unwrap());

    let file = format!("{root}/hello.txt");
    let arguments = json!({"path": file});
    assert_eq!(
        call(&through, "read_text_file", arguments.clone()).await,
        call(&direct, "read_text_file", arguments).await
    );

    // The mesh metadata of the config, the defaults elsewhere.
    let agents = agents_named(&registry, "files").await;
    assert_eq!(agents.len(), 1);
    let tool = |name: &str| agents[0].tools.iter().find(|t| t.name == name).unwrap().clone();
    let read = tool("read_text_file");
    assert_eq!((read.capability.as_str(), read.version.as_str()), ("files.read", "1.2.0"));
    assert_eq!(read.tags, ["local"]);
    assert_eq!(tool("list_directory").capability, "list_directory");

    bridge.stop().await.unwrap();
    eventually("the bridge deregistered", DEADLINE, || async {
        let left = agents_named(&registry, "files").await;
        left.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_serves_tools_resources_and_prompts_through_the_gateway() {
    let registry = TestRegistry::start().await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    let program = npm_server("mcp-server-everything");
    let bridge = BridgeRun::start(
        config(&format!("[servers.everything]\ncommand = \"{program}\"\nargs = [\"stdio\"]\n")),
        &registry.addr.to_string(),
    );

    let direct = direct(&program, &["stdio"]).await;
    // Its conditional tools (roots, sampling, elicitation) come after
    // `initialized`, announced with list_changed.
    let expected = eventually("everything's conditional tools", DEADLINE, || async {
        let tools = tools(&direct).await;
        tools.contains_key("trigger-sampling-request").then_some(tools)
    })
    .await;
    let through = gateway_tools(&gateway, &expected).await;
    assert_eq!(tools(&through).await, expected);

    let direct_resources = resources(&direct).await;
    assert!(!direct_resources.is_empty());
    assert_eq!(resources(&through).await, direct_resources);
    let direct_prompts = prompts(&direct).await;
    assert!(!direct_prompts.is_empty());
    assert_eq!(prompts(&through).await, direct_prompts);

    let arguments = json!({"a": 2, "b": 40});
    assert_eq!(
        call(&through, "get-sum", arguments.clone()).await,
        call(&direct, "get-sum", arguments).await
    );
    let echo = json!({"message": "bridged"});
    assert_eq!(call(&through, "echo", echo.clone()).await, call(&direct, "echo", echo).await);
    bridge.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_server_from_pypi_is_bridged_from_the_command_line_form() {
    let registry = TestRegistry::start().await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    let python = venv_python();
    let command: Vec<String> =
        [python.as_str(), "-m", "mcp_server_time", "--local-timezone", "UTC"]
            .map(String::from)
            .to_vec();
    let config = BridgeConfig::single(None, &command, None, None).unwrap();
    assert_eq!(config.servers[0].name, "mcp_server_time");
    assert!(matches!(&config.servers[0].source, Source::Command(_)));
    let bridge = BridgeRun::start(config, &registry.addr.to_string());

    let direct = direct(&python, &["-m", "mcp_server_time", "--local-timezone", "UTC"]).await;
    let expected = tools(&direct).await;
    assert!(expected.contains_key("convert_time"), "{:?}", expected.keys());
    let through = gateway_tools(&gateway, &expected).await;
    assert_eq!(tools(&through).await, expected);
    let arguments =
        json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"});
    assert_eq!(
        call(&through, "convert_time", arguments.clone()).await,
        call(&direct, "convert_time", arguments).await
    );
    bridge.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gets_only_allowed_variables_and_configured_secrets() {
    let registry = TestRegistry::start().await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token");
    std::fs::write(&secret, "s3cret-from-a-file\n").unwrap();
    let program = npm_server("mcp-server-everything");
    let bridge = BridgeRun::start(
        config(&format!(
            "[servers.everything]\ncommand = \"{program}\"\nargs = [\"stdio\"]\n\
             env = {{ GREETING = \"hello ${{HOME}}\", TOKEN = {{ file = \"{}\" }} }}\n",
            secret.display()
        )),
        &registry.addr.to_string(),
    );
    let client = http(&gateway.url()).await;
    eventually("everything's get-env at the gateway", DEADLINE, || async {
        tools(&client).await.contains_key("get-env").then_some(())
    })
    .await;
    let answer = call(&client, "get-env", json!({})).await;
    let text = answer["content"][0]["text"].as_str().unwrap();
    let env: BTreeMap<String, String> = serde_json::from_str(text).unwrap();
    let home = std::env::var("HOME").unwrap();
    assert_eq!(env["GREETING"], format!("hello {home}"));
    assert_eq!(env["TOKEN"], "s3cret-from-a-file");
    assert_eq!(env["PATH"], std::env::var("PATH").unwrap());
    // This test process's own variables (cargo sets many) stay out.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(!env.contains_key("CARGO_MANIFEST_DIR"), "{:?}", env.keys());
    bridge.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_clients_json_config_bridges_several_servers_in_one_process() {
    let registry = TestRegistry::start().await;
    let gateway = InProcessGateway::start(&registry.addr.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().display().to_string();
    // As Claude Desktop writes it, with a key of its own and a disabled server.
    let config = json!({
        "globalShortcut": "Ctrl+Space",
        "mcpServers": {
            "files": {"command": npm_server("mcp-server-filesystem"), "args": [root]},
            "time": {"command": venv_python(), "args": ["-m", "mcp_server_time"], "env": {"TZ": "UTC"}},
            "old": {"command": "switchboard-no-such-program", "disabled": true}
        }
    });
    let path = dir.path().join("claude_desktop_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let mut bridge = std::process::Command::new(switchboard_tests::switchboard_bin())
        .args(["bridge", "--registry", &registry.addr.to_string(), "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let client = http(&gateway.url()).await;
    eventually("both servers' tools at the gateway", DEADLINE, || async {
        let listed = tools(&client).await;
        (listed.contains_key("read_text_file") && listed.contains_key("convert_time")).then_some(())
    })
    .await;
    assert_eq!(agents_named(&registry, "files").await.len(), 1);
    assert_eq!(agents_named(&registry, "time").await.len(), 1);

    let pid = nix::unistd::Pid::from_raw(i32::try_from(bridge.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || bridge.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(agents_named(&registry, "files").await.is_empty());
    assert!(agents_named(&registry, "time").await.is_empty());
}
