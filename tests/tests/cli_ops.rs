//! The operator CLI (`switchboard agents|agent|resolve|watch|call|status`)
//! against a real mesh: a registry process and the example agents
//! `date-service` and `hello`, and `switchboard up` for the gateway.
//!
//! Each command is checked twice: the human table carries the right data,
//! and `--output json` parses and says the same. Exit codes are part of the
//! contract (0 ok, 1 failed, 2 usage, 3 unreachable, 4 not found).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use switchboard_tests::{
    AgentProcess, CliRun, SwitchboardProcess, TestRegistry, cli, cli_command, eventually,
    gateway_missing,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// A registry with `date-service` and `hello` registered and wired.
struct Mesh {
    registry: TestRegistry,
    date: AgentProcess,
    hello: AgentProcess,
}

impl Mesh {
    async fn start() -> Self {
        let registry = TestRegistry::builder().child_process(&[]).start().await;
        let date = AgentProcess::spawn("date-service", &registry.addr.to_string());
        let hello = AgentProcess::spawn("hello", &registry.addr.to_string());
        Self { registry, date, hello }
    }

    fn addr(&self) -> String {
        self.registry.addr.to_string()
    }

    /// `switchboard ARGS --registry <this registry>`.
    async fn run(&self, args: &[&str]) -> CliRun {
        let addr = self.addr();
        let mut all = args.to_vec();
        all.extend(["--registry", &addr]);
        cli(&all).await
    }
}

/// Asserts a successful run and returns it.
#[track_caller]
fn ok(run: CliRun) -> CliRun {
    assert_eq!(run.code, 0, "expected success:\n{run:#?}");
    run
}

/// Asserts exit `code` with exactly one line on stderr.
#[track_caller]
fn fails(run: &CliRun, code: i32) -> &str {
    assert_eq!(run.code, code, "expected exit {code}:\n{run:#?}");
    assert_eq!(run.stderr.lines().count(), 1, "expected one line on stderr:\n{}", run.stderr);
    run.stderr.trim_end()
}

/// Ids of the agents of a `--output json` listing.
fn ids(document: &Value) -> Vec<String> {
    let mut ids: Vec<String> = document["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// A loopback port nobody listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_lists_every_agent_as_a_table_and_as_json() {
    let mesh = Mesh::start().await;
    let table = ok(mesh.run(&["agents"]).await);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    for word in ["ID", "NAME", "STATUS", "TOOLS", "HEARTBEAT", "ENDPOINT"] {
        assert!(lines[0].contains(word), "{}", lines[0]);
    }
    let row = |id: &str| *lines.iter().find(|l| l.starts_with(id)).expect("a row per agent");
    let date_row = row(&mesh.date.agent_id);
    for cell in ["date-service", "healthy", "get_date", &mesh.date.endpoint()] {
        assert!(date_row.contains(cell), "{cell:?} missing in {date_row:?}");
    }
    let hello_row = row(&mesh.hello.agent_id);
    assert!(hello_row.contains("greet") && hello_row.contains(" ago "), "{hello_row}");

    let json = ok(mesh.run(&["agents", "--output", "json"]).await).json();
    let mut expected = vec![mesh.date.agent_id.clone(), mesh.hello.agent_id.clone()];
    expected.sort();
    assert_eq!(ids(&json), expected);
    assert!(json["revision"].as_u64().unwrap() >= 2, "{json}");
    let date = json["agents"].as_array().unwrap().iter().find(|a| a["name"] == "date-service");
    let date = date.unwrap();
    assert_eq!(date["status"], "healthy");
    assert_eq!(date["endpoint"], mesh.date.endpoint());
    assert_eq!(date["tools"][0]["name"], "get_date");
    assert_eq!(date["tools"][0]["capability"], "date_service");
    assert_eq!(date["tools"][0]["version"], "1.0.0");
    assert_eq!(date["tools"][0]["input_schema"]["type"], "object");
    assert!(date["last_heartbeat_age_secs"].as_f64().unwrap() < 30.0, "{date}");

    // Filters, alone and combined.
    let by = |args: &'static [&'static str]| {
        let mesh = &mesh;
        async move {
            let mut all = vec!["agents", "-o", "json"];
            all.extend_from_slice(args);
            ids(&ok(mesh.run(&all).await).json())
        }
    };
    assert_eq!(by(&["--capability", "greeting"]).await, [mesh.hello.agent_id.as_str()]);
    assert_eq!(by(&["--name", "date-service"]).await, [mesh.date.agent_id.as_str()]);
    assert_eq!(
        by(&["--status", "healthy", "--name", "hello"]).await,
        [mesh.hello.agent_id.as_str()]
    );
    assert!(by(&["--status", "degraded"]).await.is_empty());
    assert!(by(&["--tag", "gpu"]).await.is_empty());

    // Usage mistakes are exit code 2.
    assert_eq!(mesh.run(&["agents", "--status", "asleep"]).await.code, 2);
    assert_eq!(mesh.run(&["agents", "--output", "yaml"]).await.code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_shows_tools_and_resolved_dependencies() {
    let mesh = Mesh::start().await;
    let hello = &mesh.hello.agent_id;
    let table = ok(mesh.run(&["agent", hello]).await).stdout;
    for text in [
        format!("id:              {hello}"),
        "status:          healthy".to_owned(),
        mesh.hello.endpoint(),
        "greet".to_owned(),
        "date_service >=1.0".to_owned(),
        format!("{} get_date 1.0.0 (healthy) {}", mesh.date.agent_id, mesh.date.endpoint()),
    ] {
        assert!(table.contains(&text), "{text:?} missing in:\n{table}");
    }

    let json = ok(mesh.run(&["agent", hello, "-o", "json"]).await).json();
    assert_eq!(json["agent"]["id"], hello.as_str());
    assert_eq!(json["agent"]["tools"][0]["dependencies"][0]["capability"], "date_service");
    let wiring = &json["resolutions"][0];
    assert_eq!(wiring["tool_name"], "greet");
    let dependency = &wiring["dependencies"][0];
    assert_eq!(dependency["resolved"], true);
    assert_eq!(dependency["providers"][0]["agent_id"], mesh.date.agent_id.as_str());
    assert_eq!(dependency["providers"][0]["tool_name"], "get_date");
    assert!(json["resolution_revision"].as_u64().unwrap() >= 1, "{json}");

    let missing = mesh.run(&["agent", "ghost-00000000"]).await;
    let message = fails(&missing, 4);
    assert!(message.contains("ghost-00000000"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_explains_every_candidate() {
    let mesh = Mesh::start().await;
    let table = ok(mesh.run(&["resolve", "date_service", "--version", ">=1.0"]).await).stdout;
    assert!(table.starts_with("date_service >=1.0: 1 provider"), "{table}");
    let row = table.lines().find(|l| l.contains(&mesh.date.agent_id)).expect("candidate row");
    assert!(row.starts_with('*') && row.contains("get_date") && row.contains("healthy"), "{row}");

    let json =
        ok(mesh.run(&["resolve", "date_service", "--tag", "-gpu", "-o", "json"]).await).json();
    assert_eq!(json["resolved"], true);
    assert_eq!(json["spec"]["tags"][0], "-gpu");
    assert_eq!(json["providers"][0]["agent_id"], mesh.date.agent_id.as_str());
    let candidate = &json["candidates"][0];
    assert_eq!(candidate["chosen"], true);
    assert!(!candidate["reason"].as_str().unwrap().is_empty(), "{json}");

    // Nothing satisfies the spec: the explanation is still printed, exit 4.
    let none = mesh.run(&["resolve", "date_service", "--version", ">=2", "-o", "json"]).await;
    assert_eq!(none.code, 4, "{none:#?}");
    let json = none.json();
    assert_eq!(json["resolved"], false);
    let candidate = &json["candidates"][0];
    assert_eq!(candidate["chosen"], false);
    assert!(candidate["reason"].as_str().unwrap().contains("1.0.0"), "{json}");
    let unknown = mesh.run(&["resolve", "teleport"]).await;
    assert_eq!(unknown.code, 4, "{unknown:#?}");
    assert!(unknown.stdout.contains("unresolved"), "{}", unknown.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_the_state_then_every_change() {
    let mesh = Mesh::start().await;
    // From revision 0: both agents, then the end-of-snapshot marker.
    let lines = ok(mesh.run(&["watch", "-o", "json", "--limit", "3"]).await).json_lines();
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["snapshot", "snapshot", "end_of_snapshot"]);
    let mut seen: Vec<&str> =
        lines[..2].iter().map(|l| l["agent"]["id"].as_str().unwrap()).collect();
    seen.sort();
    let mut expected = [mesh.date.agent_id.as_str(), mesh.hello.agent_id.as_str()];
    expected.sort();
    assert_eq!(seen, expected);
    let revision = lines[2]["revision"].as_u64().unwrap();

    // From that revision, live: a third agent joins while the watch runs.
    let since = revision.to_string();
    let addr = mesh.addr();
    let args = ["watch", "-o", "json", "--since", &since, "--limit", "1", "--registry", &addr];
    let watching = cli_command(&args).spawn().unwrap();
    let another = AgentProcess::spawn("date-service", &mesh.addr());
    let output =
        tokio::time::timeout(DEADLINE, watching.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success(), "{output:?}");
    let event: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(event["type"], "added");
    assert_eq!(event["agent"]["id"], another.agent_id.as_str());
    assert!(event["revision"].as_u64().unwrap() > revision, "{event}");

    // The table: a header, then one line per event; filters apply.
    let table = ok(mesh.run(&["watch", "--name", "hello", "--limit", "2"]).await).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains("REVISION") && lines[0].contains("TYPE"), "{table}");
    assert!(lines[1].contains("snapshot") && lines[1].contains(&mesh.hello.agent_id), "{table}");
    assert!(lines[2].contains("end_of_snapshot"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_registry_health_and_counts() {
    let mesh = Mesh::start().await;
    let table = ok(mesh.run(&["status", "--skip-gateway"]).await).stdout;
    assert!(table.contains("serving"), "{table}");
    assert!(table.contains("2 (healthy 2, degraded 0, expired 0)"), "{table}");

    let json = ok(mesh.run(&["status", "--skip-gateway", "-o", "json"]).await).json();
    let registry = &json["registry"];
    assert_eq!(registry["reachable"], true);
    assert_eq!(registry["health"], "serving");
    assert_eq!(registry["agents"]["total"], 2);
    assert_eq!(registry["agents"]["healthy"], 2);
    assert_eq!(registry["capabilities"], 2);
    assert!(registry["revision"].as_u64().unwrap() >= 2, "{json}");
    assert_eq!(json["gateway"], Value::Null);

    // No gateway where --gateway points: the report is printed, exit 3.
    let gateway = format!("http://{}/mcp", closed_port());
    let down = mesh.run(&["status", "--gateway", &gateway, "-o", "json"]).await;
    let message = fails(&down, 3);
    assert!(message.contains("cannot reach the gateway"), "{message}");
    assert_eq!(down.json()["gateway"]["reachable"], false);
    assert_eq!(down.json()["registry"]["reachable"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_is_exit_3_with_one_line() {
    let nowhere = closed_port();
    for args in [
        vec!["agents"],
        vec!["agents", "-o", "json"],
        vec!["agent", "hello-00000000"],
        vec!["resolve", "date_service"],
        vec!["watch", "--limit", "1"],
        vec!["status", "--skip-gateway"],
    ] {
        let mut all = args.clone();
        all.extend(["--registry", &nowhere]);
        let run = cli(&all).await;
        let message = fails(&run, 3);
        assert!(
            message.starts_with(&format!("switchboard: cannot reach the registry at {nowhere}")),
            "{args:?}: {message}"
        );
    }
    // The address also comes from SWITCHBOARD_REGISTRY.
    let mut command = cli_command(&["agents"]);
    command.env("SWITCHBOARD_REGISTRY", &nowhere);
    let output = command.output().await.unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_goes_through_the_gateway() {
    if let Some(reason) = gateway_missing().await {
        eprintln!("SKIPPED call_goes_through_the_gateway: GATEWAY NOT BUILT YET ({reason})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let up = SwitchboardProcess::up(dir.path());
    let registry = up.addr("registry-grpc").to_string();
    let gateway = format!("http://{}/mcp", up.addr("gateway"));
    let _date = AgentProcess::spawn("date-service", &registry);
    let _hello = AgentProcess::spawn("hello", &registry);
    let call = |tool: &'static str, args: &'static str, json: bool| {
        let gateway = gateway.clone();
        async move {
            let mut all = vec!["call", tool, "--args", args, "--gateway", &gateway];
            if json {
                all.extend(["-o", "json"]);
            }
            cli(&all).await
        }
    };

    // Routed once the gateway's table has the agents.
    let text = eventually("greet routed by the gateway", DEADLINE, || async {
        let run = call("greet", r#"{"name": "Ada"}"#, false).await;
        (run.code == 0).then_some(run.stdout)
    })
    .await;
    assert!(text.starts_with("Hello, Ada! Today is 20"), "{text}");
    let json = ok(call("get_date", "{}", true).await).json();
    let date = json["content"][0]["text"].as_str().unwrap();
    assert_eq!(date.len(), 10, "{json}");
    assert_ne!(json["isError"], true, "{json}");

    // Failures and their codes.
    let unknown = call("teleport", "{}", false).await;
    fails(&unknown, 4);
    let bad_json = call("greet", "{name", false).await;
    assert!(fails(&bad_json, 2).contains("--args"), "{bad_json:#?}");
    let missing_argument = call("greet", "{}", false).await;
    assert_eq!(missing_argument.code, 1, "{missing_argument:#?}");
    let nowhere = format!("http://{}/mcp", closed_port());
    let down = cli(&["call", "greet", "--args", "{}", "--gateway", &nowhere]).await;
    assert!(fails(&down, 3).contains("cannot reach the gateway"), "{down:#?}");

    // `status` sees both halves of `up`.
    let json =
        ok(cli(&["status", "--registry", &registry, "--gateway", &gateway, "-o", "json"]).await)
            .json();
    assert_eq!(json["registry"]["health"], "serving");
    assert_eq!(json["gateway"]["ready"], true, "{json}");
    let table = ok(cli(&["status", "--registry", &registry, "--gateway", &gateway]).await).stdout;
    let readyz = table.lines().find(|l| l.contains("/readyz:")).expect("readyz line");
    assert!(readyz.ends_with("200 ok"), "{table}");
}
