//! Switchboard's one telemetry setup, shared by the registry, the gateway and
//! every agent built with the SDK.
//!
//! - **Logs** go to stderr, filtered by `SWITCHBOARD_LOG` (`EnvFilter`
//!   syntax), as plain text or — with `SWITCHBOARD_LOG_FORMAT=json` — one
//!   JSON object per line carrying `trace_id`/`span_id` when a span is active.
//! - **Traces** are off by default. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   the `--otlp-endpoint` flag) spans are exported over OTLP/gRPC in
//!   batches, tagged `service.name` (`OTEL_SERVICE_NAME`), `service.version`
//!   and `service.instance.id`.
//! - **Export never slows serving**: finished spans go into a bounded queue
//!   (`OTEL_BSP_MAX_QUEUE_SIZE`) drained by a background thread; when the
//!   collector is slow or gone the queue fills and new spans are dropped and
//!   counted ([`register_metrics`]), and each export is abandoned after
//!   `OTEL_EXPORTER_OTLP_TIMEOUT`.
//! - **Propagation** is W3C Trace Context ([`propagation`]); [`grpc`] traces
//!   tonic servers and [`mcp`] (feature `mcp`) traces MCP tool calls.
//! - **Metrics**: [`render_metrics`] is every component's `/metrics` text:
//!   its own registry plus the process metrics (`process_cpu_seconds_total`,
//!   `process_resident_memory_bytes`, `process_open_fds`) and
//!   `switchboard_insecure_listener` ([`exposure`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), switchboard_telemetry::TelemetryError> {
//! let config = switchboard_telemetry::TelemetryConfig::from_env("my-agent", "1.0.0")
//!     .map_err(|message| switchboard_telemetry::TelemetryError::Install(message))?;
//! let _telemetry = switchboard_telemetry::init(&config)?;
//! tracing::info!("spans and logs are set up");
//! # Ok(())
//! # }
//! ```

pub mod audit;
mod config;
mod export;
pub mod exposure;
pub mod grpc;
mod json;
#[cfg(feature = "mcp")]
pub mod mcp;
mod process;
pub mod propagation;
mod setup;
mod stats;

pub use config::{DEFAULT_LOG_FILTER, LogFormat, TelemetryConfig};
pub use json::{JsonFormat, json_fields};
pub use process::render_metrics;
pub use setup::{Telemetry, TelemetryError, init};
pub use stats::{ExportCounts, export_counts, register_metrics};
