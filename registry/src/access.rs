//! Identity and access control: who is calling, and whether it may.
//!
//! With auth off (the default) every caller is `anonymous` with every right,
//! records get no owner, and nothing else changes. With auth on, every RPC
//! of the Registry, Heartbeat, Watch and Access services authenticates its
//! caller first:
//!
//! - `authorization: Bearer <secret>` metadata names a token the registry
//!   issued. The registry keeps only the SHA-256 of each secret, durably in
//!   the store's token keyspace, and an in-memory index by hash, so a call
//!   costs one hash and one map lookup. An unknown, expired or revoked
//!   secret is `UNAUTHENTICATED` saying which.
//! - Without a token, a verified client certificate (the names a TLS
//!   listener puts in the request as [`PeerNames`]) is the identity
//!   `cert:<first name>`, role agent, scoped to that name (see
//!   [`Caller::from_certificate`]).
//! - With neither, the call is `UNAUTHENTICATED` ("missing credentials").
//!
//! Tokens with the same name are one identity (`token:<name>`), so a token
//! is rotated by issuing a new one with the same name and revoking the old:
//! the agents the name owns stay its own.
//!
//! Revoking a token takes effect at once: the next call with it is refused,
//! and every stream opened with it (heartbeat streams, watches) ends with
//! `UNAUTHENTICATED` "token revoked"; a stream also ends when its token
//! expires. Each token's entry holds one cancellation signal that every
//! stream opened with it clones, so a revocation reaches all of them
//! without any scan.

mod bootstrap;
mod caller;
mod glob;
mod secret;

pub use secret::parse_bearer;
mod tokens;

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use switchboard_proto::v1::{CreateTokenRequest, Role, TokenInfo};
use switchboard_tls::PeerNames;
use tonic::Request;

use crate::error::{RegistryError, RegistryResult};
use crate::store::{Store, StoredToken};
use crate::validate::{is_valid_name, shown};

use tokens::TokenIndex;

pub use caller::{ANONYMOUS, AgentAction, Caller, Claim, role_name};
pub use secret::SECRET_PREFIX;

/// Most patterns or scopes in one token.
const MAX_PATTERNS: usize = 64;

/// Name of the token made at bootstrap.
const BOOTSTRAP_NAME: &str = "bootstrap";

/// Authentication and the token keyspace of one registry.
pub struct Access {
    enabled: bool,
    tokens: TokenIndex,
    /// The writer task owns the store; a registry handle outliving its
    /// shutdown must not keep the store (and its directory lock) open.
    store: Weak<dyn Store>,
}

/// Access settings of a registry.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Authenticate every call and check its role. Off: every caller is
    /// `anonymous` with every right.
    pub enabled: bool,
    /// Where the bootstrap admin token's secret is written (mode 0600) on
    /// the first start with auth on. Unset: `admin.token` in the data
    /// directory of the sled store.
    pub bootstrap_token_file: Option<PathBuf>,
    /// Serve gRPC reflection (open to every caller, like
    /// `grpc.health.v1`). Off: no reflection service at all.
    pub reflection: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { enabled: false, bootstrap_token_file: None, reflection: true }
    }
}

// === impl Access ===

impl Access {
    /// Loads the stored tokens; with auth on and none stored, bootstraps
    /// the first admin token.
    pub(crate) async fn load(config: &AuthConfig, store: Arc<dyn Store>) -> RegistryResult<Self> {
        let stored = if config.enabled { store.load_tokens().await? } else { Vec::new() };
        let access = Self {
            enabled: config.enabled,
            tokens: TokenIndex::new(stored),
            store: Arc::downgrade(&store),
        };
        if config.enabled && access.tokens.is_empty() {
            access.bootstrap(config).await?;
        }
        Ok(access)
    }

    /// A token another replica stored (created, or revoked: its streams
    /// here end).
    pub(crate) fn learn(&self, token: StoredToken) {
        self.tokens.insert(token);
    }

    /// True when calls are authenticated.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The caller of `request`: a bearer token, else a verified client
    /// certificate, else `UNAUTHENTICATED`. Anonymous while auth is off.
    pub fn authenticate<T>(&self, request: &Request<T>) -> RegistryResult<Caller> {
        if !self.enabled {
            return Ok(Caller::anonymous());
        }
        if let Some(secret) = secret::bearer(request.metadata())? {
            return self.authenticate_secret(&secret);
        }
        if let Some(caller) = request.extensions().get::<PeerNames>().and_then(certificate) {
            return Ok(caller);
        }
        Err(RegistryError::Unauthenticated(
            "missing credentials: send `authorization: Bearer <token>` metadata".into(),
        ))
    }

    /// [`authenticate`](Self::authenticate), asking the store for a bearer
    /// token this registry does not know before refusing it: on a store
    /// several replicas share, it may have been created through another
    /// replica a moment ago, before this one's feed brought it. A known
    /// token costs nothing more; an unknown one costs one store read.
    pub async fn authenticate_fresh<T: Sync>(
        &self,
        request: &Request<T>,
    ) -> RegistryResult<Caller> {
        match self.authenticate(request) {
            Err(_) if self.fetch_unknown(request.metadata()).await => self.authenticate(request),
            outcome => outcome,
        }
    }

    /// Learns the token `metadata` carries from the store, when this
    /// registry does not know it; whether it learned one.
    pub async fn fetch_unknown(&self, metadata: &tonic::metadata::MetadataMap) -> bool {
        if !self.enabled {
            return false;
        }
        let Ok(Some(secret)) = secret::bearer(metadata) else { return false };
        let hash = secret::hash(&secret);
        if self.tokens.knows(&hash) {
            return false;
        }
        let Some(store) = self.store.upgrade() else { return false };
        match store.token(&hash).await {
            Ok(Some(token)) => {
                self.learn(token);
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::debug!(%error, "could not look an unknown token up");
                false
            }
        }
    }

    /// The caller holding `secret`.
    pub fn authenticate_secret(&self, secret: &str) -> RegistryResult<Caller> {
        let entry = self.tokens.active(&secret::hash(secret))?;
        Ok(Caller::from_token(entry.info.clone(), entry.revoked.clone()))
    }

    /// Issues a token; returns its record and its secret (shown only here).
    pub async fn create(&self, request: CreateTokenRequest) -> RegistryResult<(TokenInfo, String)> {
        check_create(&request)?;
        let created_at = tokens::now();
        let expires_at = match request.ttl {
            Some(ttl) if ttl.seconds > 0 || ttl.nanos > 0 => {
                let ttl = std::time::Duration::try_from(ttl)
                    .map_err(|e| RegistryError::invalid("ttl", e.to_string()))?;
                let at = std::time::SystemTime::now()
                    .checked_add(ttl)
                    .ok_or_else(|| RegistryError::invalid("ttl", "too long"))?;
                Some(prost_types::Timestamp::from(at))
            }
            _ => None,
        };
        let info = TokenInfo {
            id: secret::new_id(),
            name: request.name,
            role: request.role,
            agent_names: request.agent_names,
            provides: request.provides,
            scopes: request.scopes,
            created_at: Some(created_at),
            expires_at,
            revoked_at: None,
        };
        let secret = secret::new_secret();
        self.put(StoredToken { hash: secret::hash(&secret), info: info.clone() }).await?;
        tracing::info!(token_id = %info.id, name = %info.name, role = role_name(info.role()), "token created");
        Ok((info, secret))
    }

    /// Every token (without secrets); revoked and expired ones when asked.
    pub fn list(&self, include_inactive: bool) -> Vec<TokenInfo> {
        self.tokens.list(include_inactive)
    }

    /// Revokes the token with this id (or unique name): durably, then every
    /// stream opened with it ends. Revoking a revoked token changes nothing.
    pub async fn revoke(&self, key: &str) -> RegistryResult<TokenInfo> {
        if key.is_empty() {
            return Err(RegistryError::invalid("id", "must not be empty"));
        }
        let entry = self.tokens.find(key)?;
        if entry.info.revoked_at.is_some() {
            return Ok((*entry.info).clone());
        }
        let mut info = (*entry.info).clone();
        info.revoked_at = Some(tokens::now());
        self.put(StoredToken { hash: entry.hash, info: info.clone() }).await?;
        tracing::info!(token_id = %info.id, name = %info.name, "token revoked");
        Ok(info)
    }

    async fn put(&self, token: StoredToken) -> RegistryResult<()> {
        let store = self.store.upgrade().ok_or(RegistryError::ShuttingDown)?;
        store.put_token(token.clone()).await?;
        self.tokens.insert(token);
        Ok(())
    }

    async fn bootstrap(&self, config: &AuthConfig) -> RegistryResult<()> {
        let path = config.bootstrap_token_file.as_ref().ok_or_else(|| {
            RegistryError::invalid(
                "bootstrap_token_file",
                "auth is on and the store holds no token: a file for the bootstrap admin \
                 token is required",
            )
        })?;
        let request = CreateTokenRequest {
            name: BOOTSTRAP_NAME.into(),
            role: Role::Admin as i32,
            ..CreateTokenRequest::default()
        };
        check_create(&request)?;
        let secret = secret::new_secret();
        bootstrap::write_secret_file(path, &secret)?;
        let info = TokenInfo {
            id: secret::new_id(),
            name: request.name,
            role: request.role,
            created_at: Some(tokens::now()),
            ..TokenInfo::default()
        };
        self.put(StoredToken { hash: secret::hash(&secret), info: info.clone() }).await?;
        tracing::warn!(
            path = %path.display(),
            token_id = %info.id,
            "auth bootstrap: created the first admin token; its secret is in this file (mode 0600)"
        );
        Ok(())
    }
}

/// The identity of a verified client certificate: its first name.
fn certificate(names: &PeerNames) -> Option<Caller> {
    names.0.first().filter(|name| !name.is_empty()).map(|name| Caller::from_certificate(name))
}

/// Checks a token request; the message names the bad field.
fn check_create(request: &CreateTokenRequest) -> RegistryResult<()> {
    if !is_valid_name(&request.name) {
        return Err(RegistryError::invalid(
            "name",
            format!("{} is not a name ([a-z0-9][a-z0-9_.-]{{0,63}})", shown(&request.name)),
        ));
    }
    let role = Role::try_from(request.role)
        .ok()
        .filter(|role| *role != Role::Unspecified)
        .ok_or_else(|| {
            RegistryError::invalid(
                "role",
                format!("{} is not a role (admin, operator, viewer, agent, client)", request.role),
            )
        })?;
    for (field, patterns, for_role) in [
        ("agent_names", &request.agent_names, Role::Agent),
        ("provides", &request.provides, Role::Agent),
        ("scopes", &request.scopes, Role::Client),
    ] {
        if !patterns.is_empty() && role != for_role {
            return Err(RegistryError::invalid(
                field,
                format!("only {} tokens carry {field}", role_name(for_role)),
            ));
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(RegistryError::invalid(
                field,
                format!("{} entries, at most {MAX_PATTERNS} allowed", patterns.len()),
            ));
        }
        for (i, pattern) in patterns.iter().enumerate() {
            let valid = if field == "scopes" {
                is_valid_scope(pattern)
            } else {
                glob::is_valid_pattern(pattern)
            };
            if !valid {
                return Err(RegistryError::invalid(
                    format!("{field}[{i}]"),
                    format!("{} is not a valid pattern", shown(pattern)),
                ));
            }
        }
    }
    if role == Role::Agent && request.agent_names.is_empty() {
        return Err(RegistryError::invalid(
            "agent_names",
            "an agent token needs at least one agent name (a pattern, `*` for any)",
        ));
    }
    if request.ttl.is_some_and(|ttl| ttl.seconds < 0 || ttl.nanos < 0) {
        return Err(RegistryError::invalid("ttl", "must not be negative"));
    }
    Ok(())
}

/// A gateway scope: `tools:call`, `resources:*`.
fn is_valid_scope(scope: &str) -> bool {
    (1..=64).contains(&scope.len())
        && scope.bytes().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'.' | b'-' | b'*' | b':' | b'/')
        })
}

#[cfg(test)]
mod tests;
