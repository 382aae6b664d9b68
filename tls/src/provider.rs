//! The process's rustls crypto provider (ring). reqwest and rmcp's HTTP
//! client build their TLS configuration from the process default and panic
//! without one, so every entry point that may build an HTTP client calls
//! [`ensure_crypto_provider`] first.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// Installs ring as the process's rustls provider unless one is installed.
///
/// ```
/// switchboard_tls::ensure_crypto_provider();
/// switchboard_tls::ensure_crypto_provider(); // idempotent
/// assert!(rustls::crypto::CryptoProvider::get_default().is_some());
/// ```
pub fn ensure_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The provider every config of this crate is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    ensure_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A reqwest client builder that is safe to `build()`: the crypto provider
/// is installed. Use it for plaintext HTTP clients too.
///
/// ```
/// let client = switchboard_tls::http_client_builder().build();
/// assert!(client.is_ok());
/// ```
pub fn http_client_builder() -> reqwest::ClientBuilder {
    ensure_crypto_provider();
    reqwest::Client::builder()
}
