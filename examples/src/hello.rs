//! `hello`: one tool, `greet`, which depends on `date_service >=1.0` and
//! still answers (without a date) when no date service is around.

use rmcp::{handler::server::wrapper::Parameters, schemars, tool, tool_router};
use switchboard_agent::{Agent, AgentError, Dependency, RunningAgent};

/// Arguments of `greet`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct GreetArgs {
    /// Who to greet.
    pub name: String,
}

/// The hello agent's tools and their dependency.
#[derive(Clone)]
pub struct Hello {
    date: Dependency,
}

#[tool_router(server_handler)]
impl Hello {
    #[tool(description = "Greet someone, with today's date from the mesh")]
    async fn greet(&self, Parameters(args): Parameters<GreetArgs>) -> String {
        match self.date.call_text(serde_json::json!({})).await {
            Ok(date) => format!("Hello, {}! Today is {date}.", args.name),
            Err(error) => format!("Hello, {}! (no date today: {error})", args.name),
        }
    }
}

/// Starts hello as `agent` and registers it.
pub async fn start(agent: Agent) -> Result<RunningAgent, AgentError> {
    let date = Dependency::new("date_service", ">=1.0");
    agent
        .tool("greet", |t| t.capability("greeting").depends_on(&date))
        .start(Hello { date }, Hello::tool_router())
        .await
}
