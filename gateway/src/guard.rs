//! DNS-rebinding protection for requests the gateway answers itself:
//! `Host` must be loopback or configured, and a browser `Origin`, when
//! present, loopback (any port) or configured (`*` accepts any).

use axum::http::HeaderMap;

pub(crate) const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]"];
pub(crate) const LOOPBACK_ORIGINS: &[&str] =
    &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// The accepted hosts and origins: loopback plus the configured ones. The
/// registry's admin port applies the same rule to its dashboard.
///
/// ```
/// use switchboard_gateway::Guard;
///
/// let guard = Guard::new(&["mesh.internal".into()], &[]);
/// let mut headers = axum::http::HeaderMap::new();
/// headers.insert("host", "mesh.internal:7700".parse().unwrap());
/// assert_eq!(guard.refusal(&headers), None);
/// headers.insert("host", "evil.example".parse().unwrap());
/// assert_eq!(guard.refusal(&headers).unwrap(), r#"forbidden: host "evil.example" is not allowed"#);
/// ```
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Option<Vec<String>>,
    origins: Option<Vec<String>>,
}

// === impl Guard ===

impl Guard {
    /// Loopback plus `allowed_hosts` and `allowed_origins`; `*` in either
    /// list turns that check off.
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let list = |configured: &[String], loopback: &[&str]| {
            (!configured.iter().any(|h| h == "*")).then(|| {
                loopback
                    .iter()
                    .map(|h| (*h).to_owned())
                    .chain(configured.iter().map(|h| h.to_ascii_lowercase()))
                    .collect()
            })
        };
        Self {
            hosts: list(allowed_hosts, LOOPBACK_HOSTS),
            origins: list(allowed_origins, LOOPBACK_ORIGINS),
        }
    }

    /// Why the request is refused (HTTP 403), if it is.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(hosts) = &self.hosts {
            let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
            let host = host.to_ascii_lowercase();
            let bare = strip_port(&host);
            if !hosts.iter().any(|h| *h == host || h == bare) {
                return Some(format!("forbidden: host {host:?} is not allowed"));
            }
        }
        if let (Some(origins), Some(origin)) = (&self.origins, headers.get("origin")) {
            let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
            if !origins.iter().any(|allowed| origin_matches(allowed, &origin)) {
                return Some(format!("forbidden: origin {origin:?} is not allowed"));
            }
        }
        None
    }
}

fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map_or(authority, |(h, _)| &authority[..=h.len()]);
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

fn origin_matches(allowed: &str, origin: &str) -> bool {
    match allowed.strip_suffix(":*") {
        Some(prefix) => origin
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)),
        None => allowed == origin,
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("host", host.parse().unwrap());
        if let Some(origin) = origin {
            headers.insert("origin", origin.parse().unwrap());
        }
        headers
    }

    #[test]
    fn loopback_passes_and_lookalikes_do_not() {
        let guard = Guard::new(&[], &[]);
        assert_eq!(guard.refusal(&headers("127.0.0.1:7700", None)), None);
        assert_eq!(guard.refusal(&headers("[::1]:7700", Some("http://localhost:6274"))), None);
        for origin in ["http://evil.example", "https://127.0.0.1.evil.example", "null"] {
            assert!(guard.refusal(&headers("127.0.0.1:1", Some(origin))).is_some(), "{origin}");
        }
        assert!(guard.refusal(&headers("evil.example", None)).is_some());
    }
}
