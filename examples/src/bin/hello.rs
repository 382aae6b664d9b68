//! The `hello` example agent (see `switchboard_examples::hello`).

use std::process::ExitCode;

use switchboard_agent::Agent;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let agent = Agent::new("hello").version(env!("CARGO_PKG_VERSION"));
    let result = match switchboard_examples::hello::start(agent).await {
        Ok(running) => running.serve_until_signal().await,
        Err(error) => Err(error),
    };
    switchboard_examples::exit_status("hello", result)
}
