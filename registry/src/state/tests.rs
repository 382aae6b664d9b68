use std::collections::BTreeSet;
use std::sync::Arc;

use switchboard_proto::v1::{Agent, AgentStatus, DependencySpec, Tool};

use super::*;

fn agent(id: &str, provides: &str, needs: &str) -> Arc<Agent> {
    let mut tool = Tool {
        name: "t".into(),
        capability: provides.into(),
        version: "1.0.0".into(),
        ..Tool::default()
    };
    if !needs.is_empty() {
        tool.dependencies
            .push(DependencySpec { capability: needs.into(), ..DependencySpec::default() });
    }
    Arc::new(Agent {
        id: id.into(),
        name: id.into(),
        endpoint: format!("http://127.0.0.1/{id}"),
        status: AgentStatus::Healthy as i32,
        tools: vec![tool],
        ..Agent::default()
    })
}

#[test]
fn indexes_follow_puts_and_removals() {
    let mut snapshot = Snapshot::default();
    snapshot.put_agent(agent("a", "date", ""));
    snapshot.put_agent(agent("b", "greet", "date"));
    assert_eq!(snapshot.candidates("date").count(), 1);
    let touched = BTreeSet::from(["date".to_owned()]);
    assert_eq!(snapshot.dependents_of(&touched), BTreeSet::from(["b".to_owned()]));

    // Re-registering `a` under another capability moves its index entry.
    snapshot.put_agent(agent("a", "time", ""));
    assert_eq!(snapshot.candidates("date").count(), 0);
    assert!(!snapshot.providers.contains_key("date"));
    snapshot.remove_agent("b");
    assert!(snapshot.dependents_of(&touched).is_empty());
}

#[test]
fn rewiring_reports_only_real_changes() {
    let mut snapshot = Snapshot::default();
    snapshot.put_agent(agent("b", "greet", "date"));
    let first =
        snapshot.rewire_agent("b", 1, &mut Resolver::default()).expect("first wiring is new");
    assert!(first.tools[0].dependencies[0].providers.is_empty());
    assert!(snapshot.rewire_agent("b", 2, &mut Resolver::default()).is_none(), "nothing changed");
    snapshot.put_agent(agent("a", "date", ""));
    let second =
        snapshot.rewire_agent("b", 3, &mut Resolver::default()).expect("a provider joined");
    assert_eq!(second.revision, 3);
    assert_eq!(second.tools[0].dependencies[0].providers[0].agent_id, "a");
}

#[test]
fn dependents_sharing_a_spec_cost_one_resolution() {
    let mut snapshot = Snapshot::default();
    snapshot.put_agent(agent("p", "date", ""));
    let ids: Vec<String> = (0..300).map(|i| format!("d{i:03}")).collect();
    for id in &ids {
        snapshot.put_agent(agent(id, "greet", "date"));
    }
    let mut resolver = Resolver::default();
    let mut wirings = Vec::new();
    for id in &ids {
        let wiring = snapshot.rewire_agent(id, 1, &mut resolver).expect("first wiring");
        assert_eq!(wiring.tools[0].dependencies[0].providers[0].agent_id, "p");
        wirings.push(wiring);
    }
    assert_eq!(resolver.computed(), 1, "300 dependents of one spec, one resolution");
    assert!(
        wirings.iter().all(|w| Arc::ptr_eq(w, &wirings[0])),
        "300 dependents of one shape share one wiring, and so one encoded push"
    );
    // The next change compares each dependent with its previous wiring once
    // per distinct previous wiring, and still shares the new one.
    snapshot.put_agent(agent("q", "date", ""));
    let mut resolver = Resolver::default();
    let next: Vec<_> = ids
        .iter()
        .map(|id| snapshot.rewire_agent(id, 2, &mut resolver).expect("a provider joined"))
        .collect();
    assert!(next.iter().all(|w| Arc::ptr_eq(w, &next[0]) && w.revision == 2));
    assert_eq!(next[0].tools[0].dependencies[0].providers.len(), 2);
    let mut resolver = Resolver::default();
    assert!(ids.iter().all(|id| snapshot.rewire_agent(id, 3, &mut resolver).is_none()));
}

#[test]
fn a_dependent_providing_the_capability_never_resolves_to_itself() {
    // `a` and `b` both provide `date` and need it: each must get the other,
    // while `c` (not a provider) shares the requester-free resolution.
    let mut snapshot = Snapshot::default();
    snapshot.put_agent(agent("a", "date", "date"));
    snapshot.put_agent(agent("b", "date", "date"));
    snapshot.put_agent(agent("c", "greet", "date"));
    let mut resolver = Resolver::default();
    let providers = |snapshot: &mut Snapshot, resolver: &mut Resolver, id: &str| {
        let wiring = snapshot.rewire_agent(id, 1, resolver).expect("first wiring");
        let ids: Vec<String> =
            wiring.tools[0].dependencies[0].providers.iter().map(|p| p.agent_id.clone()).collect();
        ids
    };
    assert_eq!(providers(&mut snapshot, &mut resolver, "a"), ["b"]);
    assert_eq!(providers(&mut snapshot, &mut resolver, "b"), ["a"]);
    assert_eq!(providers(&mut snapshot, &mut resolver, "c"), ["a", "b"]);
    assert_eq!(resolver.computed(), 3);
}

#[test]
fn history_compacts_by_count() {
    let mut snapshot = Snapshot { history_start: 1, ..Snapshot::default() };
    let mut start = None;
    for revision in 1..=5 {
        let event = Arc::new(crate::change::Change::from_event(switchboard_proto::v1::Event {
            revision,
            ..Default::default()
        }));
        start = snapshot.record(event, 3, i64::MIN).or(start);
    }
    assert_eq!(snapshot.history.len(), 3);
    assert_eq!(start, Some(3));
    assert_eq!(snapshot.history_start, 3);
}
