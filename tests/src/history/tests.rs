//! The checker against hand-made histories: one that keeps every guarantee,
//! and for each rule one that breaks it (so the checker can fail) next to a
//! near miss that does not (so it does not cry wolf).

use std::time::{Duration, SystemTime};

use prost_types::Timestamp;
use switchboard_proto::v1::{Agent, AgentStatus, EventType, WatchResponse};
use tonic::Code;

use super::{Op, OpKind, Outcome, Rule, Rules, check};
use crate::View;

const EPOCH: &str = "6f0c3c9e-0000-4000-8000-000000000000";

fn rules() -> Rules {
    Rules {
        expired_after: Duration::from_secs(2),
        tell_within: Duration::from_secs(1),
        slack: Duration::from_millis(100),
    }
}

/// `ms` milliseconds into the run.
fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
}

fn op(client: &str, kind: OpKind, from: u64, to: u64, result: Outcome) -> Op {
    Op { client: client.into(), kind, invoked_at: at(from), completed_at: at(to), result }
}

fn written(revision: u64) -> Outcome {
    Outcome::Written { revision, epoch: EPOCH.into() }
}

fn register(id: &str, from: u64, to: u64, result: Outcome) -> Op {
    op("writer", OpKind::Register { agent_id: id.into() }, from, to, result)
}

fn deregister(id: &str, from: u64, to: u64, result: Outcome) -> Op {
    op("writer", OpKind::Deregister { agent_id: id.into() }, from, to, result)
}

fn agent(id: &str, mod_revision: u64, status: AgentStatus, changed_ms: u64) -> Agent {
    Agent {
        id: id.into(),
        mod_revision,
        status: status as i32,
        status_changed_at: Some(Timestamp::from(at(changed_ms))),
        ..Agent::default()
    }
}

fn list(from: u64, to: u64, revision: u64, agents: &[Agent]) -> Op {
    let view: View = agents.iter().map(|a| (a.id.clone(), a.clone())).collect();
    op("reader", OpKind::List { revision, view }, from, to, Outcome::Ok)
}

fn watch_start(watcher: &str, since: u64, ms: u64) -> Op {
    let kind = OpKind::WatchStart { since, epoch: String::new() };
    op(watcher, kind, ms, ms, Outcome::Ok)
}

fn message(kind: EventType, revision: u64, agent: Option<Agent>, reason: &str) -> WatchResponse {
    WatchResponse {
        r#type: kind as i32,
        revision,
        store_epoch: EPOCH.into(),
        agent,
        reason: reason.into(),
        ..WatchResponse::default()
    }
}

fn event(watcher: &str, message: WatchResponse, ms: u64) -> Op {
    op(watcher, OpKind::WatchEvent { message }, ms, ms, Outcome::Ok)
}

fn ack(id: &str, sent: u64, acked: u64) -> Op {
    let kind =
        OpKind::HeartbeatAck { agent_id: id.into(), sequence: 1, status: AgentStatus::Healthy };
    op(id, kind, sent, acked, Outcome::Ok)
}

fn push(id: &str, ms: u64, providers: &[(&str, AgentStatus)]) -> Op {
    let providers = providers.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect();
    let kind = OpKind::Push { agent_id: id.into(), resolution_revision: ms, providers };
    op(id, kind, ms, ms, Outcome::Ok)
}

/// a and b registered, a deregistered; a watcher from scratch sees it all;
/// the final read agrees.
fn clean() -> Vec<Op> {
    let healthy = AgentStatus::Healthy;
    vec![
        watch_start("watch", 0, 0),
        event("watch", message(EventType::EndOfSnapshot, 0, None, ""), 1),
        register("a-00000001", 10, 20, written(1)),
        event(
            "watch",
            message(EventType::Added, 1, Some(agent("a-00000001", 1, healthy, 15)), ""),
            21,
        ),
        register("b-00000002", 30, 40, written(2)),
        event(
            "watch",
            message(EventType::Added, 2, Some(agent("b-00000002", 2, healthy, 35)), ""),
            41,
        ),
        deregister("a-00000001", 50, 60, written(3)),
        event(
            "watch",
            message(
                EventType::Removed,
                3,
                Some(agent("a-00000001", 1, healthy, 15)),
                "deregistered",
            ),
            61,
        ),
        list(70, 80, 3, &[agent("b-00000002", 2, healthy, 35)]),
    ]
}

fn rules_broken(ops: &[Op]) -> Vec<Rule> {
    check(ops, &rules()).into_iter().map(|v| v.rule).collect()
}

#[test]
fn a_history_that_keeps_every_guarantee_has_no_violation() {
    assert_eq!(check(&clean(), &rules()), Vec::new());
}

#[test]
fn an_acknowledged_registration_missing_from_a_later_read_is_a_lost_write() {
    let mut ops = clean();
    ops.push(list(90, 95, 3, &[]));
    assert!(rules_broken(&ops).contains(&Rule::AckedWriteLost), "{:?}", check(&ops, &rules()));
}

#[test]
fn an_indeterminate_deregistration_may_explain_a_missing_agent() {
    let mut ops = clean();
    let failed = Outcome::Failed { code: Code::Unavailable, message: "registry died".into() };
    ops.push(deregister("b-00000002", 85, 88, failed));
    // It did land, at revision 4 (the watcher, behind, is another matter).
    ops.push(list(90, 95, 4, &[]));
    assert!(!rules_broken(&ops).contains(&Rule::AckedWriteLost), "{:?}", check(&ops, &rules()));
}

#[test]
fn a_definite_failure_explains_nothing() {
    let mut ops = clean();
    let failed = Outcome::Failed { code: Code::NotFound, message: "agent not found".into() };
    ops.push(deregister("b-00000002", 85, 88, failed));
    ops.push(list(90, 95, 3, &[]));
    assert!(rules_broken(&ops).contains(&Rule::AckedWriteLost));
}

#[test]
fn a_record_older_than_its_acknowledged_registration_is_a_lost_write() {
    let mut ops = clean();
    ops.push(register("b-00000002", 82, 84, written(4)));
    // The read at revision 4 still holds b at revision 2.
    ops.push(list(90, 95, 4, &[agent("b-00000002", 2, AgentStatus::Healthy, 35)]));
    assert!(rules_broken(&ops).contains(&Rule::AckedWriteLost));
}

#[test]
fn an_agent_nobody_wrote_is_reported() {
    let mut ops = clean();
    ops.push(list(
        90,
        95,
        3,
        &[
            agent("b-00000002", 2, AgentStatus::Healthy, 35),
            agent("z-00000009", 3, AgentStatus::Healthy, 1),
        ],
    ));
    assert!(rules_broken(&ops).contains(&Rule::AckedWriteLost));
}

#[test]
fn a_gap_in_a_watch_stream_is_reported() {
    let mut ops = clean();
    // Drop the event at revision 2.
    ops.remove(5);
    assert!(rules_broken(&ops).contains(&Rule::WatchStream), "{:?}", check(&ops, &rules()));
}

#[test]
fn a_duplicate_event_is_reported() {
    let mut ops = clean();
    let again = ops[5].clone();
    ops.insert(6, again);
    assert!(rules_broken(&ops).contains(&Rule::WatchStream));
}

#[test]
fn an_acknowledged_write_delivered_as_another_agent_is_reported() {
    let mut ops = clean();
    let wrong = agent("c-00000003", 2, AgentStatus::Healthy, 35);
    ops[5] = event("watch", message(EventType::Added, 2, Some(wrong), ""), 41);
    let broken = check(&ops, &rules());
    assert!(
        broken.iter().any(|v| v.rule == Rule::WatchStream && v.detail.contains("b-00000002")),
        "{broken:?}"
    );
}

#[test]
fn watchers_that_disagree_on_a_revision_are_reported() {
    let mut ops = clean();
    let healthy = AgentStatus::Healthy;
    ops.push(watch_start("other", 0, 0));
    ops.push(event("other", message(EventType::EndOfSnapshot, 0, None, ""), 1));
    ops.push(event(
        "other",
        message(EventType::Added, 1, Some(agent("a-00000001", 1, healthy, 15)), ""),
        21,
    ));
    let changed = Agent { name: "different".into(), ..agent("b-00000002", 2, healthy, 35) };
    ops.push(event("other", message(EventType::Added, 2, Some(changed), ""), 41));
    ops.push(event(
        "other",
        message(EventType::Removed, 3, Some(agent("a-00000001", 1, healthy, 15)), "deregistered"),
        61,
    ));
    assert!(rules_broken(&ops).contains(&Rule::WatchStream));
}

#[test]
fn a_resumed_watcher_must_continue_where_it_was() {
    let mut ops = clean();
    // The final read is last; the watcher reconnects before it, from 3.
    let last = ops.pop().unwrap();
    ops.push(watch_start("watch", 3, 62));
    ops.push(event("watch", message(EventType::Bookmark, 3, None, ""), 63));
    ops.push(last.clone());
    assert_eq!(check(&ops, &rules()), Vec::new());
    // Resuming from 2 while the view is at 3 would apply events twice.
    let mut ops = clean();
    let last = ops.pop().unwrap();
    ops.push(watch_start("watch", 2, 62));
    let a = agent("a-00000001", 1, AgentStatus::Healthy, 15);
    ops.push(event("watch", message(EventType::Removed, 3, Some(a), "deregistered"), 63));
    ops.push(last);
    assert!(rules_broken(&ops).contains(&Rule::WatchStream));
}

#[test]
fn a_watcher_behind_the_final_read_is_reported() {
    let mut ops = clean();
    ops.remove(7); // the REMOVED at revision 3 never arrived
    assert!(rules_broken(&ops).contains(&Rule::WatchStream));
}

#[test]
fn a_snapshot_cut_short_teaches_nothing_and_is_no_violation() {
    let mut ops = clean();
    let last = ops.pop().unwrap();
    let b = agent("b-00000002", 2, AgentStatus::Healthy, 35);
    ops.push(watch_start("late", 0, 62));
    ops.push(event("late", message(EventType::Snapshot, 3, Some(b.clone()), ""), 63));
    ops.push(watch_start("late", 0, 64));
    ops.push(event("late", message(EventType::Snapshot, 3, Some(b), ""), 65));
    ops.push(event("late", message(EventType::EndOfSnapshot, 3, None, ""), 66));
    ops.push(last);
    assert_eq!(check(&ops, &rules()), Vec::new());
}

#[test]
fn expiring_an_agent_whose_heartbeat_was_just_acknowledged_is_reported() {
    let mut ops = clean();
    ops.push(ack("b-00000002", 1000, 1010));
    let expired = agent("b-00000002", 4, AgentStatus::Expired, 2000);
    ops.push(op(
        "reader",
        OpKind::Get { agent_id: "b-00000002".into(), agent: Some(expired) },
        2100,
        2110,
        Outcome::Ok,
    ));
    assert!(rules_broken(&ops).contains(&Rule::ExpiredWhileAcked));
}

#[test]
fn expiring_an_agent_silent_for_expired_after_is_fine() {
    let mut ops = clean();
    ops.push(ack("b-00000002", 1000, 1010));
    let expired = agent("b-00000002", 4, AgentStatus::Expired, 3500);
    ops.push(op(
        "reader",
        OpKind::Get { agent_id: "b-00000002".into(), agent: Some(expired) },
        3600,
        3610,
        Outcome::Ok,
    ));
    assert_eq!(check(&ops, &rules()), Vec::new());
}

#[test]
fn expiring_within_expired_after_of_a_registry_start_is_reported() {
    let mut ops = vec![op("registry", OpKind::Restart, 5000, 5100, Outcome::Ok)];
    ops.extend(clean());
    let expired = agent("b-00000002", 4, AgentStatus::Expired, 6000);
    ops.push(op(
        "reader",
        OpKind::Get { agent_id: "b-00000002".into(), agent: Some(expired) },
        6100,
        6110,
        Outcome::Ok,
    ));
    assert!(rules_broken(&ops).contains(&Rule::RestartGrace));
    // Past the grace, the same expiry is fine.
    let late = agent("b-00000002", 4, AgentStatus::Expired, 7500);
    ops.pop();
    ops.push(op(
        "reader",
        OpKind::Get { agent_id: "b-00000002".into(), agent: Some(late) },
        7600,
        7610,
        Outcome::Ok,
    ));
    assert!(!rules_broken(&ops).contains(&Rule::RestartGrace));
}

#[test]
fn a_dependent_never_told_of_its_providers_crash_is_reported() {
    let crash =
        |ms| op("driver", OpKind::Crash { agent_id: "p-00000001".into() }, ms, ms, Outcome::Ok);
    let mut ops = clean();
    ops.push(push("d-00000002", 100, &[("p-00000001", AgentStatus::Healthy)]));
    ops.push(crash(200));
    ops.push(list(5000, 5001, 3, &[agent("b-00000002", 2, AgentStatus::Healthy, 35)]));
    assert!(rules_broken(&ops).contains(&Rule::DependentNotTold));

    let mut told = ops.clone();
    told.insert(told.len() - 1, push("d-00000002", 700, &[("p-00000001", AgentStatus::Degraded)]));
    assert_eq!(check(&told, &rules()), Vec::new());

    // A push after the bound is too late.
    let mut late = ops.clone();
    late.insert(late.len() - 1, push("d-00000002", 1500, &[]));
    assert!(rules_broken(&late).contains(&Rule::DependentNotTold));

    // A dependent cut off from the registry meanwhile cannot be told.
    let mut cut_off = ops;
    let partition = OpKind::Fault { target: "d-00000002".into(), what: "partition".into() };
    cut_off.push(op("driver", partition, 150, 900, Outcome::Ok));
    assert_eq!(check(&cut_off, &rules()), Vec::new());
}

#[test]
fn a_write_acknowledged_below_an_earlier_one_is_reported() {
    let mut ops = clean();
    ops.push(register("c-00000003", 85, 86, written(2)));
    let broken = rules_broken(&ops);
    assert!(broken.contains(&Rule::RevisionBackwards), "{broken:?}");
}

#[test]
fn a_read_older_than_a_completed_write_is_reported() {
    let mut ops = clean();
    ops.push(list(90, 95, 2, &[agent("b-00000002", 2, AgentStatus::Healthy, 35)]));
    assert!(rules_broken(&ops).contains(&Rule::RevisionBackwards));
}

#[test]
fn concurrent_writes_may_complete_in_any_order() {
    let mut ops = clean();
    // Both began before either completed.
    ops.push(register("c-00000003", 82, 90, written(5)));
    ops.push(register("d-00000004", 83, 88, written(4)));
    let mut broken = rules_broken(&ops);
    broken.retain(|rule| *rule == Rule::RevisionBackwards);
    assert_eq!(broken, Vec::new());
}

/// A watcher that resyncs from revision 1 straight to a snapshot at 3.
fn jumper(snapshot: Agent) -> Vec<Op> {
    let a = agent("a-00000001", 1, AgentStatus::Healthy, 15);
    vec![
        watch_start("jumper", 0, 22),
        event("jumper", message(EventType::Snapshot, 1, Some(a), ""), 23),
        event("jumper", message(EventType::EndOfSnapshot, 1, None, ""), 24),
        watch_start("jumper", 1, 65),
        event("jumper", message(EventType::ResyncRequired, 1, None, "compacted"), 66),
        event("jumper", message(EventType::Snapshot, 3, Some(snapshot), ""), 67),
        event("jumper", message(EventType::EndOfSnapshot, 3, None, ""), 68),
    ]
}

#[test]
fn a_watcher_that_jumped_over_a_read_is_compared_with_an_older_read_it_held() {
    let b = agent("b-00000002", 2, AgentStatus::Healthy, 35);
    let mut ops = clean();
    ops.extend(jumper(b.clone()));
    // The newest read is at revision 2, which the jumper never held.
    let a = agent("a-00000001", 1, AgentStatus::Healthy, 15);
    ops.push(list(90, 95, 2, &[a, b]));
    let broken = check(&ops, &rules());
    assert!(!broken.iter().any(|v| v.rule == Rule::WatchStream), "{broken:?}");

    // The read at 3 it did hold must still match.
    let mut ops = clean();
    ops.extend(jumper(agent("b-00000002", 2, AgentStatus::Degraded, 35)));
    let broken = check(&ops, &rules());
    assert!(
        broken.iter().any(|v| v.rule == Rule::WatchStream && v.detail.contains("jumper")),
        "{broken:?}"
    );
}

#[test]
fn a_watcher_that_went_on_past_the_final_read_is_compared_at_that_read() {
    let mut ops = clean();
    let c = agent("c-00000003", 4, AgentStatus::Healthy, 90);
    ops.push(register("c-00000003", 85, 88, written(4)));
    ops.push(watch_start("watch", 3, 89));
    ops.push(event("watch", message(EventType::Added, 4, Some(c), ""), 90));
    ops.push(watch_start("watch", 4, 91));
    ops.push(event("watch", message(EventType::Bookmark, 4, None, ""), 92));
    // The newest read (revision 3) is older than where the watcher went.
    let newest = ops.iter().rposition(|op| matches!(op.kind, OpKind::List { .. })).unwrap();
    assert_eq!(newest, 8);
    assert_eq!(check(&ops, &rules()), Vec::new());
}
