//! Token secrets: 256 random bits behind a `sbt_` prefix (so a leaked secret
//! is recognisable in logs and by secret scanners), kept only as SHA-256.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tonic::metadata::MetadataMap;

use crate::error::{RegistryError, RegistryResult};

/// Prefix of every secret the registry issues.
pub const SECRET_PREFIX: &str = "sbt_";

/// Random bytes per secret.
const SECRET_BYTES: usize = 32;

/// A fresh secret: `sbt_` and 43 URL-safe base64 characters.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a secret: the only form the registry keeps.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A fresh token id: 16 hex digits, random, unrelated to the secret.
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The secret of an `authorization: Bearer <secret>` header; `None` when
/// the header is absent.
pub fn bearer(metadata: &MetadataMap) -> RegistryResult<Option<String>> {
    let Some(value) = metadata.get("authorization") else { return Ok(None) };
    let malformed = || {
        RegistryError::Unauthenticated(
            "malformed authorization metadata: expected `Bearer <token>`".into(),
        )
    };
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, secret) = text.trim().split_once(' ').ok_or_else(malformed)?;
    let secret = secret.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || secret.is_empty() {
        return Err(malformed());
    }
    Ok(Some(secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn bearer_header_is_parsed_or_refused() {
        let mut metadata = MetadataMap::new();
        assert_eq!(bearer(&metadata).unwrap(), None);
        metadata.insert("authorization", "Bearer sbt_x".parse().unwrap());
        assert_eq!(bearer(&metadata).unwrap().as_deref(), Some("sbt_x"));
        metadata.insert("authorization", "Basic abc".parse().unwrap());
        let error = bearer(&metadata).unwrap_err().to_string();
        assert!(error.contains("malformed authorization"), "{error}");
    }
}
