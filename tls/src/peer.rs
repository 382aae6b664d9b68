//! The names in a verified client certificate.

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::PeerNames;

/// The DNS and URI subject alternative names of `leaf`, in order; empty
/// when it has none or does not parse (it was verified already, so that
/// only happens for names of kinds an identity cannot use).
pub(crate) fn names(leaf: &CertificateDer<'_>) -> PeerNames {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return PeerNames::default();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return PeerNames::default();
    };
    let names = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::URI(uri) => Some((*uri).to_owned()),
            _ => None,
        })
        .collect();
    PeerNames(names)
}
