//! Who may call which tool: authentication (OAuth 2.1 access tokens, API
//! keys issued by the registry, mTLS client certificates), the policy
//! file, rate limits, the identity handed to agents and the call audit.
//!
//! Everything is off by default: a gateway without an [`AccessConfig`]
//! answers everyone as `anonymous`, as it always did. With any
//! authentication on, every `/mcp` request must prove who it is:
//! - `Authorization: Bearer <JWT>` — an access token of the configured
//!   issuer, for this gateway's resource URL (the MCP authorization spec);
//!   a request without one gets `401` with `WWW-Authenticate: Bearer
//!   resource_metadata="…"` so a client can discover the authorization
//!   server (`/.well-known/oauth-protected-resource`, RFC 9728);
//! - `X-API-Key: <secret>`, or `Authorization: Bearer <secret>` for a
//!   secret that is not a JWT (registry secrets start `sbk_`) — an API key;
//! - a client certificate, when the TLS listener verified one.
//!
//! Scopes are permissions: `tools:call`, `resources:read`, `prompts:get`.
//! A caller without the scope a method needs gets `403` with
//! `error="insufficient_scope"`. Then the policy decides per tool (without
//! a policy file every authenticated caller may call everything), then the
//! rate limits. `tools/list` shows a caller only what it may call.

mod api_key;
mod audit;
mod glob;
mod identity;
mod jwt;
mod limits;
mod policy;
mod principal;
mod response;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::Digest as _;
use switchboard_telemetry::audit::AuditTarget;
use tokio_util::sync::CancellationToken;

pub use api_key::KEY_TTL;
pub(crate) use audit::Entry;
pub use identity::{CALLER_META, CALLER_TOKEN_META, IdentityMode};
pub use jwt::{JwksSource, OAuthConfig};
pub use limits::{Limited, LimitsConfig, Rate};
pub use policy::{Decision, Policy};
pub use principal::{
    AuthMethod, Principal, SCOPE_PROMPTS_GET, SCOPE_RESOURCES_READ, SCOPE_TOOLS_CALL, SCOPES,
    principal_of_certificate,
};
pub(crate) use response::Refusal;
pub use response::{FORBIDDEN, RATE_LIMITED, UNAUTHENTICATED};

use crate::metrics::GatewayMetrics;
use crate::routing_table::ToolFacts;

/// Access settings of a gateway (all off by default).
///
/// ```
/// use switchboard_gateway::access::{AccessConfig, Rate};
///
/// let mut access = AccessConfig::default();
/// assert!(!access.auth_enabled());
/// access.api_keys = true;
/// access.limits.per_principal = Some("10/s:20".parse().unwrap());
/// assert!(access.auth_enabled());
/// assert_eq!(access.validate(), Ok(()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// Accept OAuth 2.1 access tokens (JWTs).
    pub oauth: Option<OAuthConfig>,
    /// Accept API keys, checked at the registry.
    pub api_keys: bool,
    /// Accept verified client certificates (the listener has a client CA).
    pub mtls: bool,
    /// The gateway's own registry token, sent when checking API keys.
    pub registry_token: Option<String>,
    /// The policy file (TOML), reloaded when it changes. None: every
    /// authenticated caller may call everything.
    pub policy: Option<PathBuf>,
    /// How often the policy file is checked for changes (zero: every second).
    pub policy_check_every: Duration,
    /// Rate limits.
    pub limits: LimitsConfig,
    /// What agents learn about the caller.
    pub identity: IdentityMode,
    /// Tools (patterns) whose calls carry the caller's `Authorization`
    /// header upstream. Empty: the caller's token never leaves the gateway.
    pub token_passthrough: Vec<String>,
    /// Where the call audit goes.
    pub audit: AuditTarget,
    /// Also record each call's arguments (never by default: they may hold
    /// personal data; the SHA-256 of the arguments is always recorded).
    pub audit_arguments: bool,
}

// === impl AccessConfig ===

impl AccessConfig {
    /// Whether callers must authenticate.
    pub fn auth_enabled(&self) -> bool {
        self.oauth.is_some() || self.api_keys || self.mtls
    }

    /// Whether any access feature is on (the gateway skips the layer otherwise).
    pub fn any_enabled(&self) -> bool {
        self.auth_enabled()
            || self.policy.is_some()
            || self.limits != LimitsConfig::default()
            || self.audit != AuditTarget::Off
            || !matches!(self.identity, IdentityMode::Off)
    }

    /// Checks every setting; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(oauth) = &self.oauth {
            oauth.validate()?;
        }
        if self.policy.is_some() && !self.auth_enabled() {
            return Err("policy: needs authentication on (oauth, api keys or mtls)".into());
        }
        if let IdentityMode::Signed { key } = &self.identity
            && key.len() < 32
        {
            return Err("caller identity key: must be at least 32 bytes".into());
        }
        Ok(())
    }
}

/// Why a request could not be authenticated (the `cause` label of
/// `switchboard_gateway_auth_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// Not a token the gateway can read.
    Malformed,
    /// Past its `exp`.
    Expired,
    /// Before its `nbf`.
    NotYetValid,
    /// For another resource.
    WrongAudience,
    /// From another issuer.
    WrongIssuer,
    /// The signature does not verify.
    BadSignature,
    /// Signed with a key the issuer does not publish (or an unknown API key).
    UnknownKey,
    /// A required claim (`exp`, `iss`, `aud`, `sub`) is missing.
    MissingClaim,
    /// A registry token that is not a client (gateway) key.
    NotAClientKey,
    /// The registry could not be asked about an API key.
    KeyServiceUnavailable,
    /// A kind of credential this gateway does not accept.
    NotAccepted,
}

// === impl AuthFailure ===

impl AuthFailure {
    /// The metric label.
    pub fn cause(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::MissingClaim => "missing_claim",
            Self::NotAClientKey => "not_a_client_key",
            Self::KeyServiceUnavailable => "key_service_unavailable",
            Self::NotAccepted => "not_accepted",
        }
    }

    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "authentication required: send a bearer token or an X-API-Key header",
            Self::Malformed => "invalid token: not a well-formed token",
            Self::Expired => "invalid token: expired",
            Self::NotYetValid => "invalid token: not valid yet",
            Self::WrongAudience => "invalid token: issued for another resource (audience)",
            Self::WrongIssuer => "invalid token: from an issuer this gateway does not trust",
            Self::BadSignature => "invalid token: the signature does not verify",
            Self::UnknownKey => "invalid token: unknown signing key or api key",
            Self::MissingClaim => "invalid token: a required claim (exp, iss, aud, sub) is missing",
            Self::NotAClientKey => "invalid api key: not a gateway client key",
            Self::KeyServiceUnavailable => "api key not checked: the registry is unavailable",
            Self::NotAccepted => "authentication method not accepted by this gateway",
        }
    }
}

/// The access layer of one gateway, built once from its [`AccessConfig`].
pub struct Access {
    config: AccessConfig,
    jwt: Option<jwt::JwtVerifier>,
    keys: Option<api_key::KeyChecker>,
    policy: policy::LivePolicy,
    limiter: limits::Limiter,
    identity: identity::Identity,
    passthrough: Vec<glob::Glob>,
    audit: audit::CallAudit,
    stop: CancellationToken,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Which permission a method needs.
pub(crate) fn scope_of(method: &str, by_prompt: bool) -> &'static str {
    match method {
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => SCOPE_RESOURCES_READ,
        "prompts/get" => SCOPE_PROMPTS_GET,
        "completion/complete" if by_prompt => SCOPE_PROMPTS_GET,
        "completion/complete" => SCOPE_RESOURCES_READ,
        _ => SCOPE_TOOLS_CALL,
    }
}

// === impl Access ===

impl Access {
    /// Builds the layer: loads the policy (a bad file is an error here)
    /// and opens the audit sink. `registry` is the channel API keys are
    /// checked on. [`Access::start`] starts watching the policy file.
    pub fn new(config: AccessConfig, registry: tonic::transport::Channel) -> Result<Self, String> {
        config.validate()?;
        let policy = match &config.policy {
            Some(path) => Policy::load(path)?,
            None => Policy::allow_all(),
        };
        let keys = if config.api_keys {
            Some(api_key::KeyChecker::new(registry, config.registry_token.as_deref())?)
        } else {
            None
        };
        let audit = audit::CallAudit::open(&config.audit, config.audit_arguments)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            jwt: config.oauth.clone().map(jwt::JwtVerifier::new),
            keys,
            policy: policy::LivePolicy::fixed(policy),
            limiter: limits::Limiter::new(config.limits),
            identity: identity::Identity::new(&config.identity),
            passthrough: config.token_passthrough.iter().map(|p| glob::Glob::new(p)).collect(),
            audit,
            stop: CancellationToken::new(),
            config,
        })
    }

    /// Watches the policy file (reloads counted in `metrics`) until the
    /// layer is dropped. Needs a Tokio runtime.
    pub fn start(&self, metrics: &GatewayMetrics) {
        let Some(path) = &self.config.policy else { return };
        let reloads = metrics.policy_reloads.clone();
        let every = if self.config.policy_check_every.is_zero() {
            Duration::from_secs(1)
        } else {
            self.config.policy_check_every
        };
        self.policy.watch(
            path.clone(),
            every,
            move |outcome| {
                reloads.get_or_create(&crate::metrics::OutcomeLabel { outcome }).inc();
            },
            self.stop.clone(),
        );
    }

    /// The settings.
    pub fn config(&self) -> &AccessConfig {
        &self.config
    }

    /// Who sent `parts`: the caller, or the refusal to answer with.
    pub(crate) async fn authenticate(
        &self,
        parts: &Parts,
        metrics: &GatewayMetrics,
    ) -> Result<Arc<Principal>, Refusal> {
        if !self.config.auth_enabled() {
            return Ok(anonymous());
        }
        let result = self.credentials(&parts.headers, parts.extensions.get()).await;
        result.map_err(|failure| {
            metrics.auth_failure(failure.cause());
            Refusal::Unauthenticated { failure, metadata: self.metadata_url() }
        })
    }

    async fn credentials(
        &self,
        headers: &HeaderMap,
        peer: Option<&switchboard_tls::PeerNames>,
    ) -> Result<Arc<Principal>, AuthFailure> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(key) = header("x-api-key") {
            return self.api_key(key.trim()).await;
        }
        if let Some(authorization) = header("authorization") {
            let Some(token) = bearer(authorization) else { return Err(AuthFailure::Malformed) };
            if looks_like_jwt(token) {
                let Some(jwt) = &self.jwt else { return Err(AuthFailure::NotAccepted) };
                return jwt.verify(token, &hash(token)).await;
            }
            return self.api_key(token).await;
        }
        if self.config.mtls
            && let Some(principal) = peer.and_then(principal_of_certificate)
        {
            return Ok(Arc::new(principal));
        }
        Err(AuthFailure::Missing)
    }

    async fn api_key(&self, secret: &str) -> Result<Arc<Principal>, AuthFailure> {
        let Some(keys) = &self.keys else { return Err(AuthFailure::NotAccepted) };
        if secret.is_empty() {
            return Err(AuthFailure::Malformed);
        }
        keys.verify(secret, &hash(secret)).await
    }

    /// The protected-resource metadata URL, when OAuth is on.
    pub(crate) fn metadata_url(&self) -> Option<String> {
        self.jwt.as_ref().map(|jwt| response::metadata_url(&jwt.config().resource))
    }

    /// The protected-resource metadata document (RFC 9728), when OAuth is on.
    pub(crate) fn metadata(&self) -> Option<serde_json::Value> {
        self.jwt.as_ref().map(|jwt| response::metadata(jwt.config()))
    }

    /// May `principal` call `exposed` (`method` names the permission)?
    /// Checks the scope, the policy, then the rate limits.
    pub(crate) fn authorize(
        &self,
        principal: &Principal,
        method: &str,
        by_prompt: bool,
        exposed: &str,
        facts: &ToolFacts,
        metrics: &GatewayMetrics,
    ) -> Result<(), Refusal> {
        let scope = scope_of(method, by_prompt);
        if !principal.has_scope(scope) {
            metrics.denial("insufficient_scope");
            return Err(Refusal::Scope { scope, metadata: self.metadata_url() });
        }
        if scope == SCOPE_TOOLS_CALL
            && let Decision::Deny(rule) = self.policy.load().decide(principal, exposed, facts)
        {
            metrics.denial(&rule);
            return Err(Refusal::Denied { rule, tool: exposed.to_owned() });
        }
        if let Err(limited) = self.limiter.check(&principal.id, exposed) {
            metrics.rate_limited(&principal.id, exposed);
            return Err(Refusal::Limited(limited));
        }
        Ok(())
    }

    /// Whether `principal` would be allowed to call `exposed` (for `tools/list`).
    pub(crate) fn may_list(&self, principal: &Principal, exposed: &str, facts: &ToolFacts) -> bool {
        principal.has_scope(SCOPE_TOOLS_CALL)
            && self.policy.load().decide(principal, exposed, facts) == Decision::Allow
    }

    /// Whether calls of `exposed` carry the caller's token upstream.
    pub(crate) fn passes_token(&self, exposed: &str) -> bool {
        glob::any(&self.passthrough, exposed)
    }

    /// The `_meta` entries telling an agent at `endpoint` who calls.
    pub(crate) fn caller_meta(
        &self,
        principal: &Principal,
        endpoint: &str,
    ) -> Vec<(&'static str, serde_json::Value)> {
        self.identity.meta(principal, endpoint)
    }

    /// The call audit.
    pub(crate) fn audit(&self) -> &audit::CallAudit {
        &self.audit
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The one anonymous principal, shared.
pub(crate) fn anonymous() -> Arc<Principal> {
    static ANONYMOUS: std::sync::OnceLock<Arc<Principal>> = std::sync::OnceLock::new();
    ANONYMOUS.get_or_init(|| Arc::new(Principal::anonymous())).clone()
}

fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A JWS compact serialization: three base64url parts.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2 && token.starts_with("eyJ")
}

fn hash(secret: &str) -> [u8; 32] {
    sha2::Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests;
