//! The `file-agent` reference agent (see `switchboard_examples::file_agent`).

use clap::Parser as _;
use switchboard_examples::file_agent::{self, FileAgentConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = FileAgentConfig::parse();
    switchboard_examples::run_main("file-agent", |agent| file_agent::start(agent, config)).await
}
