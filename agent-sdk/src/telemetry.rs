//! Telemetry for agents: the same setup as the registry and the gateway.
//!
//! Call [`init`] once at the start of `main` (inside the Tokio runtime) and
//! keep the guard. Logs follow `SWITCHBOARD_LOG` / `SWITCHBOARD_LOG_FORMAT`;
//! traces are exported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, with
//! `service.name` from `OTEL_SERVICE_NAME` or `service_name`.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), switchboard_agent::AgentError> {
//!     let _telemetry = switchboard_agent::telemetry::init("hello", "1.0.0")?;
//!     // … Agent::new("hello")…serve(…).await
//!     Ok(())
//! }
//! ```

pub use switchboard_telemetry::{Telemetry, TelemetryConfig};

use crate::AgentError;

/// Installs logging and (when configured) trace export for an agent
/// serving as `service_name` at `service_version`.
pub fn init(service_name: &str, service_version: &str) -> Result<Telemetry, AgentError> {
    let config =
        TelemetryConfig::from_env(service_name, service_version).map_err(AgentError::Config)?;
    init_with(&config)
}

/// [`init`] with a configuration built in code.
pub fn init_with(config: &TelemetryConfig) -> Result<Telemetry, AgentError> {
    Ok(switchboard_telemetry::init(config)?)
}
