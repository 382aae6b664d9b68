//! Development certificates for a local mesh (`switchboard cert dev`): a CA,
//! a server certificate for `localhost`, `127.0.0.1`, `::1` (and any extra
//! names), and one client certificate per name (its only SAN is the name,
//! which mTLS turns into the client's identity).
//!
//! Files are replaced atomically (written aside, then renamed), so a
//! server watching them never reads half a certificate; keys are 0600.
//! Not for production: the CA key sits next to the certificates.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::{ClientTlsConfig, ServerTlsConfig, TlsError};

/// The names every dev server certificate carries.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `ca-key.pem`.
    pub ca_key: PathBuf,
    /// `server.pem`.
    pub server_cert: PathBuf,
    /// `server-key.pem`.
    pub server_key: PathBuf,
    /// Per client name: `client-NAME.pem` and `client-NAME-key.pem`.
    pub clients: Vec<(String, PathBuf, PathBuf)>,
}

/// Writes a new CA and certificates signed by it into `dir` (created when
/// missing), replacing what is there.
pub fn generate(
    dir: &Path,
    extra_server_names: &[String],
    clients: &[String],
) -> Result<DevCerts, TlsError> {
    std::fs::create_dir_all(dir)
        .map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;
    let ca_key = key("the CA key")?;
    let mut ca_params = params("the CA", Vec::new())?;
    // A name of its own: two dev CAs with one name would make a foreign
    // certificate look like a bad signature of ours instead of an unknown CA.
    let tag: String = ca_key.public_key_raw().iter().take(4).map(|b| format!("{b:02x}")).collect();
    ca_params.distinguished_name = name(&format!("Switchboard development CA {tag}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generating("the CA"))?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let mut server_names: Vec<String> = SERVER_NAMES.iter().map(|n| (*n).to_owned()).collect();
    server_names.extend(extra_server_names.iter().cloned());
    let server_key = key("the server key")?;
    let mut server = params("the server certificate", server_names)?;
    server.distinguished_name = name("switchboard server");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert =
        server.signed_by(&server_key, &issuer).map_err(generating("the server certificate"))?;

    let written = DevCerts {
        ca: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
        clients: clients
            .iter()
            .map(|client| {
                (
                    client.clone(),
                    dir.join(format!("client-{client}.pem")),
                    dir.join(format!("client-{client}-key.pem")),
                )
            })
            .collect(),
    };
    let mut issued = Vec::new();
    for (client, _, _) in &written.clients {
        let what = format!("the client certificate {client:?}");
        let client_key = key(&what)?;
        let mut client_params = params(&what, vec![client.clone()])?;
        client_params.distinguished_name = name(client);
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = client_params.signed_by(&client_key, &issuer).map_err(generating(&what))?;
        issued.push((cert, client_key));
    }

    write(&written.ca, &ca_cert.pem(), false)?;
    write(&written.ca_key, &ca_key.serialize_pem(), true)?;
    write(&written.server_cert, &server_cert.pem(), false)?;
    write(&written.server_key, &server_key.serialize_pem(), true)?;
    for ((_, cert_path, key_path), (cert, client_key)) in written.clients.iter().zip(issued) {
        write(cert_path, &cert.pem(), false)?;
        write(key_path, &client_key.serialize_pem(), true)?;
    }
    Ok(written)
}

// === impl DevCerts ===

impl DevCerts {
    /// A server configuration from these files; `mtls`: require client
    /// certificates signed by this CA.
    pub fn server_config(&self, mtls: bool) -> ServerTlsConfig {
        ServerTlsConfig {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: mtls.then(|| self.ca.clone()),
        }
    }

    /// A client configuration trusting this CA, presenting `client`'s
    /// certificate when it was generated.
    pub fn client_config(&self, client: &str) -> ClientTlsConfig {
        let identity = self.clients.iter().find(|(name, _, _)| name == client);
        ClientTlsConfig {
            ca: Some(self.ca.clone()),
            cert: identity.map(|(_, cert, _)| cert.clone()),
            key: identity.map(|(_, _, key)| key.clone()),
        }
    }
}

fn key(what: &str) -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(generating(what))
}

fn params(what: &str, names: Vec<String>) -> Result<CertificateParams, TlsError> {
    CertificateParams::new(names).map_err(generating(what))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn generating(what: &str) -> impl FnOnce(rcgen::Error) -> TlsError + '_ {
    move |source| TlsError::Generate { what: what.to_owned(), source }
}

/// Writes `text` to a temporary file beside `path`, then renames it over.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    let failed = |source| TlsError::Write { path: path.to_owned(), source };
    let aside = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&aside).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&aside, path).map_err(failed)
}
