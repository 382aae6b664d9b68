//! The client side: which CA to trust (`--tls-ca`; the system's roots when
//! unset) and, for mTLS, the certificate to present (`--tls-client-cert`,
//! `--tls-client-key`).
//!
//! One rustls `ClientConfig` is built per [`ClientTls`] and never rebuilt:
//! its verifier and its certificate resolver read the current files'
//! contents, swapped when the files change. So a reqwest client or a tonic
//! channel made once keeps working across a rotation, and its next new
//! connection uses the new files.

mod connector;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::sign::CertifiedKey;

use crate::files::Named;
use crate::provider::provider;
use crate::{TlsError, reload};

pub use connector::{ClientStream, Connector};

/// Where a client's certificate files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsConfig {
    /// The CA that signed the servers' certificates, PEM; `None`: the
    /// system's trusted roots.
    pub ca: Option<PathBuf>,
    /// A certificate to present (mTLS), PEM; needs `key`.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`, PEM.
    pub key: Option<PathBuf>,
}

/// The flags that name a client configuration's files, for error messages:
/// one process may hold several client configurations (to the registry, to
/// etcd), and an operator must know which setting to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTlsFlags {
    /// The CA file's flag (`--tls-ca`).
    pub ca: &'static str,
    /// The client certificate's flag (`--tls-client-cert`).
    pub cert: &'static str,
    /// The client key's flag (`--tls-client-key`).
    pub key: &'static str,
}

/// A client's TLS configuration, reloaded when its files change. Cheap to
/// clone.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), switchboard_tls::TlsError> {
/// let dir = tempfile::tempdir().unwrap();
/// let dev = switchboard_tls::dev::generate(dir.path(), &[], &["cli".into()])?;
/// let tls = switchboard_tls::ClientTls::load(&dev.client_config("cli"))?;
/// let http = tls.http_client(reqwest::Client::builder()).build();
/// assert!(http.is_ok());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientTls {
    /// For gRPC: ALPN `h2`.
    grpc: Arc<ClientConfig>,
    /// For HTTP/1.1 (reqwest, MCP).
    http: Arc<ClientConfig>,
    /// Whether a server asked for a client certificate while there was none.
    asked_without: Arc<AtomicBool>,
    /// The files' current contents (whether there is a certificate now).
    trust: Arc<ArcSwap<Trust>>,
    flags: ClientTlsFlags,
}

/// What the files say now.
pub(crate) struct Trust {
    pub verifier: Arc<dyn ServerCertVerifier>,
    pub identity: Option<Arc<CertifiedKey>>,
    /// The CA file, for messages.
    pub ca: Option<PathBuf>,
    /// The flags, for messages.
    pub flags: ClientTlsFlags,
}

// === impl ClientTlsFlags ===

impl ClientTlsFlags {
    /// The flags of a connection to the registry.
    pub const REGISTRY: Self =
        Self { ca: "--tls-ca", cert: "--tls-client-cert", key: "--tls-client-key" };
}

impl Default for ClientTlsFlags {
    fn default() -> Self {
        Self::REGISTRY
    }
}

// === impl ClientTls ===

impl ClientTls {
    /// Loads the files now (an error names the file and its flag) and
    /// watches them for changes.
    pub fn load(config: &ClientTlsConfig) -> Result<Self, TlsError> {
        Self::load_with_flags(config, ClientTlsFlags::REGISTRY)
    }

    /// [`ClientTls::load`], naming the files by `flags` in errors.
    pub fn load_with_flags(
        config: &ClientTlsConfig,
        flags: ClientTlsFlags,
    ) -> Result<Self, TlsError> {
        let files = Files::new(config, flags)?;
        let asked_without = Arc::new(AtomicBool::new(false));
        let trust = Arc::new(ArcSwap::from_pointee(files.build()?));
        let watched = files.watched();
        if !watched.is_empty() {
            reload::watch("client certificate", watched, &trust, move || files.build());
        }
        let base = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config {
                what: "client tls versions".into(),
                reason: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::Current(trust.clone())))
            .with_client_cert_resolver(Arc::new(verify::Identity {
                trust: trust.clone(),
                asked_without: asked_without.clone(),
            }));
        let mut grpc = base.clone();
        grpc.alpn_protocols = vec![b"h2".to_vec()];
        let mut http = base;
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { grpc: Arc::new(grpc), http: Arc::new(http), asked_without, trust, flags })
    }

    /// Why a server may have closed a connection right after the handshake:
    /// it asked for a client certificate and this configuration has none
    /// (such a server reports it with an alert the HTTP/2 client does not
    /// pass on). `None` while no server asked, or once the files hold one.
    pub fn missing_certificate(&self) -> Option<String> {
        let missing = self.trust.load().identity.is_none();
        (missing && self.asked_without.load(Ordering::Relaxed)).then(|| {
            format!(
                "the server asked for a client certificate and none is configured (give {} and {})",
                self.flags.cert, self.flags.key
            )
        })
    }

    /// A tonic connector that dials TCP and then TLS with this configuration.
    pub fn connector(&self) -> Connector {
        Connector::new(Some(self.clone()))
    }

    /// `builder` set to use this configuration for `https://` URLs.
    pub fn http_client(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        crate::ensure_crypto_provider();
        builder.tls_backend_preconfigured(self.http.as_ref().clone())
    }

    pub(crate) fn grpc_config(&self) -> Arc<ClientConfig> {
        self.grpc.clone()
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

/// The files of one client configuration.
struct Files {
    flags: ClientTlsFlags,
    ca: Option<Named>,
    identity: Option<(Named, Named)>,
}

// === impl Files ===

impl Files {
    fn new(config: &ClientTlsConfig, flags: ClientTlsFlags) -> Result<Self, TlsError> {
        let identity = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => {
                Some((Named::new(flags.cert, cert), Named::new(flags.key, key)))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(TlsError::Setting(format!("{} needs {}", flags.cert, flags.key)));
            }
            (None, Some(_)) => {
                return Err(TlsError::Setting(format!("{} needs {}", flags.key, flags.cert)));
            }
        };
        Ok(Self { flags, ca: config.ca.as_ref().map(|ca| Named::new(flags.ca, ca)), identity })
    }

    fn watched(&self) -> Vec<Named> {
        let mut files: Vec<Named> = self.ca.iter().cloned().collect();
        if let Some((cert, key)) = &self.identity {
            files.push(cert.clone());
            files.push(key.clone());
        }
        files
    }

    fn build(&self) -> Result<Trust, TlsError> {
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = match &self.ca {
            Some(ca) => {
                WebPkiServerVerifier::builder_with_provider(Arc::new(ca.roots()?), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Config {
                        what: format!("{} {}", ca.flag, ca.path.display()),
                        reason: e.to_string(),
                    })?
            }
            None => Arc::new(rustls_platform_verifier::Verifier::new(provider.clone()).map_err(
                |e| TlsError::Config {
                    what: "the system's trusted roots".into(),
                    reason: e.to_string(),
                },
            )?),
        };
        let identity = match &self.identity {
            Some((cert, key)) => {
                let chain = cert.certs()?;
                let signing = provider.key_provider.load_private_key(key.key()?).map_err(|e| {
                    TlsError::Config {
                        what: format!("{} {}", key.flag, key.path.display()),
                        reason: e.to_string(),
                    }
                })?;
                let certified = CertifiedKey::new(chain, signing);
                certified.keys_match().map_err(|e| TlsError::Config {
                    what: format!(
                        "{} {} with {} {}",
                        cert.flag,
                        cert.path.display(),
                        key.flag,
                        key.path.display()
                    ),
                    reason: e.to_string(),
                })?;
                Some(Arc::new(certified))
            }
            None => None,
        };
        Ok(Trust {
            verifier,
            identity,
            ca: self.ca.as_ref().map(|ca| ca.path.clone()),
            flags: self.flags,
        })
    }
}
