//! Watch streams, checked across every reconnection of every watcher.
//!
//! A watcher's history is a chain of segments (one per stream it opened),
//! each resuming from the revision the one before reached. Each segment must
//! keep the stream guarantees on the view the watcher held when it opened
//! it; all watchers must agree on what happened at each revision; every
//! acknowledged write inside a watcher's coverage must be the event at its
//! revision; and a watcher's view at the final read's revision must be that
//! read.

use std::collections::{BTreeMap, HashMap};

use switchboard_proto::v1::{Agent, EventType, WatchResponse};

use super::{Rule, Violation};
use crate::history::{Op, OpKind, Outcome};
use crate::{Started, View, check_stream, kind, normalized};

/// One stream of one watcher.
struct Segment {
    since: u64,
    messages: Vec<WatchResponse>,
}

/// Reads a watcher's view is compared with, newest first.
const LAST_READS: usize = 5;

/// What one revision was, as a watcher saw it.
type Seen = (EventType, String, Agent);

/// Revisions a watcher saw as events: `(after, through]` per segment.
struct Coverage {
    ranges: Vec<(u64, u64)>,
    events: HashMap<u64, Seen>,
    reached: u64,
}

pub(super) fn check(ops: &[Op]) -> (Vec<Violation>, usize) {
    let mut found = Vec::new();
    let mut checked = 0;
    let watchers = segments(ops);
    let mut agreed: HashMap<u64, (&str, Seen)> = HashMap::new();
    let reads: Vec<(u64, &View)> = ops
        .iter()
        .rev()
        .filter_map(|op| match (&op.kind, &op.result) {
            (OpKind::List { revision, view }, Outcome::Ok) => Some((*revision, view)),
            _ => None,
        })
        .take(LAST_READS)
        .collect();
    for (watcher, chain) in &watchers {
        let coverage = match follow(chain, None) {
            Ok((coverage, _)) => coverage,
            Err(error) => {
                found.push(Violation::new(Rule::WatchStream, format!("{watcher}: {error}")));
                continue;
            }
        };
        checked += coverage.events.len();
        for (revision, seen) in &coverage.events {
            match agreed.get(revision) {
                Some((first, theirs)) if theirs != seen => found.push(Violation::new(
                    Rule::WatchStream,
                    format!(
                        "revision {revision}: {watcher} saw {:?} of {}, {first} saw {:?} of {}",
                        seen.0, seen.1, theirs.0, theirs.1
                    ),
                )),
                Some(_) => {}
                None => {
                    agreed.insert(*revision, (watcher.as_str(), seen.clone()));
                }
            }
        }
        found.extend(acked_writes_delivered(ops, watcher, &coverage));
        found.extend(final_view(watcher, chain, &coverage, &reads));
    }
    (found, checked)
}

/// Each watcher's segments, in order.
fn segments(ops: &[Op]) -> BTreeMap<String, Vec<Segment>> {
    let mut watchers: BTreeMap<String, Vec<Segment>> = BTreeMap::new();
    for op in ops {
        match &op.kind {
            OpKind::WatchStart { since, .. } => {
                let segment = Segment { since: *since, messages: Vec::new() };
                watchers.entry(op.client.clone()).or_default().push(segment);
            }
            OpKind::WatchEvent { message } => {
                if let Some(segment) = watchers.get_mut(&op.client).and_then(|c| c.last_mut()) {
                    segment.messages.push(message.clone());
                }
            }
            _ => {}
        }
    }
    watchers
}

/// Replays a watcher's chain; with `cutoff`, stops at that revision and
/// returns the view there.
fn follow(chain: &[Segment], cutoff: Option<u64>) -> Result<(Coverage, View), String> {
    let mut coverage = Coverage { ranges: Vec::new(), events: HashMap::new(), reached: 0 };
    let mut view = View::new();
    let mut epoch = String::new();
    let limit = cutoff.unwrap_or(u64::MAX);
    for (index, segment) in chain.iter().enumerate() {
        if segment.messages.is_empty() {
            continue; // the stream never opened (registry down)
        }
        let starts_over =
            segment.since == 0 || kind(&segment.messages[0]) == EventType::ResyncRequired;
        let snapshot_at = segment
            .messages
            .iter()
            .find(|m| kind(m) == EventType::EndOfSnapshot)
            .map(|m| m.revision);
        let from = match (starts_over, snapshot_at) {
            (false, _) => Some(segment.since),
            (true, Some(revision)) => Some(revision),
            // Cut off mid-snapshot: the watcher learned nothing and must
            // start that snapshot over.
            (true, None) => None,
        };
        // Past the cutoff, later segments resume from revisions beyond it.
        if from.is_some_and(|from| from > limit) {
            break;
        }
        if segment.since > 0 && segment.since != coverage.reached {
            return Err(format!(
                "segment {index} resumed from {} but the watcher was at {}",
                segment.since, coverage.reached
            ));
        }
        let Some(from) = from else { continue };
        let started = Started { since: segment.since, base: view.clone(), filtered: false };
        let checked = check_stream(&segment.messages, &started, limit)
            .map_err(|e| format!("segment {index} (since {}): {e}", segment.since))?;
        if !epoch.is_empty() && checked.epoch != epoch {
            return Err(format!(
                "segment {index}: epoch {:?} after {epoch:?} with no store recreated",
                checked.epoch
            ));
        }
        epoch.clone_from(&checked.epoch);
        coverage.ranges.push((from, checked.revision));
        for event in &checked.events {
            if let Some(agent) = &event.agent {
                let seen = (kind(event), agent.id.clone(), normalized(agent.clone()));
                coverage.events.insert(event.revision, seen);
            }
        }
        coverage.reached = checked.revision;
        view = checked.view;
    }
    Ok((coverage, view))
}

/// Every acknowledged write inside the watcher's coverage is the event at
/// its revision.
fn acked_writes_delivered(ops: &[Op], watcher: &str, coverage: &Coverage) -> Vec<Violation> {
    let mut found = Vec::new();
    for op in ops.iter().filter(|op| op.is_write()) {
        let Outcome::Written { revision, .. } = op.result else { continue };
        if revision == 0 || !coverage.ranges.iter().any(|(a, b)| *a < revision && revision <= *b) {
            continue;
        }
        let agent_id = op.agent_id().unwrap_or_default();
        let expected: &[EventType] = match op.kind {
            OpKind::Register { .. } => &[EventType::Added, EventType::Changed],
            _ => &[EventType::Removed],
        };
        match coverage.events.get(&revision) {
            Some((event, id, _)) if id == agent_id && expected.contains(event) => {}
            other => found.push(Violation::new(
                Rule::WatchStream,
                format!(
                    "{watcher}: acknowledged {} of {agent_id} at revision {revision} \
                     delivered as {:?}",
                    op.category(),
                    other.map(|(event, id, _)| (event, id))
                ),
            )),
        }
    }
    found
}

/// The watcher reached the final read's revision, and its view equals the
/// newest of the last reads it can be compared with: one whose revision the
/// watcher's view was at, rather than jumped over by a resync's snapshot.
fn final_view(
    watcher: &str,
    chain: &[Segment],
    coverage: &Coverage,
    reads: &[(u64, &View)],
) -> Vec<Violation> {
    let Some((last, _)) = reads.first() else { return Vec::new() };
    if coverage.reached < *last {
        return vec![Violation::new(
            Rule::WatchStream,
            format!("{watcher} stopped at revision {} before the final {last}", coverage.reached),
        )];
    }
    for (revision, read) in reads {
        let view = match follow(chain, Some(*revision)) {
            Ok((at, view)) if at.reached == *revision => view,
            Ok(_) => continue,
            Err(error) => {
                return vec![Violation::new(Rule::WatchStream, format!("{watcher}: {error}"))];
            }
        };
        let differs: Vec<&String> =
            view.keys().chain(read.keys()).filter(|id| view.get(*id) != read.get(*id)).collect();
        if differs.is_empty() {
            return Vec::new();
        }
        return vec![Violation::new(
            Rule::WatchStream,
            format!(
                "{watcher}: view at revision {revision} differs from ListAgents for {} agents, \
                 first {}",
                differs.len(),
                differs[0]
            ),
        )];
    }
    Vec::new()
}
