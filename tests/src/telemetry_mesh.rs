//! The demo mesh as four real processes — `switchboard registry`,
//! `switchboard gateway`, `date-service`, `hello` — each started with the
//! same extra environment (an OTLP endpoint, batch settings…).

use std::time::Duration;

use crate::{AgentProcess, SwitchboardProcess, TestRegistry};

/// The demo mesh, every process with the same environment.
pub struct TracedMesh {
    pub registry: TestRegistry,
    pub gateway: SwitchboardProcess,
    pub date: AgentProcess,
    pub hello: AgentProcess,
}

impl TracedMesh {
    /// Starts registry, gateway, date-service and hello with `env`.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let registry = TestRegistry::builder().child_process(&[]).env(env).start().await;
        let grpc = registry.addr.to_string();
        let gateway = SwitchboardProcess::spawn_with_env(
            &["gateway", "--gateway-addr", "127.0.0.1:0", "--registry", &grpc],
            env,
            &["gateway"],
        );
        let agent_env: Vec<(&str, &str)> =
            env.iter().copied().chain([("SWITCHBOARD_REGISTRY", grpc.as_str())]).collect();
        let date = AgentProcess::spawn_with("date-service", &agent_env);
        let hello = AgentProcess::spawn_with("hello", &agent_env);
        Self { registry, gateway, date, hello }
    }

    /// The gateway's MCP endpoint.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/mcp", self.gateway.addr("gateway"))
    }

    /// `/metrics` of the registry admin port, the gateway and both agents, in that order.
    pub fn metrics_urls(&self) -> Vec<String> {
        vec![
            format!("http://{}/metrics", self.registry.admin_addr),
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
