//! OAuth 2.1 access tokens: JWTs signed by the authorization server,
//! checked against its JWKS.
//!
//! The key set is fetched (or read from a file) on first use, refetched
//! when older than `jwks_max_age`, and at once when a token names a key id
//! the set does not have (the issuer rotated its keys) — but at most once
//! per `jwks_min_refresh`, so a flood of forged key ids cannot turn the
//! gateway into a load generator against the issuer. Symmetric (`oct`)
//! keys in a key set are ignored: a public JWKS must never let anyone
//! sign.
//!
//! A validated token is cached by its SHA-256 until it expires, so a
//! client sending the same token on every request costs one hash and one
//! map lookup; the cache is bounded ([`MAX_CACHED`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::Instant;

use super::{AuthFailure, AuthMethod, Principal};

/// Most validated tokens remembered at once.
pub const MAX_CACHED: usize = 10_000;

/// Where the issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS URL (`https://issuer/.well-known/jwks.json`).
    Url(String),
    /// A JWKS document on disk (reread when the cache is refreshed).
    File(PathBuf),
}

/// OAuth 2.1 resource-server settings.
///
/// ```
/// use switchboard_gateway::access::{JwksSource, OAuthConfig};
///
/// let oauth = OAuthConfig::new(
///     "https://gateway.example.com/mcp",
///     "https://auth.example.com",
///     JwksSource::Url("https://auth.example.com/jwks.json".into()),
/// );
/// assert_eq!(oauth.authorization_servers, ["https://auth.example.com"]);
/// assert_eq!(oauth.validate(), Ok(()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// This gateway's resource URL (`https://gateway.example.com/mcp`): the
    /// audience every token must name, and the `resource` of the metadata.
    pub resource: String,
    /// The issuer (`iss`) tokens must carry.
    pub issuer: String,
    /// Authorization servers named in the protected-resource metadata
    /// (default: the issuer).
    pub authorization_servers: Vec<String>,
    /// The issuer's keys.
    pub jwks: JwksSource,
    /// Clock skew accepted on `exp` and `nbf`.
    pub leeway: Duration,
    /// Refetch the key set when it is older than this.
    pub jwks_max_age: Duration,
    /// Least time between two fetches caused by unknown key ids.
    pub jwks_min_refresh: Duration,
    /// The claim holding the caller's groups (an array of strings).
    pub groups_claim: String,
}

// === impl OAuthConfig ===

impl OAuthConfig {
    /// Settings with default leeway (30 s), key-set age (5 min) and
    /// refresh spacing (10 s).
    pub fn new(resource: &str, issuer: &str, jwks: JwksSource) -> Self {
        Self {
            resource: resource.to_owned(),
            issuer: issuer.to_owned(),
            authorization_servers: vec![issuer.to_owned()],
            jwks,
            leeway: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(300),
            jwks_min_refresh: Duration::from_secs(10),
            groups_claim: "groups".to_owned(),
        }
    }

    /// Checks every setting; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        let url = |field: &str, value: &str| {
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(())
            } else {
                Err(format!("oauth {field}: {value:?} is not an http(s) URL"))
            }
        };
        url("resource", &self.resource)?;
        if self.issuer.is_empty() {
            return Err("oauth issuer: must not be empty".into());
        }
        for server in &self.authorization_servers {
            url("authorization server", server)?;
        }
        if let JwksSource::Url(jwks) = &self.jwks {
            url("jwks", jwks)?;
        }
        Ok(())
    }
}

/// A validated token's principal and `exp` (unix seconds).
type Validated = (Arc<Principal>, u64);

/// One usable key of the set.
struct Key {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    /// Keys without a `kid`, tried for tokens without one.
    unnamed: Vec<Arc<Key>>,
    fetched: Option<Instant>,
}

/// Validates access tokens for one issuer and audience.
pub(crate) struct JwtVerifier {
    config: OAuthConfig,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    /// When the last fetch started (for `jwks_min_refresh`).
    last_fetch: Mutex<Option<Instant>>,
    /// Fetches one at a time.
    fetching: tokio::sync::Mutex<()>,
    /// Validated tokens by hash, with their `exp`.
    validated: Mutex<HashMap<[u8; 32], Validated>>,
}

// === impl JwtVerifier ===

impl JwtVerifier {
    pub(crate) fn new(config: OAuthConfig) -> Self {
        Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            keys: ArcSwap::from_pointee(KeySet::default()),
            last_fetch: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            validated: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The principal `token` proves, or why not.
    pub(crate) async fn verify(
        &self,
        token: &str,
        hash: &[u8; 32],
    ) -> Result<Arc<Principal>, AuthFailure> {
        let now = unix_now();
        if let Some((principal, exp)) = self.validated.lock().get(hash)
            && now <= exp.saturating_add(self.config.leeway.as_secs())
        {
            return Ok(principal.clone());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        let kid = header.kid.unwrap_or_default();
        let stale =
            self.keys.load().fetched.is_none_or(|at| at.elapsed() >= self.config.jwks_max_age);
        if stale {
            self.refresh().await;
        }
        let mut key = self.find(&kid, header.alg);
        if key.is_none() && self.refresh().await {
            key = self.find(&kid, header.alg);
        }
        let key = key.ok_or(AuthFailure::UnknownKey)?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = key.algorithms.clone();
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[&self.config.resource]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
                .map_err(|error| cause_of(error.kind()))?;
        let claims = data.claims;
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        let principal = Arc::new(Principal::new(
            AuthMethod::Jwt,
            subject,
            scopes_of(&claims),
            strings(claims.get(&self.config.groups_claim)),
        ));
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
        let mut validated = self.validated.lock();
        if validated.len() >= MAX_CACHED {
            validated.retain(|_, (_, exp)| *exp >= now);
            if validated.len() >= MAX_CACHED {
                validated.clear();
            }
        }
        validated.insert(*hash, (principal.clone(), exp));
        Ok(principal)
    }

    fn find(&self, kid: &str, alg: Algorithm) -> Option<Arc<Key>> {
        let keys = self.keys.load();
        if kid.is_empty() {
            return keys.unnamed.iter().find(|k| k.algorithms.contains(&alg)).cloned();
        }
        keys.by_kid.get(kid).filter(|k| k.algorithms.contains(&alg)).cloned()
    }

    /// Refetches the key set unless the last fetch started within
    /// `jwks_min_refresh`. True when a new set is in.
    async fn refresh(&self) -> bool {
        let _one = self.fetching.lock().await;
        {
            let mut last = self.last_fetch.lock();
            if last.is_some_and(|at| at.elapsed() < self.config.jwks_min_refresh) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(set) => {
                tracing::debug!(keys = set.by_kid.len() + set.unnamed.len(), "jwks refreshed");
                self.keys.store(Arc::new(set));
                true
            }
            Err(error) => {
                tracing::warn!(%error, "jwks not refreshed; keeping the keys in hand");
                false
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let text = match &self.config.jwks {
            JwksSource::Url(url) => {
                let response =
                    self.http.get(url).send().await.map_err(|e| format!("jwks {url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("jwks {url}: HTTP {}", response.status()));
                }
                response.text().await.map_err(|e| format!("jwks {url}: {e}"))?
            }
            JwksSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("jwks {}: {e}", path.display()))?,
        };
        parse_key_set(&text)
    }
}

/// The usable keys of a JWKS document.
fn parse_key_set(text: &str) -> Result<KeySet, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("jwks: {e}"))?;
    let mut keys = KeySet { fetched: Some(Instant::now()), ..KeySet::default() };
    for jwk in &set.keys {
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        let algorithms = match jwk.common.key_algorithm.map(Algorithm::try_from) {
            Some(Ok(alg)) => vec![alg],
            Some(Err(_)) => continue,
            None => match &jwk.algorithm {
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    jsonwebtoken::jwk::EllipticCurve::P256 => vec![Algorithm::ES256],
                    jsonwebtoken::jwk::EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => continue,
                },
                _ => key.family().algorithms().to_vec(),
            },
        };
        if algorithms.iter().any(|a| a.family() == AlgorithmFamily::Hmac) {
            continue;
        }
        let key = Arc::new(Key { key, algorithms });
        match &jwk.common.key_id {
            Some(kid) => {
                keys.by_kid.insert(kid.clone(), key);
            }
            None => keys.unnamed.push(key),
        }
    }
    Ok(keys)
}

/// Scopes from `scope` (space-separated, RFC 9068) or `scp` (array or string).
fn scopes_of(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    let from = |value: Option<&Value>| match value {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        other => strings(other),
    };
    let mut scopes: Vec<String> = from(claims.get("scope"));
    if scopes.is_empty() {
        scopes = from(claims.get("scp"));
    }
    scopes
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn cause_of(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => AuthFailure::BadSignature,
        ErrorKind::MissingRequiredClaim(_) => AuthFailure::MissingClaim,
        _ => AuthFailure::Malformed,
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_keys_in_a_key_set_are_never_used() {
        let text = r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        let set = parse_key_set(text).unwrap();
        assert!(!set.by_kid.contains_key("h"));
        assert_eq!(set.by_kid.get("e").map(|k| k.algorithms.clone()), Some(vec![Algorithm::EdDSA]));
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims =
            |json: &str| serde_json::from_str::<serde_json::Map<String, Value>>(json).unwrap();
        assert_eq!(
            scopes_of(&claims(r#"{"scope":"tools:call prompts:get"}"#)),
            ["tools:call", "prompts:get"]
        );
        assert_eq!(scopes_of(&claims(r#"{"scp":["tools:call"]}"#)), ["tools:call"]);
        assert!(scopes_of(&claims("{}")).is_empty());
    }
}
