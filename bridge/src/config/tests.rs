use std::time::Duration;

use super::*;

fn error_of(text: &str) -> String {
    match BridgeConfig::parse(text, "bridge.toml") {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn reads_servers_with_tools_and_defaults() {
    let config = BridgeConfig::parse(
        r#"
[servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
env = { GREETING = "hi", TOKEN = { file = "/run/token" } }
max_restarts = 2
restart_window = "30s"

[servers.files.tools.read_text_file]
capability = "files.read"
version = "1.2.0"
tags = ["local"]
dependencies = [{ capability = "audit", version = ">=1, <2 || ^3", tags = ["+eu"] }]

[servers.remote]
url = "http://mesh.internal:9000/mcp"
"#,
        "bridge.toml",
    )
    .unwrap();
    assert_eq!(config.servers.len(), 2);
    let files = &config.servers[0];
    assert_eq!(files.name, "files");
    assert_eq!(files.restart.max_restarts, 2);
    assert_eq!(files.restart.window, Duration::from_secs(30));
    let Source::Command(spec) = &files.source else { panic!("not a command") };
    assert_eq!(spec.program, "npx");
    assert_eq!(spec.env.len(), 2);
    let tool = &files.tools["read_text_file"];
    assert_eq!(tool.capability.as_deref(), Some("files.read"));
    assert_eq!(tool.tags, ["local"]);
    assert_eq!(tool.dependencies[0].capability, "audit");
    assert!(matches!(&config.servers[1].source, Source::Url(url) if url.ends_with("/mcp")));
    assert_eq!(config.servers[1].restart, RestartPolicy::default());
}

#[test]
fn refuses_mistakes_naming_the_line() {
    let unknown = error_of("[servers.files]\ncommand = \"x\"\ncomand = \"y\"\n");
    assert!(unknown.contains("bridge.toml:3") && unknown.contains("comand"), "{unknown}");

    let capability = error_of(
        "[servers.files]\ncommand = \"x\"\n\n[servers.files.tools.read]\ncapability = \"Files Read\"\n",
    );
    assert!(capability.contains("bridge.toml:5"), "{capability}");
    assert!(capability.contains("bad capability \"Files Read\""), "{capability}");

    let missing = error_of("[servers.files]\nargs = [\"a\"]\n");
    assert!(missing.contains("bridge.toml:1") && missing.contains("missing command"), "{missing}");

    let version =
        error_of("[servers.f]\ncommand = \"x\"\n[servers.f.tools.t]\nversion = \"1.x\"\n");
    assert!(version.contains("bridge.toml:4") && version.contains("bad version"), "{version}");

    let name = error_of("[servers.Files]\ncommand = \"x\"\n");
    assert!(name.contains("bad name \"Files\""), "{name}");

    let both = error_of("[servers.f]\ncommand = \"x\"\nurl = \"http://h/mcp\"\n");
    assert!(both.contains("not both"), "{both}");

    let duration = error_of("[servers.f]\ncommand = \"x\"\nrestart_window = \"soon\"\n");
    assert!(
        duration.contains("bridge.toml:3") && duration.contains("restart_window"),
        "{duration}"
    );

    assert!(error_of("").contains("no servers"));
}

#[test]
fn reads_the_mcp_servers_json_of_existing_clients() {
    let config = BridgeConfig::parse(
        r#"{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
    "old": {"command": "x", "disabled": true},
    "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp"}
  }
}"#,
        "claude_desktop_config.json",
    )
    .unwrap();
    let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["filesystem", "remote", "time"]);

    let unknown = BridgeConfig::parse(
        "{\n \"mcpServers\": {\n  \"x\": {\"command\": \"a\", \"argz\": []}\n }\n}",
        "c.json",
    )
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("c.json:3") && unknown.contains("argz"), "{unknown}");
}

#[test]
fn one_command_takes_tools_from_a_file_and_a_name_from_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, "[tools.read_text_file]\ncapability = \"files.read\"\n").unwrap();
    let command: Vec<String> =
        ["npx", "-y", "@modelcontextprotocol/server-filesystem@2026.8.31", "/tmp"]
            .map(String::from)
            .to_vec();
    let config = BridgeConfig::single(None, &command, None, Some(&path)).unwrap();
    assert_eq!(config.servers[0].name, "server-filesystem");
    assert!(config.servers[0].tools.contains_key("read_text_file"));

    let python = ["python3", "-m", "mcp_server_time"].map(String::from).to_vec();
    assert_eq!(
        BridgeConfig::single(None, &python, None, None).unwrap().servers[0].name,
        "mcp_server_time"
    );

    let url = BridgeConfig::single(None, &[], Some("http://Weather.example:80/mcp"), None).unwrap();
    assert_eq!(url.servers[0].name, "weather.example");
    assert!(BridgeConfig::single(None, &[], None, None).is_err());
    assert!(BridgeConfig::single(None, &[], Some("ftp://x"), None).is_err());
}

#[test]
fn session_mode_defaults_to_shared_and_reads_per_client() {
    let shared = BridgeConfig::parse("[servers.a]\ncommand = \"x\"\n", "bridge.toml").unwrap();
    assert_eq!(shared.servers[0].session, SessionMode::Shared);
    assert_eq!(shared.servers[0].max_sessions, DEFAULT_MAX_SESSIONS);
    let text = "[servers.a]\ncommand = \"x\"\nsession = \"per-client\"\nmax_sessions = 3\n";
    let per_client = BridgeConfig::parse(text, "bridge.toml").unwrap();
    assert_eq!(per_client.servers[0].session, SessionMode::PerClient);
    assert_eq!(per_client.servers[0].max_sessions, 3);
}

#[test]
fn bad_session_settings_name_the_line_and_the_setting() {
    let bad = error_of("[servers.a]\ncommand = \"x\"\nsession = \"each\"\n");
    assert!(bad.contains("bridge.toml:3") && bad.contains("bad session \"each\""), "{bad}");
    let zero = error_of("[servers.a]\ncommand = \"x\"\nmax_sessions = 0\n");
    assert!(zero.contains("max_sessions must be at least 1"), "{zero}");
    let remote = error_of("[servers.a]\nurl = \"http://h/mcp\"\nsession = \"per-client\"\n");
    assert!(remote.contains("applies to a command"), "{remote}");
}
