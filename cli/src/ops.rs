//! Operator commands: `agents`, `agent`, `resolve`, `watch`, `token`,
//! `whoami` (gRPC to the registry), `call` (MCP through the gateway) and
//! `status` (both). Every command that dials the registry sends the token of
//! `--token`, `--token-file` or `SWITCHBOARD_TOKEN`.
//!
//! Every command prints a human table by default and one JSON document with
//! `--output json` (`watch`: one JSON object per line). Failures print one
//! line on stderr and exit with a code scripts can rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | the operation failed (a tool reported `isError`, a call failed, not ready) |
//! | 2 | usage or configuration mistake (bad flag, bad JSON, invalid argument) |
//! | 3 | the registry or the gateway is unreachable |
//! | 4 | not found (agent, tool, or no provider for a capability) |
//! | 5 | the registry refused the credentials, or the role may not do this |

mod agent;
mod agents;
mod call;
mod common;
mod render;
mod resolve;
mod status;
pub(crate) mod table;
mod token;
mod watch;
mod whoami;

use clap::Subcommand;

/// A failed operator command: the exit code scripts rely on, and the one-line
/// message printed on stderr.
#[derive(Debug)]
pub struct ExitCode(pub u8, pub String);

impl ExitCode {
    /// The operation failed.
    pub const FAILED: u8 = 1;
    /// A usage or configuration mistake.
    pub const USAGE: u8 = 2;
    /// The registry or the gateway cannot be reached.
    pub const UNREACHABLE: u8 = 3;
    /// The thing asked for does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// Unauthenticated, or not allowed.
    pub const DENIED: u8 = 5;

    /// An error carrying `code` and `message`.
    pub fn error(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(ExitCode(code, message.into()))
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitCode {}

/// The operator subcommands.
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// List agents: id, name, status, tools, last heartbeat, endpoint.
    Agents(agents::AgentsArgs),
    /// Show one agent with its tools and resolved dependencies.
    Agent(agent::AgentArgs),
    /// Who would serve a capability now, and why (every candidate explained).
    Resolve(resolve::ResolveArgs),
    /// Stream registry changes, one line per event, until ctrl-c (or --limit).
    Watch(watch::WatchArgs),
    /// Call a tool through the gateway and print its result.
    Call(call::CallArgs),
    /// Registry health, revision and agent counts; gateway liveness and readiness.
    Status(status::StatusArgs),
    /// Registry tokens (admin): create, list, revoke.
    Token(token::TokenCmd),
    /// The identity and role the registry sees for your token.
    Whoami(whoami::WhoamiArgs),
}

/// Runs an operator command.
pub async fn run(command: OpsCommand) -> anyhow::Result<()> {
    match command {
        OpsCommand::Agents(args) => agents::run(args).await,
        OpsCommand::Agent(args) => agent::run(args).await,
        OpsCommand::Resolve(args) => resolve::run(args).await,
        OpsCommand::Watch(args) => watch::run(args).await,
        OpsCommand::Call(args) => call::run(args).await,
        OpsCommand::Status(args) => status::run(args).await,
        OpsCommand::Token(command) => token::run(command).await,
        OpsCommand::Whoami(args) => whoami::run(args).await,
    }
}
