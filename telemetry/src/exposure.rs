//! The safe default posture: a listener on an address other hosts can reach
//! must be protected, or the operator must say in so many words that it is
//! not.
//!
//! Whoever reaches an unprotected control-plane port can register an agent
//! that claims any capability, or overwrite and remove anybody else's. So a
//! loopback bind (`127.0.0.0/8`, `::1`) starts with no setup, while any
//! other address, the wildcards `0.0.0.0` and `::` included, needs TLS and
//! authentication. Without them the process refuses to start and says how
//! to fix it, unless `--insecure-allow-plaintext` (or
//! `SWITCHBOARD_INSECURE_ALLOW_PLAINTEXT`) is given: then it starts, logs a
//! warning and sets `switchboard_insecure_listener{listener="…"}` to 1 on
//! its `/metrics`, so an unprotected port is visible to monitoring long
//! after the log line has scrolled away.
//!
//! Every listener of every component goes through [`check_listener`], so the
//! rule and its message exist once.

use std::net::SocketAddr;
use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::TelemetryError;

/// The flag that accepts an unprotected non-loopback listener.
pub const ALLOW_PLAINTEXT_FLAG: &str = "--insecure-allow-plaintext";
/// Its environment variable.
pub const ALLOW_PLAINTEXT_ENV: &str = "SWITCHBOARD_INSECURE_ALLOW_PLAINTEXT";

/// Label of the insecure-listener gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ListenerLabel {
    /// Which listener: `grpc`, `admin`, `gateway`, `agent`, `bridge`.
    pub(crate) listener: String,
}

/// Process-wide, like the process metrics it is encoded with: a listener is
/// a property of the process, whichever component's registry renders it.
pub(crate) static INSECURE_LISTENERS: LazyLock<Family<ListenerLabel, Gauge>> =
    LazyLock::new(Family::default);

/// What protects a listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protection {
    /// Connections are TLS.
    pub tls: bool,
    /// Callers must authenticate.
    pub auth: bool,
}

/// Checks that `listener` on `addr` may start: loopback always may; any
/// other address needs TLS and auth, or `allow_plaintext`, in which case a
/// warning is logged and the insecure-listener gauge is set.
///
/// ```
/// use switchboard_telemetry::exposure::{Protection, check_listener};
///
/// let local = "127.0.0.1:7600".parse().unwrap();
/// assert!(check_listener("grpc", local, Protection::default(), false).is_ok());
/// let open = "0.0.0.0:7600".parse().unwrap();
/// let refused = check_listener("grpc", open, Protection::default(), false).unwrap_err();
/// assert!(refused.to_string().contains("--insecure-allow-plaintext"));
/// ```
pub fn check_listener(
    listener: &str,
    addr: SocketAddr,
    protection: Protection,
    allow_plaintext: bool,
) -> Result<(), TelemetryError> {
    if addr.ip().is_loopback() || (protection.tls && protection.auth) {
        return Ok(());
    }
    let missing = match (protection.tls, protection.auth) {
        (false, false) => "TLS and auth",
        (false, true) => "TLS",
        _ => "auth",
    };
    if !allow_plaintext {
        return Err(TelemetryError::InsecureListener {
            listener: listener.to_owned(),
            addr,
            missing,
        });
    }
    tracing::warn!(
        listener,
        %addr,
        missing,
        "listening on a non-loopback address without {missing} ({ALLOW_PLAINTEXT_FLAG}): \
         anyone who can reach it can change the mesh"
    );
    INSECURE_LISTENERS.get_or_create(&ListenerLabel { listener: listener.to_owned() }).set(1);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_starts_and_wildcards_are_not_loopback() {
        let none = Protection::default();
        for local in ["127.0.0.1:0", "127.1.2.3:7600", "[::1]:7600"] {
            assert!(check_listener("grpc", addr(local), none, false).is_ok(), "{local}");
        }
        for open in ["0.0.0.0:7600", "[::]:7600", "10.1.2.3:7600", "[2001:db8::1]:7600"] {
            let error = check_listener("grpc", addr(open), none, false).unwrap_err().to_string();
            assert!(error.contains(open), "{error}");
            for named in ["--tls-cert", "--tls-key", "--auth", "--insecure-allow-plaintext"] {
                assert!(error.contains(named), "{error} should name {named}");
            }
        }
    }

    #[test]
    fn protection_or_the_override_lets_it_start_and_the_override_is_counted() {
        let open = addr("0.0.0.0:7700");
        let both = Protection { tls: true, auth: true };
        assert!(check_listener("unit-both", open, both, false).is_ok());
        let tls_only = Protection { tls: true, auth: false };
        let error = check_listener("unit-tls", open, tls_only, false).unwrap_err().to_string();
        assert!(error.contains("without auth"), "{error}");
        assert!(check_listener("unit-open", open, Protection::default(), true).is_ok());
        let label = ListenerLabel { listener: "unit-open".into() };
        assert_eq!(INSECURE_LISTENERS.get_or_create(&label).get(), 1);
    }
}
