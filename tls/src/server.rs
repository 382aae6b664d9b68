//! The server side: certificate and key, optional client CA (mTLS).

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use crate::files::Named;
use crate::provider::provider;
use crate::{TlsError, reload};

/// Where a server's certificate files are (`--tls-cert`, `--tls-key`,
/// `--tls-client-ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA
    /// (mTLS); their names reach requests as [`PeerNames`](crate::PeerNames).
    pub client_ca: Option<PathBuf>,
}

/// A server's TLS configuration, reloaded when its files change. Cheap to
/// clone: clones share the configuration.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), switchboard_tls::TlsError> {
/// let dir = tempfile::tempdir().unwrap();
/// let dev = switchboard_tls::dev::generate(dir.path(), &[], &["weather".into()])?;
/// let tls = switchboard_tls::ServerTls::load(&dev.server_config(true))?;
/// assert!(tls.requires_client_certs());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<ArcSwap<ServerConfig>>,
    mtls: bool,
}

// === impl ServerTls ===

impl ServerTls {
    /// Loads the files now (an error names the file and its flag) and
    /// watches them for changes.
    pub fn load(config: &ServerTlsConfig) -> Result<Self, TlsError> {
        let files = Files::new(config);
        let current = Arc::new(ArcSwap::from_pointee(files.build()?));
        let watched = files.watched();
        reload::watch("server certificate", watched, &current, move || files.build());
        Ok(Self { current, mtls: config.client_ca.is_some() })
    }

    /// The configuration new handshakes use now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certs(&self) -> bool {
        self.mtls
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("mtls", &self.mtls).finish_non_exhaustive()
    }
}

/// The files of one server configuration.
struct Files {
    cert: Named,
    key: Named,
    client_ca: Option<Named>,
}

// === impl Files ===

impl Files {
    fn new(config: &ServerTlsConfig) -> Self {
        Self {
            cert: Named::new("--tls-cert", &config.cert),
            key: Named::new("--tls-key", &config.key),
            client_ca: config.client_ca.as_ref().map(|ca| Named::new("--tls-client-ca", ca)),
        }
    }

    fn watched(&self) -> Vec<Named> {
        let mut files = vec![self.cert.clone(), self.key.clone()];
        files.extend(self.client_ca.clone());
        files
    }

    fn build(&self) -> Result<ServerConfig, TlsError> {
        let provider = provider();
        let certs = self.cert.certs()?;
        let key = self.key.key()?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error("server tls versions", e))?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()?), provider)
                        .build()
                        .map_err(|e| TlsError::Config {
                            what: format!("--tls-client-ca {}", ca.path.display()),
                            reason: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| TlsError::Config {
            what: format!(
                "--tls-cert {} with --tls-key {}",
                self.cert.path.display(),
                self.key.path.display()
            ),
            reason: e.to_string(),
        })?;
        // gRPC needs h2; the HTTP ports serve both.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn config_error(what: &str, error: rustls::Error) -> TlsError {
    TlsError::Config { what: what.to_owned(), reason: error.to_string() }
}
