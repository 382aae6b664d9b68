//! Liveness rules: nobody expires while heard, nobody expires during a
//! restart's grace, and dependents hear of a crash in time.
//!
//! An expiry is dated by the agent's `status_changed_at`, which the registry
//! stamps when it writes the transition, just after deciding it. A heartbeat
//! was processed at some instant between its send (`invoked_at`) and its ack
//! (`completed_at`). So an expiry at `e` is certainly wrong when some ack
//! completed before `e` for a heartbeat sent after `e - expired_after`.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use switchboard_proto::v1::{Agent, AgentStatus};

use super::{Rule, Rules, Violation, since_start};
use crate::history::{Op, OpKind};

/// Every EXPIRED record anyone saw, once per (agent, expiry time).
fn expiries(ops: &[Op]) -> BTreeMap<(String, SystemTime), &'static str> {
    let mut seen = BTreeMap::new();
    let mut note = |agent: &Agent, how: &'static str| {
        if agent.status() != AgentStatus::Expired {
            return;
        }
        if let Some(at) = agent.status_changed_at.and_then(|t| SystemTime::try_from(t).ok()) {
            seen.entry((agent.id.clone(), at)).or_insert(how);
        }
    };
    for op in ops {
        match &op.kind {
            OpKind::WatchEvent { message } => {
                if let Some(agent) = &message.agent {
                    note(agent, "a watch event");
                }
            }
            OpKind::Get { agent: Some(agent), .. } => note(agent, "GetAgent"),
            OpKind::List { view, .. } => view.values().for_each(|agent| note(agent, "ListAgents")),
            _ => {}
        }
    }
    seen
}

pub(super) fn expired_while_acked(ops: &[Op], rules: &Rules) -> (Vec<Violation>, usize) {
    let mut acks: HashMap<&str, Vec<&Op>> = HashMap::new();
    for op in ops {
        if let OpKind::HeartbeatAck { agent_id, .. } = &op.kind {
            acks.entry(agent_id).or_default().push(op);
        }
    }
    let mut found = Vec::new();
    let mut checked = 0;
    for ((agent_id, at), how) in expiries(ops) {
        let Some(acks) = acks.get(agent_id.as_str()) else { continue };
        checked += 1;
        let heard = acks.iter().find(|ack| {
            ack.completed_at + rules.slack < at
                && ack.invoked_at > at - rules.expired_after + rules.slack
        });
        if let Some(ack) = heard {
            found.push(Violation::new(
                Rule::ExpiredWhileAcked,
                format!(
                    "{agent_id} EXPIRED at {:?} (seen in {how}), {:?} after a heartbeat sent \
                     at {:?} was acknowledged (expired_after {:?})",
                    since_start(ops, at),
                    at.duration_since(ack.completed_at).unwrap_or_default(),
                    since_start(ops, ack.invoked_at),
                    rules.expired_after
                ),
            ));
        }
    }
    (found, checked)
}

pub(super) fn restart_grace(ops: &[Op], rules: &Rules) -> (Vec<Violation>, usize) {
    let starts: Vec<SystemTime> = ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Restart))
        .map(|op| op.invoked_at)
        .collect();
    let mut found = Vec::new();
    let expiries = expiries(ops);
    let checked = expiries.len();
    for ((agent_id, at), how) in expiries {
        let early = starts
            .iter()
            .find(|start| **start <= at && at + rules.slack < **start + rules.expired_after);
        if let Some(start) = early {
            found.push(Violation::new(
                Rule::RestartGrace,
                format!(
                    "{agent_id} EXPIRED (seen in {how}) {:?} after a registry start, inside \
                     the grace of {:?}",
                    at.duration_since(*start).unwrap_or_default(),
                    rules.expired_after
                ),
            ));
        }
    }
    (found, checked)
}

/// After a provider crashes, each dependent whose wiring named it hears,
/// within `tell_within`, wiring where it is no longer a HEALTHY provider —
/// unless the dependent's link or the registry was faulted meanwhile, or the
/// run ended first.
pub(super) fn dependents_told(ops: &[Op], rules: &Rules) -> (Vec<Violation>, usize) {
    let last = ops.iter().map(|op| op.completed_at).max();
    let mut found = Vec::new();
    let mut checked = 0;
    for crash in ops {
        let OpKind::Crash { agent_id: provider } = &crash.kind else { continue };
        let until = crash.completed_at + rules.tell_within;
        let ended_first = last.is_none_or(|last| last < until);
        let faulted = |target: &str| {
            ops.iter().any(|op| match &op.kind {
                OpKind::Fault { target: hit, .. } => {
                    (hit == target || hit == "registry")
                        && op.invoked_at < until
                        && op.completed_at > crash.invoked_at
                }
                _ => false,
            })
        };
        for dependent in dependents_at(ops, provider, crash.invoked_at) {
            let told = ops.iter().any(|op| match &op.kind {
                OpKind::Push { agent_id, providers, .. } => {
                    agent_id == dependent
                        && op.completed_at >= crash.invoked_at
                        && op.completed_at <= until
                        && !providers
                            .iter()
                            .any(|(id, status)| id == provider && *status == AgentStatus::Healthy)
                }
                _ => false,
            });
            // Untold is excused only when the dependent could not be told.
            if !told && (ended_first || faulted(dependent)) {
                continue;
            }
            checked += 1;
            if !told {
                found.push(Violation::new(
                    Rule::DependentNotTold,
                    format!(
                        "{dependent} not told within {:?} that {provider} crashed at {:?}",
                        rules.tell_within,
                        since_start(ops, crash.invoked_at)
                    ),
                ));
            }
        }
    }
    (found, checked)
}

/// Agents whose latest wiring before `at` named `provider` as HEALTHY.
fn dependents_at<'a>(ops: &'a [Op], provider: &str, at: SystemTime) -> Vec<&'a str> {
    let mut latest: BTreeMap<&str, &Op> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.completed_at < at) {
        if let OpKind::Push { agent_id, .. } = &op.kind {
            latest.insert(agent_id, op);
        }
    }
    latest
        .into_iter()
        .filter(|(_, op)| match &op.kind {
            OpKind::Push { providers, .. } => providers
                .iter()
                .any(|(id, status)| id == provider && *status == AgentStatus::Healthy),
            _ => false,
        })
        .map(|(agent_id, _)| agent_id)
        .collect()
}
