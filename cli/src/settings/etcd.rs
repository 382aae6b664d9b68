//! The etcd store's settings: endpoints, key prefix, user and password, and
//! TLS (`--etcd-tls-ca`, `--etcd-tls-cert`, `--etcd-tls-key`). TLS is on
//! when any TLS setting is given or an endpoint is `https://`; endpoints
//! without a scheme are then dialled over TLS too, and a plaintext
//! `http://` endpoint beside them is refused.

use std::path::PathBuf;

use clap::Args;
use switchboard_registry::EtcdConfig;
use switchboard_tls::{ClientTls, ClientTlsConfig, ClientTlsFlags};

use super::ConfigError;

/// The flags of TLS to etcd, named in errors about their files.
const ETCD_TLS_FLAGS: ClientTlsFlags =
    ClientTlsFlags { ca: "--etcd-tls-ca", cert: "--etcd-tls-cert", key: "--etcd-tls-key" };

/// TLS of the connections to etcd (shared by `registry`, `up` and `store copy`).
#[derive(Debug, Clone, Args, Default)]
pub struct EtcdTlsArgs {
    /// Connect to etcd with TLS, trusting this CA (PEM) [default: plaintext, or the
    /// system's roots for https:// endpoints].
    #[arg(long, env = "SWITCHBOARD_ETCD_TLS_CA")]
    pub etcd_tls_ca: Option<PathBuf>,
    /// Present this client certificate (PEM) to etcd (for its --client-cert-auth); needs
    /// --etcd-tls-key.
    #[arg(long, env = "SWITCHBOARD_ETCD_TLS_CERT")]
    pub etcd_tls_cert: Option<PathBuf>,
    /// The private key of --etcd-tls-cert (PEM).
    #[arg(long, env = "SWITCHBOARD_ETCD_TLS_KEY")]
    pub etcd_tls_key: Option<PathBuf>,
}

/// The store settings before they are checked against each other.
pub(super) struct EtcdChoice {
    pub store: Option<String>,
    pub endpoints: Vec<String>,
    pub prefix: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: EtcdTlsArgs,
}

// === impl EtcdTlsArgs ===

impl EtcdTlsArgs {
    /// Each setting from the flags, else from `file`'s (the same keys).
    pub fn or(self, file: Self) -> Self {
        Self {
            etcd_tls_ca: self.etcd_tls_ca.or(file.etcd_tls_ca),
            etcd_tls_cert: self.etcd_tls_cert.or(file.etcd_tls_cert),
            etcd_tls_key: self.etcd_tls_key.or(file.etcd_tls_key),
        }
    }

    /// Whether any TLS setting is given.
    pub fn is_set(&self) -> bool {
        self.etcd_tls_ca.is_some() || self.etcd_tls_cert.is_some() || self.etcd_tls_key.is_some()
    }

    /// `config` over TLS when a setting is given (its files loaded now, a
    /// file that does not load named with its flag), then checked: one
    /// scheme for every endpoint.
    pub fn apply(&self, mut config: EtcdConfig) -> Result<EtcdConfig, ConfigError> {
        if self.is_set() {
            let files = ClientTlsConfig {
                ca: self.etcd_tls_ca.clone(),
                cert: self.etcd_tls_cert.clone(),
                key: self.etcd_tls_key.clone(),
            };
            let tls = ClientTls::load_with_flags(&files, ETCD_TLS_FLAGS)
                .map_err(|e| ConfigError(format!("etcd tls: {e}")))?;
            config = config.with_tls(tls);
        }
        config.validate().map_err(|e| ConfigError(format!("etcd_endpoints: {e}")))?;
        Ok(config)
    }
}

// === impl EtcdChoice ===

impl EtcdChoice {
    /// `None` for sled; the etcd config and prefix for etcd.
    pub fn resolve(self) -> Result<Option<(EtcdConfig, String)>, ConfigError> {
        let endpoints: Vec<String> = self
            .endpoints
            .into_iter()
            .map(|endpoint| endpoint.trim().to_owned())
            .filter(|endpoint| !endpoint.is_empty())
            .collect();
        match self.store.as_deref().map(str::trim) {
            None | Some("sled") => {
                if !endpoints.is_empty() {
                    return Err(ConfigError("etcd_endpoints: set, but store is sled".into()));
                }
                if self.tls.is_set() {
                    return Err(ConfigError("etcd_tls_*: set, but store is sled".into()));
                }
                Ok(None)
            }
            Some("etcd") => {
                if endpoints.is_empty() {
                    return Err(ConfigError("etcd_endpoints: required with store etcd".into()));
                }
                let prefix = self.prefix.unwrap_or_else(|| "/switchboard".to_owned());
                if !prefix.starts_with('/') {
                    return Err(ConfigError(format!("etcd_prefix: {prefix:?} must start with /")));
                }
                let mut config = EtcdConfig::new(endpoints);
                match (self.user, self.password) {
                    (Some(user), Some(password)) => config = config.with_user(user, password),
                    (None, None) => {}
                    (Some(_), None) => {
                        return Err(ConfigError("etcd_password: required with etcd_user".into()));
                    }
                    (None, Some(_)) => {
                        return Err(ConfigError("etcd_user: required with etcd_password".into()));
                    }
                }
                Ok(Some((self.tls.apply(config)?, prefix)))
            }
            Some(other) => Err(ConfigError(format!("store: {other:?} is not sled or etcd"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::RegistryArgs;
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Registry {
        #[command(flatten)]
        args: RegistryArgs,
    }

    fn resolve(args: &[&str]) -> Result<Option<(EtcdConfig, String)>, ConfigError> {
        let args = [&["registry", "--store", "etcd"], args].concat();
        Registry::parse_from(args).args.resolve().map(|settings| settings.etcd)
    }

    fn error(args: &[&str]) -> String {
        resolve(args).unwrap_err().to_string()
    }

    #[test]
    fn tls_flags_turn_tls_on_and_endpoints_without_a_scheme_follow() {
        let dir = tempfile::tempdir().unwrap();
        let dev = switchboard_tls::dev::generate(dir.path(), &[], &["registry".into()]).unwrap();
        let (_, cert, key) = &dev.clients[0];
        let (config, _) = resolve(&[
            "--etcd-endpoints",
            "10.0.0.1:2379,https://10.0.0.2:2379",
            "--etcd-tls-ca",
            dev.ca.to_str().unwrap(),
            "--etcd-tls-cert",
            cert.to_str().unwrap(),
            "--etcd-tls-key",
            key.to_str().unwrap(),
        ])
        .unwrap()
        .unwrap();
        assert!(config.tls.is_some() && config.uses_tls());

        let (plain, _) = resolve(&["--etcd-endpoints", "10.0.0.1:2379"]).unwrap().unwrap();
        assert!(plain.tls.is_none() && !plain.uses_tls(), "plaintext by default");
        let (https, _) = resolve(&["--etcd-endpoints", "https://10.0.0.1:2379"]).unwrap().unwrap();
        assert!(https.uses_tls(), "an https:// endpoint is TLS with the system's roots");
    }

    #[test]
    fn bad_tls_settings_name_the_flag_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dev = switchboard_tls::dev::generate(dir.path(), &[], &["registry".into()]).unwrap();
        let (_, cert, _) = &dev.clients[0];
        let endpoints = ["--etcd-endpoints", "10.0.0.1:2379"];

        let missing =
            error(&[&endpoints[..], &["--etcd-tls-ca", "/nonexistent/etcd-ca.pem"]].concat());
        assert!(
            missing.contains("--etcd-tls-ca /nonexistent/etcd-ca.pem: cannot read"),
            "{missing}"
        );

        let alone = error(&[&endpoints[..], &["--etcd-tls-cert", cert.to_str().unwrap()]].concat());
        assert!(alone.contains("--etcd-tls-cert needs --etcd-tls-key"), "{alone}");

        let not_a_key = error(
            &[
                &endpoints[..],
                &[
                    "--etcd-tls-cert",
                    cert.to_str().unwrap(),
                    "--etcd-tls-key",
                    cert.to_str().unwrap(),
                ],
            ]
            .concat(),
        );
        assert!(not_a_key.contains(&format!("--etcd-tls-key {}", cert.display())), "{not_a_key}");

        let mixed = error(&[
            "--etcd-endpoints",
            "10.0.0.1:2379,http://10.0.0.2:2379",
            "--etcd-tls-ca",
            dev.ca.to_str().unwrap(),
        ]);
        assert!(
            mixed.contains("etcd_endpoints") && mixed.contains("http://10.0.0.2:2379"),
            "{mixed}"
        );

        let sled = Registry::parse_from(["registry", "--etcd-tls-ca", dev.ca.to_str().unwrap()])
            .args
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(sled.contains("etcd_tls_*: set, but store is sled"), "{sled}");
    }

    #[test]
    fn tls_settings_come_from_the_config_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let dev = switchboard_tls::dev::generate(dir.path(), &[], &["registry".into()]).unwrap();
        let (_, cert, key) = &dev.clients[0];
        let file = dir.path().join("switchboard.toml");
        std::fs::write(
            &file,
            format!(
                "store = \"etcd\"\netcd_endpoints = [\"10.0.0.1:2379\"]\netcd_tls_ca = {:?}\n\
                 etcd_tls_cert = {:?}\netcd_tls_key = {:?}\n",
                dev.ca, cert, key
            ),
        )
        .unwrap();
        let settings =
            Registry::parse_from(["registry", "--config", file.to_str().unwrap()]).args.resolve();
        let (config, _) = settings.unwrap().etcd.unwrap();
        assert!(config.tls.is_some());
    }
}
