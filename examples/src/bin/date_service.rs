//! The `date-service` example agent (see `switchboard_examples::date_service`).

use std::process::ExitCode;

use switchboard_agent::Agent;

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry =
        match switchboard_agent::telemetry::init("date-service", env!("CARGO_PKG_VERSION")) {
            Ok(telemetry) => telemetry,
            Err(error) => return switchboard_examples::exit_status("date-service", Err(error)),
        };
    let agent = Agent::new("date-service").version(env!("CARGO_PKG_VERSION"));
    let result = match switchboard_examples::date_service::start(agent).await {
        Ok(running) => running.serve_until_signal().await,
        Err(error) => Err(error),
    };
    switchboard_examples::exit_status("date-service", result)
}
