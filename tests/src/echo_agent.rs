//! A tiny in-test agent (the real SDK): one tool, `whoami`, answering the
//! identity it was started with, so a test can tell which agent or replica
//! served a call.

use std::sync::Arc;

use rmcp::{tool, tool_router};
use switchboard_agent::{Agent, RunningAgent};

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
