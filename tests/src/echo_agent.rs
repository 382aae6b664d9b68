//! Tiny in-test agents (the real SDK): `whoami`, answering the identity it
//! was started with, so a test can tell which agent or replica served a
//! call; and `relay`, a dependent that calls whoever provides `identity`.

use std::sync::Arc;

use rmcp::{tool, tool_router};
use serde_json::json;
use switchboard_agent::{Agent, Dependency, RunningAgent};

/// The echo agent's handler.
#[derive(Clone)]
pub struct Echo {
    identity: Arc<str>,
}

#[tool_router(server_handler)]
impl Echo {
    #[tool(description = "The identity of the agent that answers")]
    async fn whoami(&self) -> String {
        self.identity.to_string()
    }
}

/// Starts `agent` (name, registry, listen address already set) serving
/// `whoami` → `identity`, and registers it.
pub async fn start_echo(agent: Agent, identity: &str) -> RunningAgent {
    agent
        .start(Echo { identity: identity.into() }, Echo::tool_router())
        .await
        .unwrap_or_else(|e| panic!("echo agent {identity}: {e}"))
}

/// `start_echo` for an agent named `name` at `registry` on a free port.
pub async fn echo(registry: &str, name: &str, identity: &str) -> RunningAgent {
    start_echo(Agent::new(name).registry(registry).listen("127.0.0.1:0"), identity).await
}

/// The dependent: `relay` calls whoever provides `identity` and says how it
/// went (`ok: <answer>`, or the failure's metric label and message).
#[derive(Clone)]
pub struct Relay {
    pub identity: Dependency,
}

#[tool_router(server_handler, vis = "pub")]
impl Relay {
    #[tool(description = "Asks the identity capability who answers")]
    async fn relay(&self) -> String {
        match self.identity.call_text(json!({})).await {
            Ok(text) => format!("ok: {text}"),
            Err(error) => format!("{}: {error}", error.metric_label()),
        }
    }
}

/// An echo agent named `provider` whose `whoami` provides the `identity`
/// capability, at `registry` (one address or several).
pub async fn identity_provider(registry: &str, identity: &str) -> RunningAgent {
    let agent = Agent::new("provider")
        .registry(registry)
        .listen("127.0.0.1:0")
        .tool("whoami", |t| t.capability("identity"));
    start_echo(agent, identity).await
}

/// The `relay` dependent of `identity` (>= 1.0), at `registry`.
pub async fn relay(registry: &str) -> RunningAgent {
    let identity = Dependency::new("identity", ">=1.0");
    Agent::new("relay")
        .registry(registry)
        .listen("127.0.0.1:0")
        .tool("relay", |t| t.capability("relaying").depends_on(&identity))
        .start(Relay { identity }, Relay::tool_router())
        .await
        .unwrap_or_else(|e| panic!("relay agent: {e}"))
}
