//! The demo mesh as four real processes — `switchboard registry`,
//! `switchboard gateway`, `date-service`, `hello` — each started with the
//! same extra environment (an OTLP endpoint, batch settings…).

use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{AgentProcess, RegistryProcess, switchboard_bin};

/// The demo mesh, every process with the same environment.
pub struct TracedMesh {
    pub registry: RegistryProcess,
    pub gateway: RegistryProcess,
    pub date: AgentProcess,
    pub hello: AgentProcess,
    _dir: TempDir,
}

impl TracedMesh {
    /// Starts registry, gateway, date-service and hello with `env`.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let data = dir.path().to_str().expect("utf-8 path").to_owned();
        let registry = spawn_switchboard(
            &[
                "registry",
                "--data-dir",
                &data,
                "--registry-addr",
                "127.0.0.1:0",
                "--registry-admin-addr",
                "127.0.0.1:0",
            ],
            env,
            &["registry-grpc", "registry-admin"],
        );
        let grpc = registry.grpc_addr();
        let gateway = spawn_switchboard(
            &["gateway", "--gateway-addr", "127.0.0.1:0", "--registry", &grpc],
            env,
            &["gateway"],
        );
        let agent_env: Vec<(&str, &str)> =
            env.iter().copied().chain([("SWITCHBOARD_REGISTRY", grpc.as_str())]).collect();
        let date = AgentProcess::spawn_with("date-service", &agent_env);
        let hello = AgentProcess::spawn_with("hello", &agent_env);
        Self { registry, gateway, date, hello, _dir: dir }
    }

    /// The gateway's MCP endpoint.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/mcp", self.gateway.addr("gateway"))
    }

    /// `/metrics` of the registry admin port, the gateway and both agents, in that order.
    pub fn metrics_urls(&self) -> Vec<String> {
        vec![
            format!("http://{}/metrics", self.registry.addr("registry-admin")),
            format!("http://{}/metrics", self.gateway.addr("gateway")),
            format!("http://{}/metrics", self.date.mcp_addr),
            format!("http://{}/metrics", self.hello.mcp_addr),
        ]
    }

    /// Waits until `greet` through the gateway answers with a date (the
    /// gateway routes it and hello's dependency is wired).
    pub async fn wait_until_wired(&self) {
        let client = crate::McpClient::new(&self.gateway_url());
        crate::eventually(
            "greet through the gateway, with a date",
            Duration::from_secs(30),
            || {
                let client = &client;
                async move {
                    let result =
                        client.call("greet", serde_json::json!({"name": "Ada"})).await.ok()?;
                    crate::mcp::text(&result).contains("Today is ").then_some(())
                }
            },
        )
        .await;
    }
}

/// Runs `switchboard args` with `env` and waits for the `LISTEN` lines named.
pub fn spawn_switchboard(
    args: &[&str],
    env: &[(&str, &str)],
    wait_for: &[&str],
) -> RegistryProcess {
    let mut command = Command::new(switchboard_bin());
    command.args(args).envs(env.iter().copied());
    let (child, lines) = crate::process::spawn_with_lines(command);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut listeners = Vec::new();
    while !wait_for.iter().all(|name| listeners.iter().any(|(n, _)| n == name)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("switchboard {args:?} did not announce {wait_for:?}"));
        let mut words = line.split_whitespace();
        if let (Some("LISTEN"), Some(name), Some(addr)) = (words.next(), words.next(), words.next())
        {
            listeners.push((name.to_owned(), addr.parse().expect("listen address")));
        }
    }
    RegistryProcess { child, listeners }
}
