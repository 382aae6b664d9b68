//! The verifier and certificate resolver of a client configuration: both
//! read the files' current contents, so one `ClientConfig` follows a
//! rotation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use super::Trust;

/// Delegates to the current [`Trust`].
pub(crate) struct Current(pub Arc<ArcSwap<Trust>>);

/// Presents the current [`Trust`]'s certificate, and notes when a server
/// asked for one while there is none: a server that requires client
/// certificates closes such a connection only after the handshake, with a
/// cause that never reaches the caller, so the caller asks here.
pub(crate) struct Identity {
    pub trust: Arc<ArcSwap<Trust>>,
    pub asked_without: Arc<AtomicBool>,
}

/// An unknown issuer, said so that the operator knows which file to check.
#[derive(Debug, thiserror::Error)]
#[error("server certificate not trusted (unknown issuer): it is not signed by {by}")]
struct NotTrusted {
    by: String,
}

// === impl Current ===

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Current")
    }
}

impl ServerCertVerifier for Current {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let trust = self.0.load();
        trust
            .verifier
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| match error {
                // BadSignature: an issuer of the same name that did not sign it.
                Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => {
                    let by = match &trust.ca {
                        Some(ca) => format!("the CA in {} {}", trust.flags.ca, ca.display()),
                        None => {
                            format!("a CA the system trusts (give its CA with {})", trust.flags.ca)
                        }
                    };
                    // `General`: rustls shows other certificate errors
                    // with their Debug form.
                    Error::General(NotTrusted { by }.to_string())
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.load().verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.load().verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.load().verifier.supported_verify_schemes()
    }
}

// === impl Identity ===

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity")
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let identity = self.trust.load().identity.clone();
        if identity.is_none() {
            self.asked_without.store(true, Ordering::Relaxed);
        }
        identity
    }

    fn has_certs(&self) -> bool {
        self.trust.load().identity.is_some()
    }
}
