//! How to reach etcd.

use std::time::Duration;

use switchboard_tls::{ClientTls, ClientTlsConfig};

use crate::error::{EtcdError, EtcdResult};

/// Where etcd is and how to talk to it.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client endpoints (`host:port`, `http://host:port` or
    /// `https://host:port`); calls are balanced over those that answer.
    pub endpoints: Vec<String>,
    /// User name and password, when etcd has authentication enabled: the
    /// client exchanges them for a token (etcd's `Authenticate`) and
    /// renews it when etcd says it expired.
    pub user: Option<(String, String)>,
    /// TLS to every endpoint (the CA that signed the members' certificates
    /// and, for etcd's `--client-cert-auth`, a client certificate). `None`:
    /// plaintext, unless an endpoint is `https://` (then the system's
    /// trusted roots verify the members).
    pub tls: Option<ClientTls>,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Bound on one unary call (streams are unbounded).
    pub request_timeout: Duration,
}

/// The endpoints as URLs and whether they are dialled over TLS.
#[derive(Debug)]
pub(crate) struct Urls {
    /// Each endpoint as configured, and its URL.
    pub urls: Vec<(String, String)>,
    /// The TLS configuration, when the endpoints are `https://`.
    pub tls: Option<ClientTls>,
}

// === impl EtcdConfig ===

impl EtcdConfig {
    /// Plain-text connections to `endpoints`, no authentication, 5 s bounds.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            user: None,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// The same config, authenticating as `name`.
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// The same config, over TLS with `tls` to every endpoint.
    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Whether connections are TLS: a configuration is given or an
    /// endpoint is `https://`.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some() || self.endpoints.iter().any(|e| e.trim().starts_with("https://"))
    }

    /// Checks the endpoints against each other and the TLS setting without
    /// connecting: one scheme for all, and none `http://` with TLS on.
    ///
    /// ```
    /// use switchboard_etcd::EtcdConfig;
    ///
    /// assert!(EtcdConfig::new(["127.0.0.1:2379", "http://127.0.0.1:2381"]).validate().is_ok());
    /// let mixed = EtcdConfig::new(["https://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    /// assert!(mixed.validate().unwrap_err().to_string().contains("http://10.0.0.2:2379"));
    /// ```
    pub fn validate(&self) -> EtcdResult<()> {
        let tls = self.uses_tls();
        for endpoint in &self.endpoints {
            let trimmed = endpoint.trim();
            if tls && trimmed.starts_with("http://") {
                return Err(EtcdError::Config(format!(
                    "endpoint {endpoint:?} is plaintext http:// but the others use TLS \
                     (https:// or an etcd TLS setting): give every endpoint as https:// or host:port"
                )));
            }
            if let Some((scheme, _)) = trimmed.split_once("://")
                && scheme != "http"
                && scheme != "https"
            {
                return Err(EtcdError::Config(format!(
                    "endpoint {endpoint:?}: scheme {scheme:?} is not http or https"
                )));
            }
        }
        Ok(())
    }

    /// Each endpoint as a URL (`https://` added when no scheme is given and
    /// TLS is on, `http://` otherwise), with the TLS configuration to dial
    /// them with.
    pub(crate) fn urls(&self) -> EtcdResult<Urls> {
        self.validate()?;
        let tls = match &self.tls {
            Some(tls) => Some(tls.clone()),
            None if self.uses_tls() => Some(
                ClientTls::load(&ClientTlsConfig::default())
                    .map_err(|e| EtcdError::Config(format!("tls with the system's roots: {e}")))?,
            ),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let urls = self
            .endpoints
            .iter()
            .map(|endpoint| {
                let trimmed = endpoint.trim();
                let url = if trimmed.contains("://") {
                    trimmed.to_owned()
                } else {
                    format!("{scheme}://{trimmed}")
                };
                (endpoint.clone(), url)
            })
            .collect();
        Ok(Urls { urls, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(config: &EtcdConfig) -> Vec<String> {
        config.urls().unwrap().urls.into_iter().map(|(_, url)| url).collect()
    }

    #[test]
    fn endpoints_without_a_scheme_are_http_unless_tls_is_on() {
        let plain = EtcdConfig::new(["127.0.0.1:2379", "http://127.0.0.1:2381"]);
        assert!(!plain.uses_tls());
        assert_eq!(urls(&plain), ["http://127.0.0.1:2379", "http://127.0.0.1:2381"]);
        assert!(plain.urls().unwrap().tls.is_none());

        let dir = tempfile::tempdir().unwrap();
        let dev = switchboard_tls::dev::generate(dir.path(), &[], &[]).unwrap();
        let tls = ClientTls::load(&dev.client_config("")).unwrap();
        let secure = EtcdConfig::new(["127.0.0.1:2379", "https://127.0.0.1:2381"]).with_tls(tls);
        assert!(secure.uses_tls());
        assert_eq!(urls(&secure), ["https://127.0.0.1:2379", "https://127.0.0.1:2381"]);
    }

    #[test]
    fn one_https_endpoint_turns_tls_on_for_every_endpoint() {
        let config = EtcdConfig::new(["https://etcd-0:2379", "etcd-1:2379"]);
        assert!(config.uses_tls());
        assert_eq!(urls(&config), ["https://etcd-0:2379", "https://etcd-1:2379"]);
    }

    #[test]
    fn mixed_schemes_and_unknown_schemes_are_refused_naming_the_endpoint() {
        let mixed = EtcdConfig::new(["https://etcd-0:2379", "http://etcd-1:2379"]);
        let error = mixed.validate().unwrap_err().to_string();
        assert!(error.contains("\"http://etcd-1:2379\" is plaintext"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        let dev = switchboard_tls::dev::generate(dir.path(), &[], &[]).unwrap();
        let tls = ClientTls::load(&dev.client_config("")).unwrap();
        let plain_with_tls = EtcdConfig::new(["http://etcd-0:2379"]).with_tls(tls);
        assert!(plain_with_tls.validate().is_err());

        let unknown = EtcdConfig::new(["unix://etcd.sock"]);
        let error = unknown.validate().unwrap_err().to_string();
        assert!(error.contains("\"unix\" is not http or https"), "{error}");
    }
}
