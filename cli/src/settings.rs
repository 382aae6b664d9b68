//! Configuration: flags > `SWITCHBOARD_*` environment > optional TOML file >
//! defaults (loopback addresses, `./switchboard-data`). Everything is validated before a port is bound,
//! and a mistake names the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use switchboard_registry::RegistryConfig;
use switchboard_telemetry::exposure::{Protection, check_listener};

use crate::credentials::{AuthArgs, TokenArgs};
use crate::duration;

mod access;
mod etcd;

pub use access::AccessOptions;
pub use etcd::EtcdTlsArgs;

use etcd::EtcdChoice;

/// A configuration mistake; nothing was started.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::error::Error for ConfigError {}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

/// Flags of `switchboard registry` and `switchboard up`.
#[derive(Debug, Clone, Args, Default)]
pub struct RegistryArgs {
    /// TOML configuration file (settings named as the flags, with `_`).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded store [default: ./switchboard-data].
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the registry keeps its state: `sled` (embedded, in --data-dir) or
    /// `etcd` (in the cluster at --etcd-endpoints) [default: sled].
    #[arg(long, env = "SWITCHBOARD_STORE")]
    pub store: Option<String>,
    /// etcd client endpoints, comma-separated (`host:port`), with --store etcd.
    #[arg(long, env = "SWITCHBOARD_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Key prefix of the registry's state in etcd [default: /switchboard].
    #[arg(long, env = "SWITCHBOARD_ETCD_PREFIX")]
    pub etcd_prefix: Option<String>,
    /// etcd user name, when etcd has authentication enabled.
    #[arg(long, env = "SWITCHBOARD_ETCD_USER")]
    pub etcd_user: Option<String>,
    /// Password of --etcd-user (prefer the environment variable to the flag).
    #[arg(long, env = "SWITCHBOARD_ETCD_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,
    /// TLS to etcd.
    #[command(flatten)]
    pub etcd_tls: EtcdTlsArgs,
    /// Registry gRPC address [default: 127.0.0.1:7600].
    #[arg(long, env = "SWITCHBOARD_REGISTRY_ADDR")]
    pub registry_addr: Option<String>,
    /// Registry admin HTTP address: /healthz, /readyz, /metrics [default: 127.0.0.1:7601].
    #[arg(long, env = "SWITCHBOARD_REGISTRY_ADMIN_ADDR")]
    pub registry_admin_addr: Option<String>,
    /// How often agents heartbeat [default: 5s].
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<String>,
    /// Silence after which an agent is DEGRADED [default: 15s].
    #[arg(long, env = "SWITCHBOARD_DEGRADED_AFTER")]
    pub degraded_after: Option<String>,
    /// Silence after which an agent is EXPIRED [default: 30s].
    #[arg(long, env = "SWITCHBOARD_EXPIRED_AFTER")]
    pub expired_after: Option<String>,
    /// How long EXPIRED agents are kept for operators [default: 10m].
    #[arg(long, env = "SWITCHBOARD_RETENTION")]
    pub retention: Option<String>,
    /// Events kept for watch replay [default: 10000].
    #[arg(long, env = "SWITCHBOARD_HISTORY_MAX_EVENTS")]
    pub history_max_events: Option<usize>,
    /// Extra `Host` values the dashboard accepts on the admin port, comma-separated
    /// (loopback is always accepted; `*` accepts any, behind a proxy).
    #[arg(long, env = "SWITCHBOARD_REGISTRY_ADMIN_ALLOWED_HOSTS", value_delimiter = ',')]
    pub admin_allowed_hosts: Vec<String>,
    /// Audit log of every control-plane change, one JSON object per line:
    /// off, stdout or a file path (appended to) [default: off].
    #[arg(long, env = "SWITCHBOARD_AUDIT_LOG")]
    pub audit_log: Option<String>,
    /// The dashboard on the admin port (and, with `up`, on the gateway's port).
    #[command(flatten)]
    pub ui: UiArgs,
    /// Non-loopback listeners.
    #[command(flatten)]
    pub exposure: ExposureArgs,
    /// Trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// TLS on the gRPC and admin ports.
    #[command(flatten)]
    pub tls: ServerTlsArgs,
    /// TLS of the process's own connections to the registry (the dashboard;
    /// with `up`, the gateway and the demo agents).
    #[command(flatten)]
    pub client_tls: ClientTlsArgs,
    /// Authentication and roles.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Whether a listener may be on a non-loopback address without TLS and
/// auth: refused unless the operator accepts it, since anyone who reaches
/// such a port can change the mesh.
#[derive(Debug, Clone, Copy, Args, Default)]
pub struct ExposureArgs {
    /// Start even on a non-loopback address without TLS and auth (logged as a warning and
    /// exported as `switchboard_insecure_listener`; see the README's Security section).
    #[arg(
        long,
        env = "SWITCHBOARD_INSECURE_ALLOW_PLAINTEXT",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_allow_plaintext: bool,
}

/// Whether to serve the read-only dashboard at `/ui`: on unless turned off,
/// since it only shows what the gRPC port already tells any client, and only
/// to loopback or configured `Host`s.
#[derive(Debug, Clone, Args, Default)]
pub struct UiArgs {
    /// Serve the read-only dashboard at /ui (the default).
    #[arg(long, overrides_with = "no_ui")]
    pub ui: bool,
    /// Do not serve the dashboard at /ui.
    #[arg(long, env = "SWITCHBOARD_NO_UI", overrides_with = "ui")]
    pub no_ui: bool,
}

/// Trace-export flags, named after the standard OpenTelemetry variables.
#[derive(Debug, Clone, Args, Default)]
pub struct TelemetryArgs {
    /// OTLP/gRPC collector to export traces to, e.g. http://127.0.0.1:4317
    /// [default: none, traces are not exported].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans [default: switchboard-registry,
    /// switchboard-gateway or switchboard].
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub service_name: Option<String>,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    store: Option<String>,
    etcd_endpoints: Option<Vec<String>>,
    etcd_prefix: Option<String>,
    etcd_user: Option<String>,
    etcd_tls_ca: Option<PathBuf>,
    etcd_tls_cert: Option<PathBuf>,
    etcd_tls_key: Option<PathBuf>,
    registry_addr: Option<String>,
    registry_admin_addr: Option<String>,
    heartbeat_interval: Option<String>,
    degraded_after: Option<String>,
    expired_after: Option<String>,
    retention: Option<String>,
    history_max_events: Option<usize>,
    admin_allowed_hosts: Option<Vec<String>>,
    ui: Option<bool>,
    auth: Option<bool>,
    bootstrap_token_file: Option<PathBuf>,
    reflection: Option<bool>,
    audit_log: Option<String>,
    insecure_allow_plaintext: Option<bool>,
}

/// Resolved, validated registry settings.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// The etcd store and its key prefix, with `--store etcd`.
    pub etcd: Option<(switchboard_registry::EtcdConfig, String)>,
    /// gRPC listen address.
    pub registry_addr: SocketAddr,
    /// Admin HTTP listen address.
    pub registry_admin_addr: SocketAddr,
    /// The registry core's configuration.
    pub registry: RegistryConfig,
    /// Serve the dashboard at `/ui` on the admin port.
    pub ui: bool,
    /// `Host` values the dashboard accepts besides loopback.
    pub admin_allowed_hosts: Vec<String>,
    /// Non-loopback listeners.
    pub exposure: ExposureArgs,
    /// Trace export.
    pub telemetry: TelemetryArgs,
    /// TLS on both ports (`None`: plaintext).
    pub tls: Option<switchboard_tls::ServerTls>,
    /// TLS of the process's own connections to the registry.
    pub client_tls: Option<switchboard_tls::ClientTls>,
}

// === impl RegistrySettings ===

impl RegistrySettings {
    /// Checks both listeners against the exposure rule: both serve TLS with
    /// the same certificate, and `--auth` guards both.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        let protection = Protection { tls: self.tls.is_some(), auth: self.registry.auth.enabled };
        self.exposure.check("grpc", self.registry_addr, protection)?;
        self.exposure.check("admin", self.registry_admin_addr, protection)
    }
}

impl RegistryArgs {
    /// Merges flags/env (already merged by clap) over the file over defaults.
    pub fn resolve(self) -> Result<RegistrySettings, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let mut registry = RegistryConfig::default();
        let liveness = &mut registry.liveness;
        if let Some(text) = self.heartbeat_interval.or(file.heartbeat_interval) {
            liveness.interval = parse_duration("heartbeat_interval", &text)?;
        }
        if let Some(text) = self.degraded_after.or(file.degraded_after) {
            liveness.degraded_after = parse_duration("degraded_after", &text)?;
        }
        if let Some(text) = self.expired_after.or(file.expired_after) {
            liveness.expired_after = parse_duration("expired_after", &text)?;
        }
        if let Some(text) = self.retention.or(file.retention) {
            liveness.retention = parse_duration("retention", &text)?;
        }
        if let Some(count) = self.history_max_events.or(file.history_max_events) {
            registry.history_max_events = count;
        }
        registry.auth.enabled = self.auth.auth || file.auth.unwrap_or(false);
        registry.auth.bootstrap_token_file =
            self.auth.bootstrap_token_file.or(file.bootstrap_token_file);
        registry.auth.reflection = !self.auth.no_reflection && file.reflection.unwrap_or(true);
        if let Some(text) = self.audit_log.or(file.audit_log) {
            registry.audit_log =
                text.parse().map_err(|e| ConfigError(format!("audit_log: {e}")))?;
        }
        registry.validate().map_err(ConfigError)?;
        let exposure = ExposureArgs {
            insecure_allow_plaintext: self.exposure.insecure_allow_plaintext
                || file.insecure_allow_plaintext.unwrap_or(false),
        };
        let admin_allowed_hosts = if self.admin_allowed_hosts.is_empty() {
            file.admin_allowed_hosts.unwrap_or_default()
        } else {
            self.admin_allowed_hosts
        };
        let etcd = EtcdChoice {
            store: self.store.or(file.store),
            endpoints: if self.etcd_endpoints.is_empty() {
                file.etcd_endpoints.unwrap_or_default()
            } else {
                self.etcd_endpoints
            },
            prefix: self.etcd_prefix.or(file.etcd_prefix),
            user: self.etcd_user.or(file.etcd_user),
            password: self.etcd_password,
            tls: self.etcd_tls.or(EtcdTlsArgs {
                etcd_tls_ca: file.etcd_tls_ca,
                etcd_tls_cert: file.etcd_tls_cert,
                etcd_tls_key: file.etcd_tls_key,
            }),
        }
        .resolve()?;
        Ok(RegistrySettings {
            etcd,
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| "switchboard-data".into()),
            registry_addr: parse_addr(
                "registry_addr",
                self.registry_addr.or(file.registry_addr),
                switchboard_proto::DEFAULT_REGISTRY_ADDR,
            )?,
            registry_admin_addr: parse_addr(
                "registry_admin_addr",
                self.registry_admin_addr.or(file.registry_admin_addr),
                switchboard_proto::DEFAULT_REGISTRY_ADMIN_ADDR,
            )?,
            registry,
            ui: self.ui.enabled(file.ui),
            admin_allowed_hosts,
            exposure,
            telemetry: self.telemetry,
            tls: self.tls.load()?,
            client_tls: self.client_tls.load("")?,
        })
    }
}

// === impl ExposureArgs ===

impl ExposureArgs {
    /// Checks that `listener` may start on `addr` with the TLS and auth
    /// its component configured for it.
    pub fn check(
        &self,
        listener: &str,
        addr: SocketAddr,
        protection: Protection,
    ) -> Result<(), ConfigError> {
        check_listener(listener, addr, protection, self.insecure_allow_plaintext)
            .map_err(|e| ConfigError(e.to_string()))
    }
}

// === impl UiArgs ===

impl UiArgs {
    /// `--ui` or `--no-ui` (or its variable), else the file's `ui`, else on.
    pub fn enabled(&self, file: Option<bool>) -> bool {
        if self.ui {
            true
        } else if self.no_ui {
            false
        } else {
            file.unwrap_or(true)
        }
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))
}

fn parse_duration(setting: &str, text: &str) -> Result<std::time::Duration, ConfigError> {
    duration::parse(text).map_err(|e| ConfigError(format!("{setting}: {e}")))
}

fn parse_addr(
    setting: &str,
    value: Option<String>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_owned());
    text.parse().map_err(|_| ConfigError(format!("{setting}: bad address {text:?}: want IP:PORT")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("sb-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("switchboard.toml");
        std::fs::write(&file, "registry_addr = \"127.0.0.1:9000\"\nexpired_after = \"40s\"\n")
            .unwrap();
        let args = RegistryArgs {
            config: Some(file),
            registry_addr: Some("127.0.0.1:9100".into()),
            ..RegistryArgs::default()
        };
        let settings = args.resolve().unwrap();
        assert_eq!(settings.registry_addr.port(), 9100);
        assert_eq!(settings.registry.liveness.expired_after.as_secs(), 40);
        assert_eq!(settings.registry_admin_addr.port(), 7601);
    }

    #[test]
    fn mistakes_name_the_setting() {
        let bad_addr =
            RegistryArgs { registry_addr: Some("nowhere".into()), ..RegistryArgs::default() };
        assert!(bad_addr.resolve().unwrap_err().to_string().contains("registry_addr"));
        let bad_ladder =
            RegistryArgs { degraded_after: Some("1s".into()), ..RegistryArgs::default() };
        assert!(bad_ladder.resolve().unwrap_err().to_string().contains("degraded_after"));
    }

    #[test]
    fn a_missing_certificate_file_is_named_with_its_flag() {
        let args = RegistryArgs {
            tls: ServerTlsArgs {
                tls_cert: Some("/nonexistent/server.pem".into()),
                tls_key: Some("/nonexistent/server-key.pem".into()),
                tls_client_ca: None,
            },
            ..RegistryArgs::default()
        };
        let error = args.resolve().unwrap_err().to_string();
        assert!(error.contains("--tls-cert /nonexistent/server.pem: cannot read"), "{error}");
        let client =
            ClientTlsArgs { tls_ca: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let error = client.load("127.0.0.1:7600").unwrap_err().to_string();
        assert!(error.contains("--tls-ca /nonexistent/ca.pem"), "{error}");
        assert!(
            ClientTlsArgs::default().load("127.0.0.1:7600").unwrap().is_none(),
            "plaintext by default"
        );
    }

    #[test]
    fn plaintext_off_loopback_is_refused_unless_accepted() {
        use clap::Parser as _;

        #[derive(Debug, clap::Parser)]
        struct Registry {
            #[command(flatten)]
            args: RegistryArgs,
        }
        let open = ["registry", "--registry-addr", "0.0.0.0:7600"];
        let settings = Registry::parse_from(open).args.resolve().unwrap();
        let error = settings.check_exposure().unwrap_err();
        assert!(error.to_string().contains("--insecure-allow-plaintext"), "{error}");
        let accepted = Registry::parse_from([&open[..], &["--insecure-allow-plaintext"]].concat());
        let settings = accepted.args.resolve().unwrap();
        assert!(settings.check_exposure().is_ok());
    }

    #[test]
    fn the_dashboard_is_on_unless_a_flag_or_the_file_turns_it_off() {
        use clap::Parser as _;

        #[derive(Debug, clap::Parser)]
        struct Registry {
            #[command(flatten)]
            args: RegistryArgs,
        }
        let resolve = |args: &[&str]| Registry::parse_from(args).args.resolve().unwrap();
        assert!(resolve(&["registry"]).ui);
        assert!(!resolve(&["registry", "--no-ui"]).ui);
        assert!(resolve(&["registry", "--no-ui", "--ui"]).ui, "the last flag wins");
        let dir = std::env::temp_dir().join(format!("sb-settings-ui-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("switchboard.toml");
        std::fs::write(&file, "ui = false\nadmin_allowed_hosts = [\"mesh.internal\"]\n").unwrap();
        let config = file.to_str().unwrap();
        let from_file = resolve(&["registry", "--config", config]);
        assert!(!from_file.ui);
        assert_eq!(from_file.admin_allowed_hosts, ["mesh.internal"]);
        assert!(resolve(&["registry", "--config", config, "--ui"]).ui, "a flag beats the file");
    }

    #[test]
    fn trace_export_flags_reach_the_resolved_settings() {
        use clap::Parser as _;

        #[derive(Debug, clap::Parser)]
        struct Gateway {
            #[command(flatten)]
            args: GatewayArgs,
        }
        #[derive(Debug, clap::Parser)]
        struct Up {
            #[command(flatten)]
            args: UpArgs,
        }
        let gateway = Gateway::parse_from([
            "gateway",
            "--otlp-endpoint",
            "http://collector:4317",
            "--service-name",
            "edge",
        ]);
        let settings = gateway.args.resolve().unwrap();
        assert_eq!(settings.telemetry.otlp_endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(settings.telemetry.service_name.as_deref(), Some("edge"));
        let up = Up::parse_from(["up", "--otlp-endpoint", "http://collector:4317"]);
        let settings = up.args.registry.resolve().unwrap();
        assert_eq!(settings.telemetry.otlp_endpoint.as_deref(), Some("http://collector:4317"));
    }
}

/// Gateway settings shared by `switchboard gateway` and `switchboard up`.
#[derive(Debug, Clone, Args, Default)]
pub struct GatewayOptions {
    /// Extra `Host` values accepted at /mcp, comma-separated (loopback is always
    /// accepted; `*` accepts any, for deployments behind a proxy).
    #[arg(long, env = "SWITCHBOARD_GATEWAY_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted at /mcp, comma-separated (`http://localhost:*`);
    /// requests with any other `Origin` get 403.
    #[arg(long, env = "SWITCHBOARD_GATEWAY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Longest wait for one upstream tool call [default: 30s].
    #[arg(long, env = "SWITCHBOARD_CALL_TIMEOUT")]
    pub call_timeout: Option<String>,
    /// Who may call which tool.
    #[command(flatten)]
    pub access: AccessOptions,
}

/// Flags of `switchboard gateway`.
#[derive(Debug, Clone, Args, Default)]
pub struct GatewayArgs {
    /// Gateway HTTP address: /mcp, /healthz, /readyz, /metrics, /ui [default: 127.0.0.1:7700].
    #[arg(long, env = "SWITCHBOARD_GATEWAY_ADDR")]
    pub gateway_addr: Option<String>,
    /// The registry's gRPC address, or several replicas' separated by commas
    /// (followed one at a time, the next on failure) [default: 127.0.0.1:7600].
    #[arg(long, env = "SWITCHBOARD_REGISTRY")]
    pub registry: Option<String>,
    /// The token of the gateway's Watch (a viewer token) for a registry with --auth.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Routing, timeouts and Host/Origin checks.
    #[command(flatten)]
    pub options: GatewayOptions,
    /// The dashboard on the gateway's port.
    #[command(flatten)]
    pub ui: UiArgs,
    /// Non-loopback listeners.
    #[command(flatten)]
    pub exposure: ExposureArgs,
    /// Trace export.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// TLS on the gateway's port.
    #[command(flatten)]
    pub tls: ServerTlsArgs,
    /// TLS to the registry and to agents.
    #[command(flatten)]
    pub client_tls: ClientTlsArgs,
}

/// Flags of `switchboard up`.
#[derive(Debug, Clone, Args, Default)]
pub struct UpArgs {
    /// Registry settings, trace export and the dashboard (`--no-ui` turns it
    /// off on both ports) for the whole process.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Gateway HTTP address [default: 127.0.0.1:7700].
    #[arg(long, env = "SWITCHBOARD_GATEWAY_ADDR")]
    pub gateway_addr: Option<String>,
    /// Gateway routing, timeouts and Host/Origin checks.
    #[command(flatten)]
    pub gateway: GatewayOptions,
    /// Also start the example agents (date-service, hello).
    #[arg(long)]
    pub demo: bool,
    /// With --auth: the token of the in-process gateway and demo agents
    /// [default: the bootstrap admin token].
    #[command(flatten)]
    pub token: TokenArgs,
}

/// Resolved, validated gateway settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// HTTP listen address.
    pub gateway_addr: SocketAddr,
    /// The gateway's configuration.
    pub gateway: switchboard_gateway::GatewayConfig,
    /// Non-loopback listeners.
    pub exposure: ExposureArgs,
    /// Trace export.
    pub telemetry: TelemetryArgs,
}

// === impl GatewaySettings ===

impl GatewaySettings {
    /// Checks the gateway's port against the exposure rule.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        // Caller auth at the gateway: OAuth tokens, API keys or client
        // certificates (any one of them).
        let protection = Protection {
            tls: self.gateway.tls.is_some(),
            auth: self.gateway.access.auth_enabled(),
        };
        self.exposure.check("gateway", self.gateway_addr, protection)
    }
}

impl GatewayArgs {
    /// Merges flags/env over defaults and validates.
    pub fn resolve(self) -> Result<GatewaySettings, ConfigError> {
        let mut gateway = switchboard_gateway::GatewayConfig::default();
        if let Some(registry) = self.registry {
            gateway.registry = registry;
        }
        if let Some(text) = self.options.call_timeout {
            gateway.call_timeout = parse_duration("call_timeout", &text)?;
        }
        gateway.allowed_hosts = self.options.allowed_hosts;
        gateway.allowed_origins = self.options.allowed_origins;
        gateway.ui = self.ui.enabled(None);
        gateway.tls = self.tls.load()?;
        gateway.client_tls = self.client_tls.load(&gateway.registry)?;
        gateway.registry_token = self.token.bearer()?;
        let gateway_addr = parse_addr(
            "gateway_addr",
            self.gateway_addr,
            switchboard_gateway::DEFAULT_GATEWAY_ADDR,
        )?;
        gateway.access = self.options.access.resolve(gateway_addr, self.token.secret()?)?;
        gateway.validate().map_err(ConfigError)?;
        Ok(GatewaySettings {
            gateway_addr,
            gateway,
            exposure: self.exposure,
            telemetry: self.telemetry,
        })
    }
}

/// TLS for a component's listeners (`--tls-cert`, `--tls-key`, optional
/// `--tls-client-ca` for mTLS). The files are reloaded when they change.
#[derive(Debug, Clone, Args, Default)]
pub struct ServerTlsArgs {
    /// Serve TLS with this certificate chain (PEM) [default: plaintext].
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mTLS); their names become the
    /// clients' identities.
    #[arg(long, env = "SWITCHBOARD_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// TLS for a component's connections (`--tls-ca`, optional
/// `--tls-client-cert`/`--tls-client-key` for mTLS). Any of them, or an
/// `https://` address, means TLS.
#[derive(Debug, Clone, Args, Default)]
pub struct ClientTlsArgs {
    /// Connect with TLS, trusting this CA (PEM) [default: plaintext, or the system's roots
    /// for https:// addresses].
    #[arg(long, env = "SWITCHBOARD_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Present this client certificate (PEM) to servers that require one (mTLS).
    #[arg(long, env = "SWITCHBOARD_TLS_CLIENT_CERT", requires = "tls_client_key")]
    pub tls_client_cert: Option<PathBuf>,
    /// The private key of --tls-client-cert (PEM).
    #[arg(long, env = "SWITCHBOARD_TLS_CLIENT_KEY", requires = "tls_client_cert")]
    pub tls_client_key: Option<PathBuf>,
}

// === impl ServerTlsArgs ===

impl ServerTlsArgs {
    /// The loaded configuration, or `None` for plaintext; a file that does
    /// not load is named with its flag.
    pub fn load(&self) -> Result<Option<switchboard_tls::ServerTls>, ConfigError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let config = switchboard_tls::ServerTlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_client_ca.clone(),
        };
        switchboard_tls::ServerTls::load(&config).map(Some).map_err(|e| ConfigError(e.to_string()))
    }

    /// Whether TLS is asked for.
    pub fn enabled(&self) -> bool {
        self.tls_cert.is_some()
    }
}

// === impl ClientTlsArgs ===

impl ClientTlsArgs {
    /// The configuration for connections to `address`: `None` (plaintext)
    /// unless a flag is given or the address is `https://`.
    pub fn load(&self, address: &str) -> Result<Option<switchboard_tls::ClientTls>, ConfigError> {
        let config = self.config();
        if config == switchboard_tls::ClientTlsConfig::default() && !address.starts_with("https://")
        {
            return Ok(None);
        }
        switchboard_tls::ClientTls::load(&config).map(Some).map_err(|e| ConfigError(e.to_string()))
    }

    /// The files named by the flags.
    pub fn config(&self) -> switchboard_tls::ClientTlsConfig {
        switchboard_tls::ClientTlsConfig {
            ca: self.tls_ca.clone(),
            cert: self.tls_client_cert.clone(),
            key: self.tls_client_key.clone(),
        }
    }
}
