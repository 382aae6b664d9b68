//! What an agent learns about the caller: a `_meta` entry with the
//! principal, subject and scopes — and, so the agent can trust it, either
//! an HMAC-signed copy (a compact HS256 JWT the agent verifies with the
//! shared key, audience = the agent's endpoint, valid 60 s) or nothing
//! extra, sent only to agents reached over TLS (where the transport
//! authenticates the gateway). The caller's own token is never part of it.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use super::Principal;

/// The `_meta` key of the caller's identity.
pub const CALLER_META: &str = "io.switchboard/caller";
/// The `_meta` key of the signed identity (`signed` mode).
pub const CALLER_TOKEN_META: &str = "io.switchboard/callerToken";

/// How the caller's identity reaches agents.
#[derive(Clone, Default)]
pub enum IdentityMode {
    /// Not at all (the default).
    #[default]
    Off,
    /// With an HS256 signature over it, keyed by this secret (≥ 32 bytes).
    Signed {
        /// The HMAC key agents share with the gateway.
        key: Vec<u8>,
    },
    /// Unsigned, and only to agents whose endpoint is `https://` (the
    /// mTLS link authenticates the gateway).
    TlsOnly,
}

impl std::fmt::Debug for IdentityMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Off => "Off",
            Self::Signed { .. } => "Signed",
            Self::TlsOnly => "TlsOnly",
        })
    }
}

pub(crate) enum Identity {
    Off,
    Signed(Box<EncodingKey>),
    TlsOnly,
}

// === impl Identity ===

impl Identity {
    pub(crate) fn new(mode: &IdentityMode) -> Self {
        match mode {
            IdentityMode::Off => Self::Off,
            IdentityMode::Signed { key } => match EncodingKey::from_secret(key) {
                Ok(key) => Self::Signed(Box::new(key)),
                Err(error) => {
                    tracing::error!(%error, "caller identity key unusable; identity not sent");
                    Self::Off
                }
            },
            IdentityMode::TlsOnly => Self::TlsOnly,
        }
    }

    pub(crate) fn meta(&self, principal: &Principal, endpoint: &str) -> Vec<(&'static str, Value)> {
        let plain = || {
            serde_json::json!({
                "principal": principal.id,
                "sub": principal.subject,
                "scopes": principal.scopes,
            })
        };
        match self {
            Self::Off => Vec::new(),
            Self::TlsOnly if endpoint.starts_with("https://") => vec![(CALLER_META, plain())],
            Self::TlsOnly => Vec::new(),
            Self::Signed(key) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let claims = serde_json::json!({
                    "iss": "switchboard-gateway",
                    "aud": endpoint,
                    "sub": principal.subject,
                    "principal": principal.id,
                    "scopes": principal.scopes,
                    "iat": now,
                    "exp": now + 60,
                });
                match jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key) {
                    Ok(token) => vec![(CALLER_META, plain()), (CALLER_TOKEN_META, token.into())],
                    Err(error) => {
                        tracing::warn!(%error, "caller identity not signed; not sent");
                        Vec::new()
                    }
                }
            }
        }
    }
}
