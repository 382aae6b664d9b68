//! The bridge supervises a stdio server like a service manager: a killed
//! program is out of routing at once (dependents and the gateway told) and
//! back after a restart; a crash loop ends at the restart limit with a clear
//! log line and exit code; SIGTERM deregisters and stops the program; a
//! server's `list_changed` reaches the gateway without a restart; a bad
//! configuration is refused before anything starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use serde_json::json;
use switchboard_agent::{Agent, Dependency};
use switchboard_bridge::BridgeConfig;
use switchboard_proto::v1::ListAgentsRequest;
use switchboard_tests::bridge::{BridgeRun, Client, http, npm_server};
use switchboard_tests::{InProcessGateway, TestRegistry, eventually, start_echo, switchboard_bin};

const DEADLINE: Duration = Duration::from_secs(60);
/// How fast a crash must take the agent out of routing.
const AT_ONCE: Duration = Duration::from_secs(1);

async fn tool_names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> =
        client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

async fn agents_named(registry: &TestRegistry, name: &str) -> usize {
    let request = ListAgentsRequest { name: name.into(), ..Default::default() };
    registry.registry_client().await.list_agents(request).await.unwrap().into_inner().agents.len()
}

/// server-everything behind `sh`, which writes its pid (`exec` keeps it).
fn everything_with_pid_file(pid_file: &Path) -> String {
    let program = npm_server("mcp-server-everything");
    format!(
        "[servers.everything]\ncommand = \"sh\"\nargs = [\"-c\", \"echo $$ > {} && exec {program} stdio\"]\n",
        pid_file.display()
    )
}

/// A registry, a gateway, and server-everything bridged into them.
struct Mesh {
    registry: TestRegistry,
    addr: String,
    gateway: InProcessGateway,
    dir: tempfile::TempDir,
    pid_file: std::path::PathBuf,
    bridge: BridgeRun,
}

impl Mesh {
    async fn start() -> Self {
        let registry = TestRegistry::start().await;
        let addr = registry.addr.to_string();
        let gateway = InProcessGateway::start(&addr).await;
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let text = everything_with_pid_file(&pid_file);
        let bridge = BridgeRun::start(BridgeConfig::parse(&text, "bridge.toml").unwrap(), &addr);
        Self { registry, addr, gateway, dir, pid_file, bridge }
    }
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_unroutable_at_once_and_back_after_a_restart() {
    let Mesh { registry, addr, gateway, dir: _dir, pid_file, bridge } = Mesh::start().await;

    // A dependent of everything's `echo` (capability = the tool's name).
    let echo = Dependency::new("echo", "");
    let dependent = Agent::new("dependent")
        .registry(&addr)
        .listen("127.0.0.1:0")
        .tool("whoami", |t| t.depends_on(&echo));
    let _dependent = start_echo(dependent, "dependent").await;
    let client = http(&gateway.url()).await;
    eventually("echo routable and wired", DEADLINE, || async {
        (echo.is_resolved() && tool_names(&client).await.contains(&"echo".to_owned())).then_some(())
    })
    .await;
    let first = read_pid(&pid_file).unwrap();

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    eventually("the dependent unwired after the crash", AT_ONCE, || async {
        (!echo.is_resolved()).then_some(())
    })
    .await;
    eventually("the gateway stopped routing to the crashed server", AT_ONCE, || async {
        (!tool_names(&client).await.contains(&"echo".to_owned())).then_some(())
    })
    .await;

    // Restarted (a new process), registered and wired again.
    eventually("the server restarted and routable again", DEADLINE, || async {
        let restarted = read_pid(&pid_file).is_some_and(|pid| pid != first);
        (restarted && echo.is_resolved() && tool_names(&client).await.contains(&"echo".to_owned()))
            .then_some(())
    })
    .await;
    let mut params = CallToolRequestParams::new("echo");
    params.arguments = json!({"message": "back"}).as_object().cloned();
    let answer = client.call_tool(params).await.unwrap();
    assert!(serde_json::to_string(&answer).unwrap().contains("back"), "{answer:?}");
    bridge.stop().await.unwrap();
    assert_eq!(agents_named(&registry, "everything").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_changed_from_the_server_reaches_the_gateway_without_a_restart() {
    let Mesh { registry: _registry, addr: _addr, gateway, dir: _dir, pid_file, bridge } =
        Mesh::start().await;
    let client = http(&gateway.url()).await;
    let resource_uris = || async {
        let resources = client.list_all_resources().await.unwrap();
        resources.into_iter().map(|r| r.uri.clone()).collect::<Vec<_>>()
    };
    eventually("everything's tools at the gateway", DEADLINE, || async {
        tool_names(&client).await.contains(&"gzip-file-as-resource".to_owned()).then_some(())
    })
    .await;
    let pid = read_pid(&pid_file).unwrap();
    assert!(!resource_uris().await.iter().any(|uri| uri.ends_with("bridged.txt.gz")));

    // The tool adds a session resource: the server announces
    // resources/list_changed, the bridge registers the new list.
    let mut params = CallToolRequestParams::new("gzip-file-as-resource");
    params.arguments =
        json!({"name": "bridged.txt.gz", "data": "data:text/plain;base64,aGVsbG8gYnJpZGdl"})
            .as_object()
            .cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    eventually("the new resource at the gateway", DEADLINE, || async {
        resource_uris().await.iter().any(|uri| uri.ends_with("bridged.txt.gz")).then_some(())
    })
    .await;
    assert_eq!(read_pid(&pid_file), Some(pid), "the server was not restarted");
    bridge.stop().await.unwrap();
}

/// The binary, with `args`; its exit status and stderr.
fn bridge_command(args: &[&str]) -> Command {
    let mut command = Command::new(switchboard_bin());
    command.arg("bridge").args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    command.env("SWITCHBOARD_LOG", "info");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_gives_up_at_the_restart_limit_with_exit_code_3() {
    let registry = TestRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crashy.toml");
    std::fs::write(
        &config,
        "[servers.crashy]\ncommand = \"sh\"\nargs = [\"-c\", \"echo boom >&2; exit 7\"]\n\
         max_restarts = 2\nrestart_window = \"60s\"\n",
    )
    .unwrap();
    let addr = registry.addr.to_string();
    let output = tokio::task::spawn_blocking(move || {
        bridge_command(&["--registry", &addr, "--config", config.to_str().unwrap()]).output()
    })
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("giving up"), "{stderr}");
    assert!(stderr.contains("gave up after 2 restarts"), "{stderr}");
    // The program's stderr is in our log, with the server's name.
    assert!(stderr.lines().any(|l| l.contains("boom") && l.contains("crashy")), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_deregisters_and_stops_the_program() {
    let registry = TestRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let program = npm_server("mcp-server-everything");
    let script = format!("echo $$ > {} && exec {program} stdio", pid_file.display());
    let mut child = bridge_command(&[
        "--registry",
        &registry.addr.to_string(),
        "--name",
        "everything",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    eventually("the bridged server registered", DEADLINE, || async {
        (agents_named(&registry, "everything").await == 1).then_some(())
    })
    .await;
    let server = read_pid(&pid_file).unwrap();
    let bridge = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(bridge, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(agents_named(&registry, "everything").await, 0, "deregistered before exiting");
    // The program is gone too (signal 0 probes for it).
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(server), None).is_err();
    assert!(gone, "the bridged program {server} outlived the bridge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_are_refused_before_anything_starts() {
    let registry = TestRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    // A good server first: it must not start when another entry is wrong.
    let good = format!(
        "[servers.good]\ncommand = \"sh\"\nargs = [\"-c\", \"touch {}\"]\n\n",
        marker.display()
    );
    let cases = [
        (
            "[servers.bad]\ncommand = \"x\"\ncomand = \"y\"\n",
            "bad.toml:7",
            "unknown field `comand`",
        ),
        (
            "[servers.bad]\ncommand = \"x\"\n[servers.bad.tools.read]\ncapability = \"Files Read\"\n",
            "bad.toml:8",
            "bad capability \"Files Read\"",
        ),
        ("[servers.bad]\nargs = [\"a\"]\n", "bad.toml:5", "missing command"),
        (
            "[servers.bad]\ncommand = \"switchboard-no-such-program\"\n",
            "server \"bad\"",
            "command \"switchboard-no-such-program\" not found",
        ),
    ];
    for (bad, line, problem) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, format!("{good}{bad}")).unwrap();
        let addr = registry.addr.to_string();
        let output = tokio::task::spawn_blocking(move || {
            bridge_command(&["--registry", &addr, "--config", path.to_str().unwrap()]).output()
        })
        .await
        .unwrap()
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains(line) && stderr.contains(problem),
            "{bad}: want {line} {problem}: {stderr}"
        );
    }
    assert!(!marker.exists(), "a server started although the config was refused");
    assert_eq!(agents_named(&registry, "good").await, 0);
}
