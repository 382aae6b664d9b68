//! The reference file agent and command agent, served to a real registry
//! and called through a real gateway the way any MCP client calls them:
//! every escape attempt and every limit is a tool error naming its rule,
//! and the happy paths work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use switchboard_agent::{Agent, RunningAgent};
use switchboard_client::{McpPool, McpPoolConfig};
use switchboard_examples::command_agent::{self, CommandAgentConfig, Program};
use switchboard_examples::file_agent::{self, FileAgentConfig};
use switchboard_tests::{InProcessGateway, McpClient, TestRegistry, eventually};

const DEADLINE: Duration = Duration::from_secs(30);

/// A registry, a gateway, and one agent started by `start`, once the
/// gateway lists `tools`.
async fn mesh<F, Fut>(
    name: &str,
    tools: &[&str],
    start: F,
) -> (TestRegistry, InProcessGateway, RunningAgent, McpClient)
where
    F: FnOnce(Agent) -> Fut,
    Fut: std::future::Future<Output = Result<RunningAgent, switchboard_agent::AgentError>>,
{
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let agent = start(Agent::new(name).registry(&addr).listen("127.0.0.1:0")).await.unwrap();
    let client = McpClient::new(&gateway.url());
    let mut expected: Vec<String> = tools.iter().map(|t| (*t).to_owned()).collect();
    expected.sort();
    eventually(&format!("tools/list = {expected:?}"), DEADLINE, || async {
        (client.tool_names().await.ok()? == expected).then_some(())
    })
    .await;
    (registry, gateway, agent, client)
}

/// `tools/call` through the gateway; the call itself must succeed (a tool
/// error is a result, not a failed call).
async fn call(client: &McpClient, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call(tool, arguments.clone())
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool} {arguments}: {e}"))
}

/// The text of a tool error; panics when the call succeeded.
async fn refusal(client: &McpClient, tool: &str, arguments: Value) -> String {
    let result = call(client, tool, arguments.clone()).await;
    let text = switchboard_tests::mcp::text(&result);
    assert_eq!(result.is_error, Some(true), "{tool} {arguments} should be refused: {text}");
    text
}

/// The structured content of a successful call.
async fn structured(client: &McpClient, tool: &str, arguments: Value) -> Value {
    let result = call(client, tool, arguments.clone()).await;
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool} {arguments}: {}",
        switchboard_tests::mcp::text(&result)
    );
    result.structured_content.unwrap_or_else(|| panic!("{tool}: no structured content"))
}

/// A base directory with a file, a subdirectory, links in, out and round
/// in a loop, a big file and a forbidden extension; a secret beside it.
fn file_tree(root: &Path) -> std::path::PathBuf {
    let base = root.join("base");
    std::fs::create_dir_all(base.join("docs")).unwrap();
    std::fs::write(base.join("docs/readme.txt"), "hello from the base").unwrap();
    std::fs::write(base.join("big.txt"), "x".repeat(2048)).unwrap();
    std::fs::write(base.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(root.join("secret.txt"), "outside").unwrap();
    symlink(root.join("secret.txt"), base.join("escape.txt")).unwrap();
    symlink(root, base.join("up")).unwrap();
    symlink("loop2.txt", base.join("loop1.txt")).unwrap();
    symlink("loop1.txt", base.join("loop2.txt")).unwrap();
    symlink("docs/readme.txt", base.join("alias.txt")).unwrap();
    base
}

fn file_config(base: &Path) -> FileAgentConfig {
    let mut config = FileAgentConfig::new(base);
    config.max_file_bytes = 1024;
    config.allow_ext = vec!["txt".into(), "md".into()];
    config
}

const FILE_TOOLS: &[&str] = &["file_info", "list_directory", "read_file", "write_file"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escape_attempt_through_the_gateway_is_refused_naming_its_rule() {
    let root = tempfile::tempdir().unwrap();
    let base = file_tree(root.path());
    let config = file_config(&base);
    let (_registry, _gateway, _agent, client) =
        mesh("files", FILE_TOOLS, |agent| file_agent::start(agent, config)).await;

    let long_name = format!("{}.txt", "n".repeat(300));
    let long_path = "d/".repeat(2100);
    let read = |path: &str| ("read_file", json!({"path": path}));
    let cases: Vec<((&str, Value), &str)> = vec![
        (
            read("../secret.txt"),
            "path \"../secret.txt\": refused: \"..\" components are not allowed",
        ),
        (read("docs/../../secret.txt"), "\"..\" components are not allowed"),
        (read("/etc/passwd"), "path \"/etc/passwd\": refused: absolute paths are not allowed"),
        (read("escape.txt"), "path \"escape.txt\": refused: resolves outside the base directory"),
        (read("up/secret.txt"), "refused: resolves outside the base directory"),
        (read("loop1.txt"), "refused: too many levels of symbolic links (a link loop)"),
        (read(&long_name), "over the 255-byte name limit"),
        (read(&long_path), "over the 4096-byte path limit"),
        (read("docs/read\0me.txt"), "refused: contains a NUL byte"),
        (
            read("big.txt"),
            "file \"big.txt\": refused: larger than the 1024-byte limit (--max-file-bytes)",
        ),
        (
            read("run.sh"),
            "file \"run.sh\": refused: extension \"sh\" is not allowed (--allow-ext: txt,md)",
        ),
        (read("missing.txt"), "path \"missing.txt\": not found"),
        (read("docs"), "extension \"\" is not allowed"),
        (
            ("write_file", json!({"path": "../out.txt", "content": "x"})),
            "\"..\" components are not allowed",
        ),
        (
            ("write_file", json!({"path": "up/out.txt", "content": "x"})),
            "resolves outside the base directory",
        ),
        (
            ("write_file", json!({"path": "escape.txt", "content": "x"})),
            "resolves outside the base directory",
        ),
        (
            ("write_file", json!({"path": "new.txt", "content": "y".repeat(1025)})),
            "larger than the 1024-byte limit",
        ),
        (
            ("write_file", json!({"path": "new.exe", "content": "x"})),
            "extension \"exe\" is not allowed",
        ),
        (("list_directory", json!({"path": "up"})), "resolves outside the base directory"),
        (("list_directory", json!({"path": "/"})), "absolute paths are not allowed"),
        (("file_info", json!({"path": "escape.txt"})), "resolves outside the base directory"),
        (("file_info", json!({"path": "../base"})), "\"..\" components are not allowed"),
    ];
    for ((tool, arguments), expected) in cases {
        let text = refusal(&client, tool, arguments.clone()).await;
        assert!(text.contains(expected), "{tool} {arguments}: {text}");
    }
    assert_eq!(std::fs::read_to_string(root.path().join("secret.txt")).unwrap(), "outside");
    assert!(!root.path().join("out.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_written_read_listed_and_described_through_the_gateway() {
    let root = tempfile::tempdir().unwrap();
    let base = file_tree(root.path());
    let config = file_config(&base);
    let (_registry, gateway, _agent, client) =
        mesh("files", FILE_TOOLS, |agent| file_agent::start(agent, config)).await;

    let written =
        structured(&client, "write_file", json!({"path": "docs/plan.md", "content": "# Plan\n"}))
            .await;
    assert_eq!(written, json!({"path": "docs/plan.md", "bytes": 7, "created": true}));
    assert_eq!(std::fs::read_to_string(base.join("docs/plan.md")).unwrap(), "# Plan\n");
    let rewritten =
        structured(&client, "write_file", json!({"path": "docs/plan.md", "content": "v2"})).await;
    assert_eq!(rewritten["created"], false);

    let read = structured(&client, "read_file", json!({"path": "docs/plan.md"})).await;
    assert_eq!(read, json!({"path": "docs/plan.md", "content": "v2", "bytes": 2}));
    let alias = structured(&client, "read_file", json!({"path": "alias.txt"})).await;
    assert_eq!(
        (alias["path"].as_str(), alias["content"].as_str()),
        (Some("docs/readme.txt"), Some("hello from the base"))
    );

    let listing = structured(&client, "list_directory", json!({})).await;
    let entries: Vec<(String, String)> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["kind"].as_str().unwrap().to_owned()))
        .collect();
    let names: Vec<(&str, &str)> = entries.iter().map(|(n, k)| (n.as_str(), k.as_str())).collect();
    assert_eq!(
        names,
        [
            ("alias.txt", "symlink"),
            ("big.txt", "file"),
            ("docs", "directory"),
            ("escape.txt", "symlink"),
            ("loop1.txt", "symlink"),
            ("loop2.txt", "symlink"),
            ("run.sh", "file"),
            ("up", "symlink"),
        ]
    );
    let docs = structured(&client, "list_directory", json!({"path": "docs"})).await;
    assert_eq!(docs["entries"].as_array().unwrap().len(), 2, "{docs}");

    let info = structured(&client, "file_info", json!({"path": "big.txt"})).await;
    assert_eq!(
        (info["kind"].as_str(), info["size"].as_u64(), info["readable"].as_bool()),
        (Some("file"), Some(2048), Some(false))
    );

    // The annotations a client decides by, as the gateway serves them.
    let tools = McpPool::new(McpPoolConfig::default()).list_tools(&gateway.url()).await.unwrap();
    for tool in &tools {
        let annotations =
            tool.annotations.as_ref().unwrap_or_else(|| panic!("{}: no annotations", tool.name));
        let writes = tool.name == "write_file";
        assert_eq!(annotations.read_only_hint, Some(!writes), "{}: readOnlyHint", tool.name);
        assert_eq!(annotations.destructive_hint, Some(writes), "{}: destructiveHint", tool.name);
        assert!(tool.output_schema.is_some(), "{}: outputSchema", tool.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_file_agent_refuses_every_write_and_still_reads() {
    let root = tempfile::tempdir().unwrap();
    let base = file_tree(root.path());
    let mut config = file_config(&base);
    config.read_only = true;
    let (_registry, _gateway, _agent, client) =
        mesh("files", FILE_TOOLS, |agent| file_agent::start(agent, config)).await;

    for path in ["docs/readme.txt", "new.txt"] {
        let text =
            refusal(&client, "write_file", json!({"path": path, "content": "changed"})).await;
        assert_eq!(text, format!("file {path:?}: refused: the agent is read-only (--read-only)"));
    }
    assert!(!base.join("new.txt").exists());
    let read = structured(&client, "read_file", json!({"path": "docs/readme.txt"})).await;
    assert_eq!(read["content"], "hello from the base");
}

fn program(path: &str, args: &[&str]) -> Program {
    Program { path: path.into(), args: args.iter().map(|a| (*a).to_owned()).collect() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_agent_refuses_or_cuts_each_run_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let programs = vec![
        program("/bin/echo", &["[A-Za-z0-9,.!]+", ".*"]),
        program("/bin/sleep", &["[0-9]+"]),
        program("/usr/bin/head", &["-c", "[0-9]+", "/dev/zero"]),
    ];
    let mut config = CommandAgentConfig::new(programs, dir.path());
    config.timeout = Duration::from_millis(500);
    config.max_output_bytes = 100;
    let (_registry, _gateway, _agent, client) =
        mesh("commands", &["allowed_commands", "run_command"], |agent| {
            command_agent::start(agent, config)
        })
        .await;

    let run = |program: &str, args: &[&str]| json!({"program": program, "args": args});
    let refused = [
        (
            run("/bin/sh", &["-c", "id"]),
            "program \"/bin/sh\": refused: not on the allow-list (allowed: /bin/echo, /bin/sleep, /usr/bin/head)",
        ),
        (run("rm", &["-rf", "x"]), "program \"rm\": refused: not on the allow-list"),
        (
            run("sleep", &["1s"]),
            "program \"/bin/sleep\": argument 0 \"1s\": refused: matches none of the allowed patterns",
        ),
        (
            run("echo", &["hi; id"]),
            "argument 0 \"hi; id\": refused: contains the shell metacharacter ';'",
        ),
        (run("echo", &["$(id)"]), "contains the shell metacharacter '$'"),
        (run("echo", &["a && b"]), "contains the shell metacharacter '&'"),
        (
            json!({"program": "echo", "args": ["x"], "cwd": "../"}),
            "path \"../\": refused: \"..\" components are not allowed",
        ),
    ];
    for (arguments, expected) in refused {
        let text = refusal(&client, "run_command", arguments.clone()).await;
        assert!(text.contains(expected), "{arguments}: {text}");
    }

    let echoed = structured(&client, "run_command", run("echo", &["Hello,", "mesh."])).await;
    assert_eq!(
        (echoed["stdout"].as_str(), echoed["exit_code"].as_i64()),
        (Some("Hello, mesh.\n"), Some(0))
    );

    let cut = structured(&client, "run_command", run("head", &["-c", "5000", "/dev/zero"])).await;
    assert_eq!(cut["stdout"].as_str().map(str::len), Some(100));
    assert_eq!(
        (cut["stdout_bytes"].as_u64(), cut["truncated"].as_bool()),
        (Some(5000), Some(true))
    );

    let slow = call(&client, "run_command", run("sleep", &["30"])).await;
    assert_eq!(slow.is_error, Some(true));
    let text = switchboard_tests::mcp::text(&slow);
    assert!(
        text.contains("program \"/bin/sleep\": killed after the 0.5s timeout (--timeout)"),
        "{text}"
    );
    let partial = slow.structured_content.expect("the run's result travels with the error");
    assert_eq!((partial["timed_out"].as_bool(), partial["signal"].as_i64()), (Some(true), Some(9)));

    let allowed = structured(&client, "allowed_commands", json!({})).await;
    assert_eq!(allowed["programs"][1], json!({"path": "/bin/sleep", "args": ["[0-9]+"]}));
    assert_eq!(allowed["timeout_seconds"], 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_take_their_limits_from_flags() {
    use switchboard_tests::{AgentProcess, workspace_bin};
    let root = tempfile::tempdir().unwrap();
    let base = file_tree(root.path());
    let registry = TestRegistry::start().await;
    let addr = registry.addr.to_string();
    let gateway = InProcessGateway::start(&addr).await;
    let env = [("SWITCHBOARD_REGISTRY", addr.as_str())];
    let base_flag = base.to_str().unwrap();
    let _files = AgentProcess::spawn_exe(
        &workspace_bin("file-agent"),
        &["--base-dir", base_flag, "--read-only", "--max-file-bytes", "10", "--allow-ext", "txt"],
        &env,
    );
    let _commands = AgentProcess::spawn_exe(
        &workspace_bin("command-agent"),
        &["--allow", "/bin/echo=[a-z]+", "--work-dir", base_flag, "--timeout", "2"],
        &env,
    );
    let client = McpClient::new(&gateway.url());
    let mut expected = [FILE_TOOLS, &["allowed_commands", "run_command"]].concat();
    expected.sort();
    eventually("both agents' tools listed", DEADLINE, || async {
        (client.tool_names().await.ok()? == expected).then_some(())
    })
    .await;

    let text = refusal(&client, "read_file", json!({"path": "docs/readme.txt"})).await;
    assert!(text.contains("larger than the 10-byte limit"), "{text}");
    let text = refusal(&client, "write_file", json!({"path": "a.txt", "content": "x"})).await;
    assert!(text.contains("the agent is read-only"), "{text}");
    let echoed =
        structured(&client, "run_command", json!({"program": "echo", "args": ["flags"]})).await;
    assert_eq!(echoed["stdout"], "flags\n");
    let text = refusal(&client, "run_command", json!({"program": "echo", "args": ["Flags"]})).await;
    assert!(text.contains("matches none of the allowed patterns"), "{text}");
}
