//! Who is calling, and what that identity may do.
//!
//! The rights of each role, checked by every RPC:
//!
//! | right | admin | operator | viewer | agent | client |
//! |---|---|---|---|---|---|
//! | read agents, capabilities, resolutions, Watch | yes | yes | yes | yes | no |
//! | register, heartbeat, change an agent | any | no | no | its own, in scope | no |
//! | deregister an agent (drain) | any | any | no | its own | no |
//! | `Authenticate` a gateway key | yes | yes | yes | no | no |
//! | create, list, revoke tokens | yes | no | no | no | no |
//! | `WhoAmI` | yes | yes | yes | yes | yes |
//!
//! Agents may read the catalog for the same reason Consul gives every
//! service identity `service_prefix "" { policy = "read" }`: discovery is
//! what an agent is for. An agent identity's own records are the ones it
//! registered (the record's `owner`); a record written while auth was off
//! has no owner, and the first identity whose scope allows its name takes
//! it when it registers or heartbeats.

use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use switchboard_proto::v1::{Agent, RegisterAgentRequest, Role, TokenInfo};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::{RegistryError, RegistryResult};
use crate::validate::shown;

use super::glob;

/// Identity of every caller while auth is off.
pub const ANONYMOUS: &str = "anonymous";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    identity: Arc<str>,
    role: Role,
    token: Option<Arc<TokenInfo>>,
    agent_names: Arc<[String]>,
    provides: Arc<[String]>,
    /// Cancelled when the token is revoked: ends the caller's streams.
    revoked: Option<CancellationToken>,
    expires_at: Option<SystemTime>,
    /// False while auth is off: every check passes and records get no owner.
    enforced: bool,
}

/// What an agent mutation may do to an existing record, decided by the
/// caller and checked by the writer against the record it is about to
/// change (so two identities racing for one agent id cannot both win).
#[derive(Debug, Clone, Default)]
pub struct Claim {
    /// Identity to record as the owner; empty while auth is off.
    pub owner: String,
    /// May act on a record another identity owns (admin; operator drain).
    pub any_owner: bool,
    /// Agent-name patterns that may take a record without an owner.
    pub agent_names: Arc<[String]>,
}

/// What a caller wants to do to an agent, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAction {
    /// Register it, or register it again (overwrite).
    Register,
    /// Heartbeat for it (stream or unary), or change its labels.
    Heartbeat,
    /// Deregister it.
    Deregister,
}

// === impl Caller ===

impl Caller {
    /// The caller of a registry running without auth (shared: no
    /// allocation per call).
    pub fn anonymous() -> Self {
        static ANONYMOUS_CALLER: LazyLock<Caller> = LazyLock::new(|| Caller {
            identity: ANONYMOUS.into(),
            role: Role::Admin,
            token: None,
            agent_names: Arc::from(["*".to_owned()]),
            provides: Arc::from(["*".to_owned()]),
            revoked: None,
            expires_at: None,
            enforced: false,
        });
        ANONYMOUS_CALLER.clone()
    }

    /// The caller behind a token.
    pub(crate) fn from_token(info: Arc<TokenInfo>, revoked: CancellationToken) -> Self {
        Self {
            identity: format!("token:{}", info.name).into(),
            role: info.role(),
            agent_names: info.agent_names.clone().into(),
            provides: info.provides.clone().into(),
            expires_at: info.expires_at.and_then(|at| SystemTime::try_from(at).ok()),
            token: Some(info),
            revoked: Some(revoked),
            enforced: true,
        }
    }

    /// The caller behind a verified client certificate named `name`.
    ///
    /// A certificate identity is bound to its name the way Consul binds a
    /// service identity to its service: it may register agents named
    /// exactly `name`, and provide the capabilities named for it — `name`
    /// itself and `name_*`, `name.*`, `name-*`. Anything broader needs a
    /// token, so no certificate alone can claim someone else's capability.
    pub(crate) fn from_certificate(name: &str) -> Self {
        let provides =
            [name.to_owned(), format!("{name}_*"), format!("{name}.*"), format!("{name}-*")];
        Self {
            identity: format!("cert:{name}").into(),
            role: Role::Agent,
            token: None,
            agent_names: Arc::from([name.to_owned()]),
            provides: Arc::from(provides),
            revoked: None,
            expires_at: None,
            enforced: true,
        }
    }

    /// `token:<name>`, `cert:<name>` or `anonymous`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The caller's role (admin while auth is off).
    pub fn role(&self) -> Role {
        self.role
    }

    /// The token behind the identity, when there is one.
    pub fn token(&self) -> Option<&TokenInfo> {
        self.token.as_deref()
    }

    /// Read the catalog: agents, capabilities, resolutions, Watch.
    pub fn require_read(&self) -> RegistryResult<()> {
        self.require(
            matches!(self.role, Role::Admin | Role::Operator | Role::Viewer | Role::Agent),
            "read the registry",
        )
    }

    /// Issue, list and revoke tokens.
    pub fn require_admin(&self, what: &str) -> RegistryResult<()> {
        self.require(self.role == Role::Admin, what)
    }

    /// Resolve a gateway key (viewer or above).
    pub fn require_viewer(&self, what: &str) -> RegistryResult<()> {
        self.require(matches!(self.role, Role::Admin | Role::Operator | Role::Viewer), what)
    }

    /// May this caller do `action` to agents at all, and is this
    /// registration inside its scope (name and every capability)?
    pub fn check_registration(&self, request: &RegisterAgentRequest) -> RegistryResult<()> {
        self.check_agent_action(AgentAction::Register)?;
        if !self.enforced || self.role == Role::Admin {
            return Ok(());
        }
        if !glob::any_matches(&self.agent_names, &request.name) {
            return Err(RegistryError::PermissionDenied(format!(
                "{} may not register agent name {}: outside its agent names",
                self.identity,
                shown(&request.name)
            )));
        }
        for tool in &request.tools {
            if !tool.capability.is_empty() && !glob::any_matches(&self.provides, &tool.capability) {
                return Err(RegistryError::PermissionDenied(format!(
                    "{} may not provide capability {} (tool {}): outside its scope",
                    self.identity,
                    shown(&tool.capability),
                    shown(&tool.name)
                )));
            }
        }
        Ok(())
    }

    /// May this caller's role do `action` to some agent (ownership aside)?
    pub fn check_agent_action(&self, action: AgentAction) -> RegistryResult<()> {
        let allowed = match action {
            AgentAction::Register | AgentAction::Heartbeat => {
                matches!(self.role, Role::Admin | Role::Agent)
            }
            AgentAction::Deregister => {
                matches!(self.role, Role::Admin | Role::Operator | Role::Agent)
            }
        };
        self.require(allowed, action.verb())
    }

    /// The claim this caller makes when it does `action` to an agent.
    pub fn claim(&self, action: AgentAction) -> Claim {
        Claim {
            owner: if self.enforced { self.identity.to_string() } else { String::new() },
            any_owner: self.any_owner(action),
            agent_names: self.agent_names.clone(),
        }
    }

    /// May this caller do `action` to `agent` as it is now? What
    /// [`Claim::check`] decides in the writer, for calls that do not go
    /// through it (heartbeats); allocates nothing.
    pub fn check_owner(&self, agent: &Agent, action: AgentAction) -> RegistryResult<()> {
        ownership(self.any_owner(action), &self.identity, &self.agent_names, agent, action)
    }

    /// True while auth is off: every check passes.
    pub fn is_anonymous(&self) -> bool {
        !self.enforced
    }

    fn any_owner(&self, action: AgentAction) -> bool {
        !self.enforced
            || self.role == Role::Admin
            || (action == AgentAction::Deregister && self.role == Role::Operator)
    }

    /// Resolves when the caller's credential stops being valid (revoked or
    /// expired), with the status that ends its streams; never otherwise.
    pub fn ended(&self) -> impl Future<Output = Status> + Send + 'static {
        let revoked = self.revoked.clone();
        let expires_at = self.expires_at;
        async move {
            let expiry = async {
                match expires_at {
                    Some(at) => {
                        let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                        tokio::time::sleep(left).await;
                    }
                    None => std::future::pending().await,
                }
            };
            let revocation = async {
                match &revoked {
                    Some(token) => token.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = revocation => Status::unauthenticated("token revoked"),
                () = expiry => Status::unauthenticated("token expired"),
            }
        }
    }

    /// True when the credential can end (a token); certificates and the
    /// anonymous caller need no watch on their streams.
    pub fn can_end(&self) -> bool {
        self.revoked.is_some()
    }

    fn require(&self, allowed: bool, what: &str) -> RegistryResult<()> {
        if allowed || !self.enforced {
            return Ok(());
        }
        Err(RegistryError::PermissionDenied(format!(
            "{} has role {} and may not {what}",
            self.identity,
            role_name(self.role)
        )))
    }
}

// === impl Claim ===

impl Claim {
    /// The claim of a caller while auth is off: no owner, any record.
    pub fn anonymous() -> Self {
        Caller::anonymous().claim(AgentAction::Register)
    }

    /// Checks the claim against the record it would change.
    pub fn check(&self, agent: &Agent, action: AgentAction) -> RegistryResult<()> {
        ownership(self.any_owner, &self.owner, &self.agent_names, agent, action)
    }

    /// The owner to record: the claimant, or the record's owner while auth
    /// is off.
    pub fn owner_for(&self, existing: Option<&Agent>) -> String {
        match existing {
            Some(agent) if self.owner.is_empty() => agent.owner.clone(),
            _ => self.owner.clone(),
        }
    }
}

/// The ownership rule: `identity` may do `action` to `agent` when it may
/// act on any owner's records, when it owns the record, or when the record
/// has no owner (written while auth was off) and its name is in scope.
fn ownership(
    any_owner: bool,
    identity: &str,
    agent_names: &[String],
    agent: &Agent,
    action: AgentAction,
) -> RegistryResult<()> {
    if any_owner || agent.owner == identity {
        return Ok(());
    }
    if agent.owner.is_empty() && glob::any_matches(agent_names, &agent.name) {
        return Ok(());
    }
    Err(RegistryError::PermissionDenied(format!(
        "agent {} belongs to another identity: {identity} may not {} it",
        shown(&agent.id),
        action.verb_object()
    )))
}

// === impl AgentAction ===

impl AgentAction {
    fn verb(self) -> &'static str {
        match self {
            AgentAction::Register => "register agents",
            AgentAction::Heartbeat => "heartbeat for or change agents",
            AgentAction::Deregister => "deregister agents",
        }
    }

    fn verb_object(self) -> &'static str {
        match self {
            AgentAction::Register => "register again (overwrite)",
            AgentAction::Heartbeat => "heartbeat for or change",
            AgentAction::Deregister => "deregister",
        }
    }
}

/// The lowercase name of a role, as the CLI and the docs spell it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unspecified => "unspecified",
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Viewer => "viewer",
        Role::Agent => "agent",
        Role::Client => "client",
    }
}
