//! What the telemetry setup needs to know, resolved once at start-up.
//!
//! Binaries build a [`TelemetryConfig`] from the environment with
//! [`TelemetryConfig::from_env`] and let flags override fields; tests build
//! one in code. Nothing here reads the environment after start-up.

use std::time::Duration;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, with `trace_id` and `span_id` when a span is active.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "plain" => Ok(Self::Plain),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?} (want plain or json)")),
        }
    }
}

/// The telemetry settings of one process.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of exported spans (`OTEL_SERVICE_NAME`).
    pub service_name: String,
    /// `service.version` of exported spans.
    pub service_version: String,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`
    /// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`).
    /// `None` turns trace export off (the default).
    pub otlp_endpoint: Option<String>,
    /// Log filter in `EnvFilter` syntax (`SWITCHBOARD_LOG`, else `RUST_LOG`).
    pub log_filter: String,
    /// Log line format (`SWITCHBOARD_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Finished spans waiting for export at most; more are dropped and
    /// counted (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue_size: usize,
    /// Longest one export may take, retries included; then it is abandoned
    /// and counted as a failure (`OTEL_EXPORTER_OTLP_TIMEOUT` in ms, default 10 s).
    pub export_timeout: Duration,
}

/// The default log filter: `info`, minus chatty transport crates.
pub const DEFAULT_LOG_FILTER: &str = "info,h2=warn,hyper=warn,hyper_util=warn,tower=warn,rmcp=warn";

const DEFAULT_QUEUE_SIZE: usize = 2048;
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl TelemetryConfig {
    /// Defaults for `service_name` at `service_version`, export off.
    pub fn new(service_name: &str, service_version: &str) -> Self {
        Self {
            service_name: service_name.to_owned(),
            service_version: service_version.to_owned(),
            otlp_endpoint: None,
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            log_format: LogFormat::Plain,
            max_queue_size: DEFAULT_QUEUE_SIZE,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
        }
    }

    /// [`TelemetryConfig::new`] overridden by the standard variables
    /// (`OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SDK_DISABLED`,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_EXPORTER_OTLP_TIMEOUT`) and
    /// `SWITCHBOARD_LOG` (else `RUST_LOG`) / `SWITCHBOARD_LOG_FORMAT`.
    pub fn from_env(default_service_name: &str, service_version: &str) -> Result<Self, String> {
        Self::from_lookup(default_service_name, service_version, |key| std::env::var(key).ok())
    }

    /// [`TelemetryConfig::from_env`] with variables from `lookup` (tests).
    pub fn from_lookup(
        default_service_name: &str,
        service_version: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let var = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = Self::new(default_service_name, service_version);
        if let Some(name) = var("OTEL_SERVICE_NAME") {
            config.service_name = name;
        }
        config.otlp_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            config.otlp_endpoint = None;
        }
        if let Some(filter) = var("SWITCHBOARD_LOG").or_else(|| var("RUST_LOG")) {
            config.log_filter = filter;
        }
        if let Some(format) = var("SWITCHBOARD_LOG_FORMAT") {
            config.log_format =
                format.parse().map_err(|e: String| format!("SWITCHBOARD_LOG_FORMAT: {e}"))?;
        }
        if let Some(size) = var("OTEL_BSP_MAX_QUEUE_SIZE") {
            config.max_queue_size = size
                .parse()
                .ok()
                .filter(|size| *size > 0)
                .ok_or_else(|| format!("OTEL_BSP_MAX_QUEUE_SIZE: bad size {size:?}"))?;
        }
        if let Some(millis) = var("OTEL_EXPORTER_OTLP_TIMEOUT") {
            let millis: u64 = millis
                .parse()
                .map_err(|_| format!("OTEL_EXPORTER_OTLP_TIMEOUT: bad milliseconds {millis:?}"))?;
            config.export_timeout = Duration::from_millis(millis);
        }
        Ok(config)
    }

    /// Sets the collector endpoint (`None` or empty: export off).
    pub fn with_otlp_endpoint(mut self, endpoint: Option<String>) -> Self {
        if let Some(endpoint) = endpoint {
            self.otlp_endpoint = Some(endpoint).filter(|e| !e.trim().is_empty());
        }
        self
    }

    /// Sets the service name unless `name` is `None`.
    pub fn with_service_name(mut self, name: Option<String>) -> Self {
        if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
            self.service_name = name;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set() {
        let config = TelemetryConfig::from_lookup("svc", "1.0", lookup(&[])).unwrap();
        assert_eq!(config.otlp_endpoint, None);
        assert_eq!(config.service_name, "svc");
        let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), ("OTEL_SERVICE_NAME", "x")];
        let config = TelemetryConfig::from_lookup("svc", "1.0", lookup(&vars)).unwrap();
        assert_eq!(config.otlp_endpoint.as_deref(), Some("http://c:4317"));
        assert_eq!(config.service_name, "x");
    }

    #[test]
    fn the_traces_endpoint_wins_and_sdk_disabled_turns_export_off() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317"),
        ];
        let config = TelemetryConfig::from_lookup("svc", "1", lookup(&vars)).unwrap();
        assert_eq!(config.otlp_endpoint.as_deref(), Some("http://b:4317"));
        let vars =
            [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"), ("OTEL_SDK_DISABLED", "true")];
        let config = TelemetryConfig::from_lookup("svc", "1", lookup(&vars)).unwrap();
        assert_eq!(config.otlp_endpoint, None);
    }

    #[test]
    fn mistakes_name_the_variable() {
        let error =
            TelemetryConfig::from_lookup("svc", "1", lookup(&[("SWITCHBOARD_LOG_FORMAT", "xml")]))
                .unwrap_err();
        assert!(error.contains("SWITCHBOARD_LOG_FORMAT"), "{error}");
        let error =
            TelemetryConfig::from_lookup("svc", "1", lookup(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")]))
                .unwrap_err();
        assert!(error.contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{error}");
    }

    #[test]
    fn flags_override_the_environment() {
        let vars = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317")];
        let config = TelemetryConfig::from_lookup("svc", "1", lookup(&vars))
            .unwrap()
            .with_otlp_endpoint(Some("http://flag:4317".into()))
            .with_service_name(Some("flagged".into()));
        assert_eq!(config.otlp_endpoint.as_deref(), Some("http://flag:4317"));
        assert_eq!(config.service_name, "flagged");
    }
}
