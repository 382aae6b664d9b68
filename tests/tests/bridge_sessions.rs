//! The session model of a bridged stdio server, on a stateful server: a
//! tiny Python MCP server (the venv's `mcp` package) that counts calls in
//! its process and writes its pid to a directory, so the test counts the
//! programs that run. In `per-client` mode two gateway clients count apart
//! and a client closing its session stops its program (a program that
//! crashes ends only its client's session); in `shared` mode
//! (the default) they share one program and one counter; past
//! `max_sessions` a client gets an error naming the limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use switchboard_bridge::BridgeConfig;
use switchboard_tests::bridge::{BridgeRun, Client, http, venv_python};
use switchboard_tests::{InProcessGateway, TestRegistry, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

/// A stateful stdio server: one counter per process.
const COUNTER: &str = r#"
import os, sys
from mcp.server.mcpserver import MCPServer

open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
server = MCPServer("counter")
count = 0

@server.tool()
def bump() -> int:
    """Adds one to this process's counter and returns it."""
    global count
    count += 1
    return count

server.run()
"#;

/// A registry, a gateway, and the counter bridged with `settings`.
struct Mesh {
    _registry: TestRegistry,
    gateway: InProcessGateway,
    pids: tempfile::TempDir,
    _bridge: BridgeRun,
}

impl Mesh {
    async fn start(settings: &str) -> Self {
        let registry = TestRegistry::start().await;
        let addr = registry.addr.to_string();
        let gateway = InProcessGateway::start(&addr).await;
        let pids = tempfile::tempdir().unwrap();
        let script = pids.path().join("counter.py");
        std::fs::write(&script, COUNTER).unwrap();
        let text = format!(
            "[servers.counter]\ncommand = \"{}\"\nargs = [\"{}\", \"{}\"]\n{settings}\n",
            venv_python(),
            script.display(),
            pids.path().display()
        );
        let config = BridgeConfig::parse(&text, "bridge.toml").unwrap();
        let bridge = BridgeRun::start(config, &addr);
        Self { _registry: registry, gateway, pids, _bridge: bridge }
    }

    /// A gateway client, once the gateway routes `bump`.
    async fn client(&self) -> Client {
        let client = http(&self.gateway.url()).await;
        eventually("bump at the gateway", DEADLINE, || async {
            let tools = client.list_all_tools().await.ok()?;
            tools.iter().any(|tool| tool.name == "bump").then_some(())
        })
        .await;
        client
    }

    /// The pids of the counter programs running now.
    fn running_pids(&self) -> Vec<String> {
        std::fs::read_dir(self.pids.path())
            .unwrap()
            .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
            .filter(|name| name.parse::<u32>().is_ok())
            .filter(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                status.is_ok_and(|status| !status.contains("State:\tZ"))
            })
            .collect()
    }

    /// How many counter programs are running now.
    fn running(&self) -> usize {
        self.running_pids().len()
    }

    async fn running_becomes(&self, expected: usize) {
        eventually(&format!("{expected} counter programs"), DEADLINE, || async {
            (self.running() == expected).then_some(())
        })
        .await;
    }
}

async fn bump(client: &Client) -> Result<u64, String> {
    let result = client
        .call_tool(CallToolRequestParams::new("bump"))
        .await
        .map_err(|error| error.to_string())?;
    let value = serde_json::to_value(&result).unwrap();
    if value["isError"] == true {
        return Err(value.to_string());
    }
    value["content"][0]["text"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("bump answered {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_sessions_keep_state_apart_and_stop_with_their_client() {
    let mesh = Mesh::start("session = \"per-client\"").await;
    let a = mesh.client().await;
    let b = mesh.client().await;
    // The first program serves the registration's lists.
    mesh.running_becomes(1).await;

    assert_eq!(bump(&a).await, Ok(1));
    assert_eq!(bump(&a).await, Ok(2));
    let before_b = mesh.running_pids();
    assert_eq!(bump(&b).await, Ok(1), "b has a counter of its own");
    let b_program = mesh.running_pids().into_iter().find(|pid| !before_b.contains(pid)).unwrap();
    assert_eq!(bump(&a).await, Ok(3));
    assert_eq!(mesh.running(), 3, "one program per client session, and the first");

    // Closing a's session stops a's program only.
    a.cancel().await.unwrap();
    mesh.running_becomes(2).await;
    assert_eq!(bump(&b).await, Ok(2), "b keeps its session and its state");

    // b's program crashing ends b's session only, with an error saying so.
    let killed = std::process::Command::new("kill").args(["-9", &b_program]).status().unwrap();
    assert!(killed.success());
    let gone = eventually("b's session reports its program gone", DEADLINE, || async {
        bump(&b).await.err().filter(|error| error.contains("open a new session"))
    })
    .await;
    assert!(gone.contains("counter"), "the error names the server: {gone}");
    let c = mesh.client().await;
    assert_eq!(bump(&c).await, Ok(1), "a new session gets a new program");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mode_is_one_program_for_every_client() {
    let mesh = Mesh::start("").await;
    let a = mesh.client().await;
    let b = mesh.client().await;
    assert_eq!(bump(&a).await, Ok(1));
    assert_eq!(bump(&b).await, Ok(2), "b sees a's state: the session is shared");
    assert_eq!(mesh.running(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_max_sessions_gets_an_error_naming_the_limit() {
    let mesh = Mesh::start("session = \"per-client\"\nmax_sessions = 1").await;
    let a = mesh.client().await;
    let b = mesh.client().await;
    assert_eq!(bump(&a).await, Ok(1));
    let refused = bump(&b).await.unwrap_err();
    assert!(refused.contains("max_sessions"), "{refused}");
    // Once a's session ends, its slot is free for b.
    a.cancel().await.unwrap();
    eventually("b gets a program once a's is gone", DEADLINE, || async {
        bump(&b).await.ok().filter(|n| *n == 1)
    })
    .await;
}
