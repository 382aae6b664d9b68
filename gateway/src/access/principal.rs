//! Who is calling: one shape for every way to authenticate, so policy,
//! limits, audit and the identity handed to agents never care how the
//! caller proved it.

use switchboard_tls::PeerNames;

/// The scope a caller needs for `tools/call`.
pub const SCOPE_TOOLS_CALL: &str = "tools:call";
/// The scope a caller needs for `resources/read` (and resource completion).
pub const SCOPE_RESOURCES_READ: &str = "resources:read";
/// The scope a caller needs for `prompts/get` (and prompt completion).
pub const SCOPE_PROMPTS_GET: &str = "prompts:get";
/// Every scope the gateway knows, as its protected-resource metadata lists them.
pub const SCOPES: &[&str] = &[SCOPE_TOOLS_CALL, SCOPE_RESOURCES_READ, SCOPE_PROMPTS_GET];

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Auth is off: everyone is `anonymous`.
    Anonymous,
    /// An OAuth 2.1 access token (a JWT from the authorization server).
    Jwt,
    /// An API key issued by the registry.
    ApiKey,
    /// A client certificate verified by the TLS listener.
    Certificate,
}

/// An authenticated caller.
///
/// ```
/// use switchboard_gateway::access::{AuthMethod, Principal};
///
/// let alice = Principal::new(AuthMethod::Jwt, "alice", vec!["tools:call".into()], vec![]);
/// assert_eq!(alice.id, "jwt:alice");
/// assert!(alice.has_scope("tools:call"));
/// assert!(!alice.has_scope("prompts:get"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `jwt:<sub>`, `key:<name>`, `cert:<name>` or `anonymous`: what policy
    /// rules, limits and audit records name.
    pub id: String,
    /// The subject alone (the JWT `sub`, the key's name, the certificate's name).
    pub subject: String,
    /// How it authenticated.
    pub method: AuthMethod,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Groups (a JWT's groups claim); empty otherwise.
    pub groups: Vec<String>,
}

// === impl Principal ===

impl Principal {
    /// A principal of `method` named `subject`.
    pub fn new(
        method: AuthMethod,
        subject: &str,
        scopes: Vec<String>,
        groups: Vec<String>,
    ) -> Self {
        let prefix = match method {
            AuthMethod::Anonymous => "",
            AuthMethod::Jwt => "jwt:",
            AuthMethod::ApiKey => "key:",
            AuthMethod::Certificate => "cert:",
        };
        let id = if method == AuthMethod::Anonymous {
            "anonymous".to_owned()
        } else {
            format!("{prefix}{subject}")
        };
        Self { id, subject: subject.to_owned(), method, scopes, groups }
    }

    /// The caller when auth is off: every scope, no groups.
    pub fn anonymous() -> Self {
        let scopes = SCOPES.iter().map(|s| (*s).to_owned()).collect();
        Self::new(AuthMethod::Anonymous, "anonymous", scopes, Vec::new())
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The principal of a verified client certificate: `cert:<first name>`
/// (its first DNS or URI subject alternative name). A certificate the
/// client CA signed is a machine the operator enrolled, so it gets every
/// scope; the policy file narrows what it may call. `None` when the
/// certificate carries no name.
///
/// ```
/// use switchboard_gateway::access::principal_of_certificate;
/// use switchboard_tls::PeerNames;
///
/// let names = PeerNames(vec!["billing.mesh.internal".into(), "spiffe://mesh/billing".into()]);
/// let principal = principal_of_certificate(&names).unwrap();
/// assert_eq!(principal.id, "cert:billing.mesh.internal");
/// assert!(principal_of_certificate(&PeerNames::default()).is_none());
/// ```
pub fn principal_of_certificate(names: &PeerNames) -> Option<Principal> {
    let name = names.0.iter().find(|n| !n.is_empty())?;
    let scopes = SCOPES.iter().map(|s| (*s).to_owned()).collect();
    Some(Principal::new(AuthMethod::Certificate, name, scopes, Vec::new()))
}
