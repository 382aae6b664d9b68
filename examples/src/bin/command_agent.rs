//! The `command-agent` reference agent (see `switchboard_examples::command_agent`).

use clap::Parser as _;
use switchboard_examples::command_agent::{self, CommandAgentFlags};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match CommandAgentFlags::parse().config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("command-agent: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    switchboard_examples::run_main("command-agent", |agent| command_agent::start(agent, config))
        .await
}
