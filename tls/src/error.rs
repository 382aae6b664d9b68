//! The one error type of the crate: every variant names the file (and the
//! flag that set it) so an operator knows what to fix.

use std::path::PathBuf;

/// A TLS setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("{flag} {}: cannot read: {source}", path.display())]
    Read {
        /// The flag that named the file (`--tls-cert`).
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind asked for.
    #[error("{flag} {}: {reason}", path.display())]
    Pem {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong (`no CERTIFICATE block`).
        reason: String,
    },
    /// The files load but rustls refuses them together (a key that does
    /// not match the certificate, an unusable CA).
    #[error("{what}: {reason}")]
    Config {
        /// Which configuration (`server certificate --tls-cert/--tls-key`).
        what: String,
        /// rustls' reason.
        reason: String,
    },
    /// A setting is incomplete (a client certificate without its key).
    #[error("{0}")]
    Setting(String),
    /// Writing a development certificate failed.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Generating a development certificate failed.
    #[error("generating {what}: {source}")]
    Generate {
        /// Which certificate.
        what: String,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
}
