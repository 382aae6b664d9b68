//! Reading PEM files, with errors that name the file and its flag.

use std::path::PathBuf;
use std::time::SystemTime;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// A file and the flag that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub flag: &'static str,
    pub path: PathBuf,
}

// === impl Named ===

impl Named {
    pub fn new(flag: &'static str, path: impl Into<PathBuf>) -> Self {
        Self { flag, path: path.into() }
    }

    fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(&self.path).map_err(|source| TlsError::Read {
            flag: self.flag,
            path: self.path.clone(),
            source,
        })
    }

    fn pem_error(&self, reason: impl Into<String>) -> TlsError {
        TlsError::Pem { flag: self.flag, path: self.path.clone(), reason: reason.into() }
    }

    /// Every certificate in the file (a chain: leaf first).
    pub fn certs(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.read()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.pem_error(format!("bad PEM: {e}")))?;
        if certs.is_empty() {
            return Err(self.pem_error("no CERTIFICATE block"));
        }
        Ok(certs)
    }

    /// The first private key in the file (PKCS#8, PKCS#1 or SEC1).
    pub fn key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.read()?;
        PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|e| self.pem_error(format!("no usable PRIVATE KEY block: {e}")))
    }

    /// The file's certificates as trust anchors.
    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certs()? {
            roots
                .add(cert)
                .map_err(|e| self.pem_error(format!("not a usable CA certificate: {e}")))?;
        }
        Ok(roots)
    }

    /// When the file last changed; `None` when it cannot be read now (a
    /// rotation that removes and rewrites it), which also counts as a change.
    pub fn modified(&self) -> Option<SystemTime> {
        std::fs::metadata(&self.path).and_then(|m| m.modified()).ok()
    }
}

/// The modification times of `files`, compared to notice a rotation.
pub(crate) fn stamps(files: &[&Named]) -> Vec<Option<SystemTime>> {
    files.iter().map(|file| file.modified()).collect()
}
