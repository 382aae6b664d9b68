//! Whether an agent may serve calls: the one rule that dependency resolution,
//! the gateway's routing table and the agent SDK all apply.
//!
//! - HEALTHY agents are preferred.
//! - DEGRADED agents that are merely late (or have not heartbeated since they
//!   registered or since the registry restarted) serve only as a last resort,
//!   when nothing healthy qualifies: they may well be alive.
//! - DEGRADED agents that report themselves unhealthy (one of their own
//!   health checks fails) are a last resort too: they are alive and may still
//!   answer some calls, which beats no provider at all.
//! - DEGRADED agents whose heartbeat stream broke are excluded: a stream that
//!   breaks without a deregister almost always means the process died, and a
//!   dead process kept as a "last resort" turns every call into a timeout.
//!   They are back the moment they heartbeat again.
//! - EXPIRED agents, and statuses this build does not know, are excluded:
//!   traffic goes only where the registry can vouch for liveness.
//!
//! Records from registries that predate the typed [`StatusReason`] carry
//! only the text `status_reason`; [`Agent::cause`] reads it then, so old and
//! new registries and clients agree on the wire.

use crate::v1::{Agent, AgentStatus, Provider, StatusReason};

/// Whether an agent may serve, and how eagerly.
///
/// ```
/// use switchboard_proto::v1::{Agent, AgentStatus, StatusReason};
/// use switchboard_proto::Routability;
///
/// let mut agent = Agent { status: AgentStatus::Degraded as i32, ..Agent::default() };
/// agent.set_status_cause(StatusReason::HeartbeatLate);
/// assert_eq!(agent.routability(), Routability::LastResort);
/// agent.set_status_cause(StatusReason::StreamBroke);
/// assert_eq!(agent.routability(), Routability::Excluded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Routability {
    /// HEALTHY: serves first.
    Preferred,
    /// DEGRADED but possibly alive: serves only when no preferred one qualifies.
    LastResort,
    /// Gone or unknown: never serves.
    Excluded,
}

/// The rule itself, on the two facts every record carries.
pub fn routability(status: AgentStatus, cause: StatusReason) -> Routability {
    match (status, cause) {
        (AgentStatus::Healthy, _) => Routability::Preferred,
        (AgentStatus::Degraded, StatusReason::StreamBroke) => Routability::Excluded,
        (AgentStatus::Degraded, _) => Routability::LastResort,
        (AgentStatus::Expired | AgentStatus::Unspecified, _) => Routability::Excluded,
    }
}

// === impl Routability ===

impl Routability {
    /// True unless excluded.
    pub fn may_serve(self) -> bool {
        self != Self::Excluded
    }
}

// === impl StatusReason ===

impl StatusReason {
    /// The operator-facing text, as `Agent.status_reason` carries it.
    pub fn text(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::HeartbeatLate => "heartbeat late",
            Self::StreamBroke => "connection lost",
            Self::NeverHeartbeated => "never heartbeated",
            Self::Expired => "no heartbeat",
            Self::AgentUnhealthy => "agent reports unhealthy",
        }
    }

    /// Reads the text back (records from registries without `status_cause`).
    pub fn from_text(text: &str) -> Self {
        [
            Self::HeartbeatLate,
            Self::StreamBroke,
            Self::NeverHeartbeated,
            Self::Expired,
            Self::AgentUnhealthy,
        ]
        .into_iter()
        .find(|cause| cause.text() == text)
        .unwrap_or(Self::Unspecified)
    }
}

// === impl Agent ===

impl Agent {
    /// Why the agent has its status: the typed field, else the text field.
    pub fn cause(&self) -> StatusReason {
        match self.status_cause() {
            StatusReason::Unspecified => StatusReason::from_text(&self.status_reason),
            cause => cause,
        }
    }

    /// Sets the status and its cause, text field included.
    pub fn set_condition(&mut self, status: AgentStatus, cause: StatusReason) {
        self.set_status(status);
        self.set_status_cause(cause);
        cause.text().clone_into(&mut self.status_reason);
    }

    /// Whether this agent may serve calls (see the module docs).
    pub fn routability(&self) -> Routability {
        routability(self.status(), self.cause())
    }
}

// === impl Provider ===

impl Provider {
    /// Whether this provider may serve calls, as resolved.
    pub fn routability(&self) -> Routability {
        routability(self.status(), self.status_cause())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_for_every_status_and_cause() {
        use AgentStatus as S;
        use StatusReason as R;
        assert_eq!(routability(S::Healthy, R::Unspecified), Routability::Preferred);
        assert_eq!(routability(S::Degraded, R::HeartbeatLate), Routability::LastResort);
        assert_eq!(routability(S::Degraded, R::NeverHeartbeated), Routability::LastResort);
        assert_eq!(routability(S::Degraded, R::Unspecified), Routability::LastResort);
        assert_eq!(routability(S::Degraded, R::AgentUnhealthy), Routability::LastResort);
        assert_eq!(routability(S::Degraded, R::StreamBroke), Routability::Excluded);
        assert_eq!(routability(S::Expired, R::Expired), Routability::Excluded);
        assert_eq!(routability(S::Unspecified, R::Unspecified), Routability::Excluded);
    }

    #[test]
    fn an_old_record_with_text_only_is_read_by_its_text() {
        let old = Agent {
            status: AgentStatus::Degraded as i32,
            status_reason: "connection lost".into(),
            ..Agent::default()
        };
        assert_eq!(old.cause(), StatusReason::StreamBroke);
        assert_eq!(old.routability(), Routability::Excluded);
    }

    #[test]
    fn text_round_trips() {
        for cause in [
            StatusReason::HeartbeatLate,
            StatusReason::StreamBroke,
            StatusReason::NeverHeartbeated,
            StatusReason::Expired,
            StatusReason::AgentUnhealthy,
        ] {
            assert_eq!(StatusReason::from_text(cause.text()), cause);
        }
    }
}
