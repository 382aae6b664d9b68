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
    let first = snapshot.rewire_agent("b", 1).expect("first wiring is new");
    assert!(first.tools[0].dependencies[0].providers.is_empty());
    assert!(snapshot.rewire_agent("b", 2).is_none(), "nothing changed");
    snapshot.put_agent(agent("a", "date", ""));
    let second = snapshot.rewire_agent("b", 3).expect("a provider joined");
    assert_eq!(second.revision, 3);
    assert_eq!(second.tools[0].dependencies[0].providers[0].agent_id, "a");
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
