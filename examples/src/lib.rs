//! The example agents, as a library so `switchboard up --demo` can run them
//! in-process; each binary in `src/bin/` is a thin `main` around one module.

pub mod date_service;
pub mod everything;
pub mod hello;

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
