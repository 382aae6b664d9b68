//! A list of registry addresses: several replicas behind one setting
//! (`SWITCHBOARD_REGISTRY=a:7600,b:7600`), or one DNS name that resolves to
//! several.
//!
//! Names are expanded when connecting, not when parsing: a replica set
//! behind a DNS name changes (pods come and go), so the list is resolved
//! again each time every known address has failed. `https` entries are not
//! expanded: TLS checks the certificate against the name the client dialled,
//! and an IP literal would not match it (the transport still tries every
//! address the name resolves to).
//!
//! With a client TLS configuration ([`RegistryAddrs::with_tls`]) every
//! entry written without a scheme means `https://`, and every replica is
//! dialled over TLS with it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use switchboard_tls::ClientTls;
use tonic::codegen::http::Uri;

use crate::ConnectError;
use crate::connect::endpoint_uri;

/// Registry addresses, parsed and checked: `host:port`, full URIs, or a DNS
/// name, separated by commas.
///
/// ```
/// use switchboard_client::RegistryAddrs;
///
/// let addrs: RegistryAddrs = "10.0.0.1:7600, http://10.0.0.2:7600".parse()?;
/// assert_eq!(addrs.entries(), ["http://10.0.0.1:7600", "http://10.0.0.2:7600"]);
/// assert_eq!(addrs.to_string(), "10.0.0.1:7600,http://10.0.0.2:7600", "as given");
///
/// let error = "10.0.0.1:7600,not an address".parse::<RegistryAddrs>().unwrap_err();
/// assert!(error.to_string().starts_with("bad registry address \"not an address\""), "{error}");
/// # Ok::<(), switchboard_client::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct RegistryAddrs {
    entries: Vec<String>,
    /// The entries as the user wrote them, for messages.
    given: Vec<String>,
    /// TLS for every replica (`None`: plaintext, or the system's roots for
    /// an `https://` entry).
    tls: Option<ClientTls>,
}

// === impl RegistryAddrs ===

impl RegistryAddrs {
    /// Parses a comma-separated list; an error names the bad entry.
    pub fn parse(list: &str) -> Result<Self, ConnectError> {
        let bad = |entry: &str, reason: &str| ConnectError::BadAddress {
            address: entry.to_owned(),
            reason: reason.to_owned(),
        };
        let mut entries = Vec::new();
        let mut given = Vec::new();
        for entry in list.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(bad(entry, &format!("empty entry in the list {list:?}")));
            }
            let uri = endpoint_uri(entry);
            let parsed: Uri = uri
                .parse()
                .map_err(|e: tonic::codegen::http::uri::InvalidUri| bad(entry, &e.to_string()))?;
            match parsed.scheme_str() {
                Some("http" | "https") => {}
                _ => return Err(bad(entry, "the scheme must be http or https")),
            }
            if parsed.host().is_none_or(str::is_empty) {
                return Err(bad(entry, "no host"));
            }
            if !entries.contains(&uri) {
                entries.push(uri);
                given.push(entry.to_owned());
            }
        }
        Ok(Self { entries, given, tls: None })
    }

    /// Dials every replica over TLS with `tls` (`None`: as the entries say).
    /// Entries given as `host:port` become `https://host:port`; an explicit
    /// `http://` entry stays, and connecting to it then fails naming why.
    ///
    /// ```
    /// use switchboard_client::RegistryAddrs;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let dev = switchboard_tls::dev::generate(dir.path(), &[], &[])?;
    /// let tls = switchboard_tls::ClientTls::load(&dev.client_config(""))?;
    /// let addrs = RegistryAddrs::parse("10.0.0.1:7600,https://b:7600")?.with_tls(Some(tls));
    /// assert_eq!(addrs.entries(), ["https://10.0.0.1:7600", "https://b:7600"]);
    /// assert!(addrs.tls().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        for (entry, given) in self.entries.iter_mut().zip(&self.given) {
            if !given.contains("://") {
                *entry = format!("{scheme}://{given}");
            }
        }
        self.tls = tls;
        self
    }

    /// The TLS every replica is dialled with, if any.
    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// The addresses as URIs, in the order given, without duplicates.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Every address to try: each `http` entry whose host is a name becomes
    /// one address per IP the name resolves to now. A name that does not
    /// resolve stays as given, so connecting to it reports why.
    ///
    /// ```
    /// use switchboard_client::RegistryAddrs;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), switchboard_client::ConnectError> {
    /// let addrs = RegistryAddrs::parse("localhost:7600")?;
    /// assert!(addrs.resolve().await.contains(&"http://127.0.0.1:7600".to_owned()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resolve(&self) -> Vec<String> {
        let mut resolved = Vec::new();
        for entry in &self.entries {
            for address in expand(entry).await {
                if !resolved.contains(&address) {
                    resolved.push(address);
                }
            }
        }
        resolved
    }
}

impl fmt::Debug for RegistryAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAddrs")
            .field("entries", &self.entries)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl std::str::FromStr for RegistryAddrs {
    type Err = ConnectError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::parse(list)
    }
}

impl fmt::Display for RegistryAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given.join(","))
    }
}

/// One entry's addresses: itself when its host is an IP literal, an
/// `https` name, or a name that does not resolve.
async fn expand(entry: &str) -> Vec<String> {
    let Ok(uri) = entry.parse::<Uri>() else { return vec![entry.to_owned()] };
    let Some(host) = uri.host() else { return vec![entry.to_owned()] };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if uri.scheme_str() != Some("http") || literal.parse::<IpAddr>().is_ok() {
        return vec![entry.to_owned()];
    }
    let port = uri.port_u16().unwrap_or(80);
    match tokio::net::lookup_host((host, port)).await {
        Ok(found) => {
            let mut addresses: Vec<String> =
                found.map(|addr: SocketAddr| format!("http://{addr}")).collect();
            addresses.dedup();
            if addresses.is_empty() { vec![entry.to_owned()] } else { addresses }
        }
        Err(error) => {
            tracing::debug!(%entry, %error, "registry name does not resolve");
            vec![entry.to_owned()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_uris_in_order_without_duplicates() {
        let addrs = RegistryAddrs::parse("a:1, https://b:2 ,a:1").unwrap();
        assert_eq!(addrs.entries(), ["http://a:1", "https://b:2"]);
    }

    #[test]
    fn a_bad_entry_is_named() {
        let cases = [
            ("a:1,,b:2", "bad registry address \"\": empty entry in the list \"a:1,,b:2\""),
            ("a:1,ftp://b:2", "bad registry address \"ftp://b:2\": the scheme must be http"),
            ("", "bad registry address \"\": empty entry"),
            ("a:1,b c:2", "bad registry address \"b c:2\""),
        ];
        for (list, expected) in cases {
            let error = RegistryAddrs::parse(list).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{list:?}: {error}");
        }
    }

    #[tokio::test]
    async fn ip_literals_and_https_names_are_kept_as_given() {
        let addrs = RegistryAddrs::parse("127.0.0.1:1,[::1]:2,https://localhost:3").unwrap();
        assert_eq!(
            addrs.resolve().await,
            ["http://127.0.0.1:1", "http://[::1]:2", "https://localhost:3"]
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_stays() {
        let addrs = RegistryAddrs::parse("no-such-host.invalid:7600").unwrap();
        assert_eq!(addrs.resolve().await, ["http://no-such-host.invalid:7600"]);
    }
}
