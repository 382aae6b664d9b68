//! Telemetry for every long-running command, set up in one place
//! (`switchboard-telemetry`): logs to stderr (`SWITCHBOARD_LOG` filter,
//! `SWITCHBOARD_LOG_FORMAT=plain|json`; stdout carries only the
//! machine-readable `LISTEN ...` lines) and, when a collector is configured
//! (`--otlp-endpoint` / `OTEL_EXPORTER_OTLP_ENDPOINT`), traces over OTLP/gRPC.

use switchboard_telemetry::{Telemetry, TelemetryConfig, TelemetryError};

use crate::settings::{ConfigError, TelemetryArgs};

/// Installs logging and trace export for a process serving as `service`
/// (its default `service.name`). Keep the returned guard until the command
/// ends: dropping it flushes the last spans.
pub fn init(service: &str, args: &TelemetryArgs) -> anyhow::Result<Telemetry> {
    let config = TelemetryConfig::from_env(service, env!("CARGO_PKG_VERSION"))
        .map_err(ConfigError)?
        .with_otlp_endpoint(args.otlp_endpoint.clone())
        .with_service_name(args.service_name.clone());
    switchboard_telemetry::init(&config).map_err(|error| match error {
        // A bad filter or endpoint is a configuration mistake (exit code 2).
        TelemetryError::Filter { .. } | TelemetryError::Exporter { .. } => {
            ConfigError(error.to_string()).into()
        }
        other => other.into(),
    })
}
