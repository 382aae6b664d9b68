//! `date-service`: provides the capability `date_service` (v1.0.0) with one
//! tool, `get_date`, answering today's date (UTC, ISO 8601).

use rmcp::{tool, tool_router};
use switchboard_agent::{Agent, AgentError, RunningAgent};

/// The date service's tools.
#[derive(Clone)]
pub struct DateService;

#[tool_router(server_handler)]
impl DateService {
    #[tool(description = "Today's date (UTC), as YYYY-MM-DD")]
    async fn get_date(&self) -> String {
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    }
}

/// Starts the date service as `agent` and registers it.
pub async fn start(agent: Agent) -> Result<RunningAgent, AgentError> {
    agent
        .tool("get_date", |t| t.capability("date_service").version("1.0.0"))
        .start(DateService, DateService::tool_router())
        .await
}
