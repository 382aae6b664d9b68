//! How to reach etcd.

use std::time::Duration;

/// Where etcd is and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client endpoints (`host:port` or `http://host:port`); calls are
    /// balanced over those that answer.
    pub endpoints: Vec<String>,
    /// User name and password, when etcd has authentication enabled: the
    /// client exchanges them for a token (etcd's `Authenticate`) and
    /// renews it when etcd says it expired.
    pub user: Option<(String, String)>,
    /// Bound on establishing one connection.
    pub connect_timeout: Duration,
    /// Bound on one unary call (streams are unbounded).
    pub request_timeout: Duration,
}

// === impl EtcdConfig ===

impl EtcdConfig {
    /// Plain-text connections to `endpoints`, no authentication, 5 s bounds.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            user: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// The same config, authenticating as `name`.
    pub fn with_user(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((name.into(), password.into()));
        self
    }

    /// Each endpoint as a URL (`http://` added when no scheme is given).
    pub(crate) fn urls(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.endpoints.iter().map(|endpoint| {
            let trimmed = endpoint.trim();
            let url = if trimmed.contains("://") {
                trimmed.to_owned()
            } else {
                format!("http://{trimmed}")
            };
            (endpoint.clone(), url)
        })
    }
}
