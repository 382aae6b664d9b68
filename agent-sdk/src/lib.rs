//! Rust SDK for Switchboard agents.
//!
//! Write an ordinary [`rmcp`] server: tools, resources, resource templates,
//! prompts, completion, logging, whatever your [`rmcp::ServerHandler`]
//! implements. The SDK layers the mesh on its tools: per tool a capability,
//! version, tags and dependencies ([`MeshTool`]). It serves the handler over
//! MCP Streamable HTTP (both protocol eras), registers everything it serves
//! (with the full MCP definitions, its capabilities and `serverInfo`) in one
//! call, keeps the heartbeat stream, and swaps pushed wiring into the
//! [`Dependency`] proxies your tools call. A caller's deadline
//! ([`deadline`]) shortens those calls so a tool answers before its caller
//! gives up.
//!
//! ```no_run
//! use rmcp::{handler::server::wrapper::Parameters, schemars, tool, tool_router};
//! use switchboard_agent::{Agent, Dependency};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct GreetArgs { name: String }
//!
//! #[derive(Clone)]
//! struct Hello { date: Dependency }
//!
//! #[tool_router(server_handler)]
//! impl Hello {
//!     #[tool(description = "Greet someone, with today's date from the mesh")]
//!     async fn greet(&self, Parameters(args): Parameters<GreetArgs>) -> String {
//!         match self.date.call_text(serde_json::json!({})).await {
//!             Ok(date) => format!("Hello, {}! Today is {date}.", args.name),
//!             Err(_) => format!("Hello, {}! (no date service right now)", args.name),
//!         }
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), switchboard_agent::AgentError> {
//!     let date = Dependency::new("date_service", ">=1.0");
//!     Agent::new("hello")
//!         .tool("greet", |t| t.capability("greeting").depends_on(&date))
//!         .serve(Hello { date }, Hello::tool_router())
//!         .await
//! }
//! ```

mod agent;
pub mod deadline;
mod dependency;
mod endpoint;
mod error;
mod health;
mod introspect;
mod mesh;
mod mesh_tool;
mod metrics;
mod server;
pub mod telemetry;
mod traced;

pub use agent::{Agent, RunningAgent};
pub use dependency::{DEFAULT_DEPENDENCY_TIMEOUT, Dependency, DependencyError, text_of};
pub use endpoint::serve_endpoint;
pub use error::AgentError;
pub use health::{DEFAULT_CHECK_INTERVAL, DEFAULT_CHECK_TIMEOUT, HealthCheck};
pub use mesh_tool::MeshTool;
pub use traced::Traced;
