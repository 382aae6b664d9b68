//! The example agents, as a library so `switchboard up --demo` can run them
//! in-process; each binary in `src/bin/` is a thin `main` around one module.

pub mod command_agent;
pub mod confine;
pub mod date_service;
pub mod error;
pub mod everything;
pub mod file_agent;
pub mod hello;

pub use error::ToolError;

/// The whole `main` of an example binary: telemetry, the agent named `name`
/// (at this crate's version) started by `start`, served until SIGTERM or
/// ctrl-c, and the exit status.
pub async fn run_main<F, Fut>(name: &str, start: F) -> std::process::ExitCode
where
    F: FnOnce(switchboard_agent::Agent) -> Fut,
    Fut: std::future::Future<
            Output = Result<switchboard_agent::RunningAgent, switchboard_agent::AgentError>,
        >,
{
    let _telemetry = match switchboard_agent::telemetry::init(name, env!("CARGO_PKG_VERSION")) {
        Ok(telemetry) => telemetry,
        Err(error) => return exit_status(name, Err(error)),
    };
    let agent = switchboard_agent::Agent::new(name).version(env!("CARGO_PKG_VERSION"));
    let result = match start(agent).await {
        Ok(running) => running.serve_until_signal().await,
        Err(error) => Err(error),
    };
    exit_status(name, result)
}

/// Exit status of an example's `main`: the error in words on stderr, not
/// its `Debug` form.
pub fn exit_status(
    name: &str,
    result: Result<(), switchboard_agent::AgentError>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
