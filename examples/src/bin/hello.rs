//! The `hello` example agent (see `switchboard_examples::hello`).

use std::process::ExitCode;

use switchboard_agent::Agent;

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = match switchboard_agent::telemetry::init("hello", env!("CARGO_PKG_VERSION")) {
        Ok(telemetry) => telemetry,
        Err(error) => return switchboard_examples::exit_status("hello", Err(error)),
    };
    let agent = Agent::new("hello").version(env!("CARGO_PKG_VERSION"));
    let result = match switchboard_examples::hello::start(agent).await {
        Ok(running) => running.serve_until_signal().await,
        Err(error) => Err(error),
    };
    switchboard_examples::exit_status("hello", result)
}
