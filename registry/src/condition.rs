//! The liveness model's view of an agent (status and cause) in the wire's
//! terms, both ways. The tracker decides; the stored record shows it.

use switchboard_health::{Cause, Status as Liveness};
use switchboard_proto::v1::{AgentStatus, StatusReason};

/// Liveness status → wire status.
pub(crate) fn to_status(liveness: Liveness) -> AgentStatus {
    match liveness {
        Liveness::Healthy => AgentStatus::Healthy,
        Liveness::Degraded => AgentStatus::Degraded,
        Liveness::Expired => AgentStatus::Expired,
    }
}

/// Wire status → liveness status (unspecified counts as expired).
pub(crate) fn to_liveness(status: AgentStatus) -> Liveness {
    match status {
        AgentStatus::Healthy => Liveness::Healthy,
        AgentStatus::Degraded => Liveness::Degraded,
        AgentStatus::Expired | AgentStatus::Unspecified => Liveness::Expired,
    }
}

/// The wire cause of a liveness status and, when DEGRADED, its cause.
pub(crate) fn to_reason(liveness: Liveness, cause: Option<Cause>) -> StatusReason {
    match (liveness, cause) {
        (Liveness::Healthy, _) => StatusReason::Unspecified,
        (Liveness::Degraded, Some(Cause::StreamBroke)) => StatusReason::StreamBroke,
        (Liveness::Degraded, Some(Cause::NeverHeartbeated)) => StatusReason::NeverHeartbeated,
        (Liveness::Degraded, Some(Cause::AgentUnhealthy)) => StatusReason::AgentUnhealthy,
        (Liveness::Degraded, Some(Cause::HeartbeatLate) | None) => StatusReason::HeartbeatLate,
        (Liveness::Expired, _) => StatusReason::Expired,
    }
}

/// The liveness cause a stored wire cause stands for (DEGRADED records).
pub(crate) fn to_cause(reason: StatusReason) -> Option<Cause> {
    match reason {
        StatusReason::HeartbeatLate => Some(Cause::HeartbeatLate),
        StatusReason::StreamBroke => Some(Cause::StreamBroke),
        StatusReason::NeverHeartbeated => Some(Cause::NeverHeartbeated),
        StatusReason::AgentUnhealthy => Some(Cause::AgentUnhealthy),
        StatusReason::Unspecified | StatusReason::Expired => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_round_trip() {
        for cause in [
            Cause::HeartbeatLate,
            Cause::StreamBroke,
            Cause::NeverHeartbeated,
            Cause::AgentUnhealthy,
        ] {
            assert_eq!(to_cause(to_reason(Liveness::Degraded, Some(cause))), Some(cause));
        }
        assert_eq!(to_reason(Liveness::Healthy, None), StatusReason::Unspecified);
        assert_eq!(to_reason(Liveness::Expired, None), StatusReason::Expired);
    }
}
