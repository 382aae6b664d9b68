//! The checker: pure functions from a history to the guarantees it breaks.
//!
//! Each rule is stated so that a correct registry can never break it, however
//! the faults fall: an indeterminate write may or may not have happened, a
//! watcher that was partitioned is not expected to have been told anything,
//! and the clocks compared (client send and receive times, the registry's
//! timestamps) come from one machine, with `slack` for the instants between
//! the registry taking a timestamp and acting on it.

mod liveness;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, SystemTime};

use super::{Op, OpKind, Outcome};

/// The settings the rules depend on.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The registry's `expired_after`.
    pub expired_after: Duration,
    /// Longest wait for a dependent to be told of a provider's crash.
    pub tell_within: Duration,
    /// Clock slack allowed around the registry's timestamps.
    pub slack: Duration,
}

/// A guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Every acknowledged write is in every later read of the state.
    AckedWriteLost,
    /// Watch streams: ordered, no gap, no duplicate, one event per revision,
    /// every acknowledged write delivered, the watcher's view equal to the
    /// registry's.
    WatchStream,
    /// No agent EXPIRED while its heartbeats were acknowledged within
    /// `expired_after`.
    ExpiredWhileAcked,
    /// No agent EXPIRED within `expired_after` of a registry start.
    RestartGrace,
    /// Every dependent of a crashed provider told within `tell_within`.
    DependentNotTold,
    /// Revisions never go backwards (one epoch throughout).
    RevisionBackwards,
}

/// A broken guarantee and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which guarantee.
    pub rule: Rule,
    /// What happened, naming the ops.
    pub detail: String,
}

/// What the checker found, and how much it checked per rule (so that a
/// report shows a rule was exercised, not just unbroken).
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// Broken guarantees.
    pub violations: Vec<Violation>,
    /// Checks made, by rule: reads × acknowledged writes, watch events,
    /// expiries, (crash, dependent) pairs, revisions.
    pub checked: BTreeMap<Rule, usize>,
}

/// Every violation in `ops` (recorded order).
pub fn check(ops: &[Op], rules: &Rules) -> Vec<Violation> {
    findings(ops, rules).violations
}

/// Every violation in `ops`, with the number of checks made per rule.
pub fn findings(ops: &[Op], rules: &Rules) -> Findings {
    let mut findings = Findings::default();
    let mut add = |rule: Rule, (found, checked): (Vec<Violation>, usize)| {
        findings.violations.extend(found);
        findings.checked.insert(rule, checked);
    };
    add(Rule::AckedWriteLost, acked_writes_in_reads(ops));
    add(Rule::WatchStream, watch::check(ops));
    add(Rule::ExpiredWhileAcked, liveness::expired_while_acked(ops, rules));
    add(Rule::RestartGrace, liveness::restart_grace(ops, rules));
    add(Rule::DependentNotTold, liveness::dependents_told(ops, rules));
    add(Rule::RevisionBackwards, revisions_forward(ops));
    findings
}

// === impl Violation ===

impl Violation {
    pub(crate) fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Self { rule, detail: detail.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.detail)
    }
}

// === acknowledged writes are in every read ===

/// Writes on one agent, by outcome.
#[derive(Default)]
struct AgentWrites<'a> {
    acked: Vec<&'a Op>,
    unknown_revision: Vec<&'a Op>,
    indeterminate: Vec<&'a Op>,
}

fn writes_by_agent(ops: &[Op]) -> BTreeMap<&str, AgentWrites<'_>> {
    let mut by_agent: BTreeMap<&str, AgentWrites<'_>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.is_write()) {
        let Some(agent_id) = op.agent_id() else { continue };
        let writes = by_agent.entry(agent_id).or_default();
        match op.result {
            Outcome::Written { revision: 0, .. } => writes.unknown_revision.push(op),
            Outcome::Written { .. } => writes.acked.push(op),
            ref failed if failed.is_indeterminate() => writes.indeterminate.push(op),
            _ => {}
        }
    }
    by_agent
}

/// A `ListAgents` at revision R reflects exactly the writes up to R: the
/// acknowledged write with the highest revision ≤ R decides whether an agent
/// is present (and how old its record may be), unless an indeterminate write
/// could have landed after it and before the read.
fn acked_writes_in_reads(ops: &[Op]) -> (Vec<Violation>, usize) {
    let by_agent = writes_by_agent(ops);
    let mut found = Vec::new();
    let mut checked = 0;
    for read in ops {
        let (OpKind::List { revision, view }, Outcome::Ok) = (&read.kind, &read.result) else {
            continue;
        };
        for (agent_id, writes) in &by_agent {
            checked +=
                writes.acked.iter().filter(|w| w.result.revision() <= Some(*revision)).count();
            if let Some(problem) = judge_read(writes, read, *revision, view.get(*agent_id)) {
                found.push(Violation::new(
                    Rule::AckedWriteLost,
                    format!(
                        "ListAgents by {} at revision {revision} ({:?}): agent {agent_id}: {problem}",
                        read.client,
                        since_start(ops, read.invoked_at)
                    ),
                ));
            }
        }
        for agent_id in view.keys() {
            if !by_agent.contains_key(agent_id.as_str()) {
                found.push(Violation::new(
                    Rule::AckedWriteLost,
                    format!(
                        "ListAgents at revision {revision}: agent {agent_id} was never written"
                    ),
                ));
            }
        }
    }
    (found, checked)
}

fn judge_read(
    writes: &AgentWrites<'_>,
    read: &Op,
    revision: u64,
    present: Option<&switchboard_proto::v1::Agent>,
) -> Option<String> {
    let latest = writes
        .acked
        .iter()
        .filter(|w| w.result.revision().is_some_and(|r| r <= revision))
        .max_by_key(|w| w.result.revision());
    // An indeterminate write may have landed after `latest` (it did not
    // complete before `latest` began) and before the read (it began before
    // the read ended).
    let may_follow = |w: &&&Op| {
        w.invoked_at < read.completed_at && latest.is_none_or(|l| w.completed_at > l.invoked_at)
    };
    let mut may_register = false;
    let mut may_deregister = false;
    for w in writes.indeterminate.iter().filter(may_follow) {
        match w.kind {
            OpKind::Register { .. } => may_register = true,
            _ => may_deregister = true,
        }
    }
    // Registrations whose revision we never learned: certain once they
    // completed before the read, possible while they overlap it.
    for w in &writes.unknown_revision {
        if w.completed_at < read.invoked_at && latest.is_none() {
            return match present {
                Some(_) => None,
                None if may_deregister => None,
                None => Some("registered (acknowledged) but missing".into()),
            };
        }
        if w.invoked_at < read.completed_at {
            may_register = true;
        }
    }
    match (latest, present) {
        (Some(write), Some(agent)) => {
            let acked = write.result.revision().unwrap_or(0);
            match write.kind {
                OpKind::Register { .. } if agent.mod_revision < acked && !may_register => {
                    Some(format!(
                        "at mod_revision {}, older than its acknowledged registration at {acked}",
                        agent.mod_revision
                    ))
                }
                OpKind::Deregister { .. } if !may_register => {
                    Some(format!("present, but its deregistration at {acked} was acknowledged"))
                }
                _ => None,
            }
        }
        (Some(write), None) => match write.kind {
            OpKind::Register { .. } if !may_deregister => Some(format!(
                "missing, but its registration at revision {} was acknowledged",
                write.result.revision().unwrap_or(0)
            )),
            _ => None,
        },
        (None, Some(agent)) if !may_register => Some(format!(
            "present (mod_revision {}) though no registration of it can be in this read",
            agent.mod_revision
        )),
        (None, _) => None,
    }
}

// === revisions go forward ===

/// Acknowledged writes get distinct revisions that follow real time: a write
/// that began after another completed has a higher revision, and a read
/// answers at a revision at least that of everything completed before it
/// began. And the epoch never changes: no run here recreates the store.
fn revisions_forward(ops: &[Op]) -> (Vec<Violation>, usize) {
    let mut found = Vec::new();
    let mut epochs: Vec<&str> = Vec::new();
    let mut by_revision: HashMap<u64, &Op> = HashMap::new();
    // (revision, is_write) of every op that carries a revision.
    let mut stamped: Vec<(&Op, u64, bool)> = Vec::new();
    for op in ops {
        match (&op.kind, &op.result) {
            (
                OpKind::Register { .. } | OpKind::Deregister { .. },
                Outcome::Written { revision, epoch },
            ) if *revision > 0 => {
                if !epoch.is_empty() && !epochs.contains(&epoch.as_str()) {
                    epochs.push(epoch);
                }
                if let Some(other) = by_revision.insert(*revision, op) {
                    found.push(Violation::new(
                        Rule::RevisionBackwards,
                        format!(
                            "revision {revision} acknowledged twice: {} of {:?} and {} of {:?}",
                            other.client,
                            other.agent_id(),
                            op.client,
                            op.agent_id()
                        ),
                    ));
                }
                stamped.push((op, *revision, true));
            }
            (OpKind::List { revision, .. }, Outcome::Ok) => stamped.push((op, *revision, false)),
            _ => {}
        }
    }
    if epochs.len() > 1 {
        found.push(Violation::new(
            Rule::RevisionBackwards,
            format!("the store epoch changed during the run: {epochs:?}"),
        ));
    }
    // Sweep in invocation order; `done` holds the completions seen so far.
    let mut by_completion: Vec<&(&Op, u64, bool)> = stamped.iter().collect();
    by_completion.sort_by_key(|(op, _, _)| op.completed_at);
    let mut by_invocation: Vec<&(&Op, u64, bool)> = stamped.iter().collect();
    by_invocation.sort_by_key(|(op, _, _)| op.invoked_at);
    let mut next = 0;
    let mut floor: Option<(u64, &Op)> = None;
    for (op, revision, is_write) in by_invocation {
        while next < by_completion.len() && by_completion[next].0.completed_at < op.invoked_at {
            let (done, done_revision, _) = by_completion[next];
            if floor.is_none_or(|(r, _)| *done_revision > r) {
                floor = Some((*done_revision, done));
            }
            next += 1;
        }
        let Some((highest, before)) = floor else { continue };
        let backwards = if *is_write { *revision <= highest } else { *revision < highest };
        if backwards {
            found.push(Violation::new(
                Rule::RevisionBackwards,
                format!(
                    "{} {} at revision {revision} began {:?} after {} completed at revision {highest}",
                    op.client,
                    op.category(),
                    op.invoked_at.duration_since(before.completed_at).unwrap_or_default(),
                    before.client
                ),
            ));
        }
    }
    (found, stamped.len())
}

/// How far into the run `at` is, for messages.
pub(crate) fn since_start(ops: &[Op], at: SystemTime) -> Duration {
    ops.first().and_then(|first| at.duration_since(first.invoked_at).ok()).unwrap_or_default()
}
