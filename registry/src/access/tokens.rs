//! The in-memory index of every token, by the hash of its secret (one hash
//! map lookup per authenticated call), written through to the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use prost_types::Timestamp;
use switchboard_proto::v1::TokenInfo;
use tokio_util::sync::CancellationToken;

use crate::error::{RegistryError, RegistryResult};
use crate::store::StoredToken;

/// Every token the store holds.
#[derive(Debug, Default)]
pub struct TokenIndex {
    by_hash: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
}

/// One token: its record and the signal that ends its streams.
#[derive(Debug)]
pub struct Entry {
    /// SHA-256 of the secret.
    pub hash: [u8; 32],
    /// The record.
    pub info: Arc<TokenInfo>,
    /// Cancelled on revocation; every stream opened with the token holds a
    /// clone, so one cancel ends them all.
    pub revoked: CancellationToken,
}

// === impl TokenIndex ===

impl TokenIndex {
    /// An index of the stored tokens.
    pub fn new(stored: Vec<StoredToken>) -> Self {
        let index = Self::default();
        for token in stored {
            index.insert(token);
        }
        index
    }

    /// True when no token was ever stored.
    pub fn is_empty(&self) -> bool {
        self.by_hash.read().is_empty()
    }

    /// Adds or replaces a token; a revoked record cancels its streams.
    pub fn insert(&self, token: StoredToken) {
        let mut by_hash = self.by_hash.write();
        let revoked = by_hash
            .get(&token.hash)
            .map_or_else(CancellationToken::new, |entry| entry.revoked.clone());
        if token.info.revoked_at.is_some() {
            revoked.cancel();
        }
        let entry = Entry { hash: token.hash, info: Arc::new(token.info), revoked };
        by_hash.insert(token.hash, Arc::new(entry));
    }

    /// Whether a token with this hash is stored here (active or not).
    pub fn knows(&self, hash: &[u8; 32]) -> bool {
        self.by_hash.read().contains_key(hash)
    }

    /// The active token with this hash, or why there is none.
    pub fn active(&self, hash: &[u8; 32]) -> RegistryResult<Arc<Entry>> {
        let entry = self
            .by_hash
            .read()
            .get(hash)
            .cloned()
            .ok_or_else(|| RegistryError::Unauthenticated("unknown token".into()))?;
        if entry.info.revoked_at.is_some() || entry.revoked.is_cancelled() {
            return Err(RegistryError::Unauthenticated("token revoked".into()));
        }
        if is_expired(&entry.info, SystemTime::now()) {
            return Err(RegistryError::Unauthenticated("token expired".into()));
        }
        Ok(entry)
    }

    /// Every token, sorted by creation then id; inactive ones only when asked.
    pub fn list(&self, include_inactive: bool) -> Vec<TokenInfo> {
        let now = SystemTime::now();
        let mut tokens: Vec<TokenInfo> = self
            .by_hash
            .read()
            .values()
            .filter(|entry| include_inactive || is_active(&entry.info, now))
            .map(|entry| (*entry.info).clone())
            .collect();
        tokens.sort_by(|a, b| {
            let at = |t: &TokenInfo| t.created_at.map(|c| (c.seconds, c.nanos));
            at(a).cmp(&at(b)).then_with(|| a.id.cmp(&b.id))
        });
        tokens
    }

    /// The token named by `key`: its id, or its name when exactly one
    /// token not yet revoked has that name.
    pub fn find(&self, key: &str) -> RegistryResult<Arc<Entry>> {
        let by_hash = self.by_hash.read();
        if let Some(entry) = by_hash.values().find(|entry| entry.info.id == key) {
            return Ok(entry.clone());
        }
        let named: Vec<&Arc<Entry>> = by_hash
            .values()
            .filter(|entry| entry.info.name == key && entry.info.revoked_at.is_none())
            .collect();
        match named.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(RegistryError::TokenNotFound(key.to_owned())),
            many => Err(RegistryError::invalid(
                "id",
                format!("{} tokens are named {key:?}: give the token id", many.len()),
            )),
        }
    }
}

/// True when the token has an expiry at or before `now`.
pub fn is_expired(info: &TokenInfo, now: SystemTime) -> bool {
    info.expires_at.and_then(|at| SystemTime::try_from(at).ok()).is_some_and(|at| at <= now)
}

/// Neither revoked nor expired.
pub fn is_active(info: &TokenInfo, now: SystemTime) -> bool {
    info.revoked_at.is_none() && !is_expired(info, now)
}

/// The wall clock as a protobuf timestamp.
pub fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}
