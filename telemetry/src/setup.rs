//! Installing the process-wide subscriber: a log layer (plain or JSON,
//! filtered by `SWITCHBOARD_LOG`) and, when a collector is configured, an
//! OpenTelemetry layer exporting spans over OTLP/gRPC.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::export::{Bounded, Counted};
use crate::json::{JsonFormat, json_fields};
use crate::{LogFormat, TelemetryConfig};

/// How long shutting down may wait for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Crates whose own spans never go to the collector: transport internals
/// (and the exporter itself, which would otherwise trace its own exports).
const UNEXPORTED_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "tower_http",
    "reqwest",
    "rmcp",
    "sled",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `SWITCHBOARD_LOG` does not parse.
    #[error("SWITCHBOARD_LOG: bad filter {filter:?}: {message}")]
    Filter {
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        message: String,
    },
    /// The OTLP exporter could not be built (bad endpoint…).
    #[error("OTLP exporter for {endpoint:?}: {message}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// Trace export needs a Tokio runtime to run its gRPC client on.
    #[error("trace export must be set up from inside a Tokio runtime")]
    NoRuntime,
    /// A global subscriber was installed already.
    #[error("cannot install the logger: {0}")]
    Install(String),
    /// A listener on a non-loopback address lacks TLS or auth, and the
    /// operator did not accept that (see [`crate::exposure`]).
    #[error(
        "{listener}: refusing to listen on {addr} without {missing}: anyone who can reach it \
         could register, change or remove agents; bind a loopback address (127.0.0.1), enable \
         TLS (--tls-cert FILE --tls-key FILE) and auth (--auth), or accept the risk with \
         --insecure-allow-plaintext (SWITCHBOARD_INSECURE_ALLOW_PLAINTEXT=1)"
    )]
    InsecureListener {
        /// Which listener (`grpc`, `admin`, `gateway`, `agent`, `bridge`).
        listener: String,
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What is missing: `TLS and auth`, `TLS` or `auth`.
        missing: &'static str,
    },
}

/// The installed telemetry. Keep it for the life of the process: dropping
/// it flushes the spans still queued (for at most a few seconds) and stops
/// exporting.
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// True when spans are exported to a collector.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else { return };
        // On its own thread: the export may need this thread's runtime to
        // make progress, and it must never hold the process up for long.
        let flushing = std::thread::spawn(move || {
            let _ = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
        });
        let _ = flushing.join();
    }
}

/// Installs logging and, when `config.otlp_endpoint` is set, trace export.
/// Call once, early, from inside the Tokio runtime when exporting.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| TelemetryError::Filter {
        filter: config.log_filter.clone(),
        message: e.to_string(),
    })?;
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let json = JsonFormat::new();
    let logs: BoxedLayer = match config.log_format {
        LogFormat::Plain => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(json_fields())
            .event_format(json.clone())
            .with_filter(filter)
            .boxed(),
    };
    layers.push(logs);
    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(config, endpoint)?),
        None => None,
    };
    if let Some(provider) = &provider {
        let tracer = provider.tracer("switchboard");
        let spans = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(exported_spans())
            .boxed();
        layers.push(spans);
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| TelemetryError::Install(e.to_string()))?;
    tracing::dispatcher::get_default(|dispatch| json.attach(dispatch));
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(
            %endpoint,
            service_name = %config.service_name,
            "exporting traces over OTLP/gRPC"
        );
    }
    Ok(Telemetry { provider })
}

/// Spans at INFO and above, minus transport internals.
fn exported_spans() -> Targets {
    UNEXPORTED_TARGETS
        .iter()
        .fold(Targets::new().with_default(LevelFilter::INFO), |targets, target| {
            targets.with_target(*target, LevelFilter::OFF)
        })
}

fn tracer_provider(
    config: &TelemetryConfig,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(config.export_timeout)
        .build()
        .map_err(|e| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            message: e.to_string(),
        })?;
    let exporter = Counted::new(exporter, config.export_timeout, runtime);
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes([
            KeyValue::new("service.version", config.service_version.clone()),
            KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(Bounded::new(exporter, config.max_queue_size))
        .with_resource(resource)
        .build())
}
