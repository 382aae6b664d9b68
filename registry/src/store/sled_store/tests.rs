use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use switchboard_proto::v1::{AgentStatus, EventType};

use super::*;
use crate::change::Change;
use crate::store::{NewEvent, Upsert};

/// Upper bound for the concurrency tests: a deadlock fails the test instead
/// of hanging it.
const DEADLINE: Duration = Duration::from_secs(120);

fn agent(id: &str, revision: u64) -> Agent {
    Agent {
        id: id.to_owned(),
        name: id.split('-').next().unwrap_or(id).to_owned(),
        version: "1.2.0".to_owned(),
        endpoint: format!("http://127.0.0.1:9000/{id}/mcp"),
        labels: [("zone".to_owned(), "eu-1".to_owned())].into(),
        status: AgentStatus::Healthy as i32,
        create_revision: revision,
        mod_revision: revision,
        ..Default::default()
    }
}

fn event(revision: u64, kind: EventType, agent: &Agent) -> Event {
    Event {
        r#type: kind as i32,
        revision,
        agent: Some(agent.clone()),
        reason: if kind == EventType::Removed { "deregistered".to_owned() } else { String::new() },
        ..Default::default()
    }
}

/// A batch registering `id` at `revision`, with its event.
/// Agents as a batch carries them.
fn shared(agents: Vec<Agent>) -> Vec<Upsert> {
    agents.into_iter().map(|agent| Arc::new(agent).into()).collect()
}

/// Events as a batch carries them.
fn changes(events: Vec<Event>) -> Vec<NewEvent> {
    events.into_iter().map(|event| Arc::new(Change::from_event(event)).into()).collect()
}

fn register(id: &str, revision: u64) -> CommitBatch {
    let agent = agent(id, revision);
    CommitBatch {
        revision,
        events: changes(vec![event(revision, EventType::Added, &agent)]),
        upserts: shared(vec![agent]),
        ..Default::default()
    }
}

/// Registers one agent per revision in `revisions`.
async fn register_each(store: &SledStore, revisions: impl IntoIterator<Item = u64>) {
    for revision in revisions {
        store.commit(register(&format!("agent-{revision:08x}"), revision)).await.unwrap();
    }
}

fn revisions(events: &[Event]) -> Vec<u64> {
    events.iter().map(|event| event.revision).collect()
}

fn ids(agents: &[Agent]) -> Vec<&str> {
    agents.iter().map(|agent| agent.id.as_str()).collect()
}

fn assert_invalid(result: StoreResult<()>, expected: &str) {
    match result {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains(expected), "{message:?} should mention {expected:?}")
        }
        other => panic!("expected Invalid mentioning {expected:?}, got {other:?}"),
    }
}

/// Opens the sled database under a closed store, for tests that damage it.
fn raw_db(dir: &Path) -> sled::Db {
    open_db(dir).unwrap()
}

#[tokio::test]
async fn new_store_has_a_fresh_epoch_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let state = store.load().await.unwrap();
    let epoch = uuid::Uuid::parse_str(&state.epoch).unwrap();
    assert_eq!(epoch.get_version_num(), 4);
    assert_eq!(state.revision, 0);
    assert_eq!(state.compact_revision, 0);
    assert!(state.agents.is_empty());
    assert!(state.events.is_empty());
    store.flush().await.unwrap();
    drop(store);

    let reopened = SledStore::open(dir.path()).unwrap();
    assert_eq!(reopened.load().await.unwrap().epoch, state.epoch);

    let other = tempfile::tempdir().unwrap();
    let other = SledStore::open(other.path()).unwrap();
    assert_ne!(other.load().await.unwrap().epoch, state.epoch, "each store gets its own epoch");
}

#[tokio::test]
async fn committed_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let epoch = store.load().await.unwrap().epoch;

    let weather = agent("weather-1a2b3c4d", 1);
    let date = agent("date-0f0f0f0f", 2);
    let first = vec![event(1, EventType::Added, &weather), event(2, EventType::Added, &date)];
    store
        .commit(CommitBatch {
            revision: 2,
            upserts: shared(vec![weather.clone(), date.clone()]),
            events: changes(first.clone()),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut weather_v2 = weather.clone();
    weather_v2.version = "1.3.0".to_owned();
    weather_v2.mod_revision = 3;
    let second =
        vec![event(3, EventType::Changed, &weather_v2), event(4, EventType::Removed, &date)];
    store
        .commit(CommitBatch {
            revision: 4,
            upserts: shared(vec![weather_v2.clone()]),
            deletes: vec![date.id.clone()],
            events: changes(second.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = store.load().await.unwrap();
    drop(store);

    let after = SledStore::open(dir.path()).unwrap().load().await.unwrap();
    for state in [&before, &after] {
        assert_eq!(state.epoch, epoch);
        assert_eq!(state.revision, 4);
        assert_eq!(state.compact_revision, 0);
        assert_eq!(state.agents, vec![weather_v2.clone()]);
        assert_eq!(state.events, [first.clone(), second.clone()].concat());
    }
}

#[tokio::test]
async fn events_load_in_revision_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    // Past 255 and 65535, where little-endian or textual keys would misorder.
    register_each(&store, [1, 2, 255, 256, 257, 65_535, 65_536, 1 << 40]).await;
    drop(store);

    let state = SledStore::open(dir.path()).unwrap().load().await.unwrap();
    assert_eq!(revisions(&state.events), [1, 2, 255, 256, 257, 65_535, 65_536, 1 << 40]);
    assert_eq!(state.revision, 1 << 40);
    assert_eq!(state.agents.len(), 8);
}

#[tokio::test]
async fn compaction_drops_old_events_and_persists_compact_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    register_each(&store, 1..=10).await;
    let mut batch = register("late-00000011", 11);
    batch.compact_before = Some(6);
    store.commit(batch).await.unwrap();

    let state = store.load().await.unwrap();
    assert_eq!(state.compact_revision, 6);
    assert_eq!(revisions(&state.events), [6, 7, 8, 9, 10, 11]);
    assert_eq!(state.agents.len(), 11, "compaction drops history, never agents");
    drop(store);

    let store = SledStore::open(dir.path()).unwrap();
    let state = store.load().await.unwrap();
    assert_eq!(state.compact_revision, 6);
    assert_eq!(revisions(&state.events), [6, 7, 8, 9, 10, 11]);
    assert_eq!(state.revision, 11);

    // A lower compact_before never moves the compact revision back.
    store
        .commit(CommitBatch { revision: 11, compact_before: Some(3), ..Default::default() })
        .await
        .unwrap();
    let state = store.load().await.unwrap();
    assert_eq!(state.compact_revision, 6);
    assert_eq!(revisions(&state.events), [6, 7, 8, 9, 10, 11]);

    // Compacting everything up to the current revision leaves an empty history.
    store
        .commit(CommitBatch { revision: 11, compact_before: Some(12), ..Default::default() })
        .await
        .unwrap();
    drop(store);
    let state = SledStore::open(dir.path()).unwrap().load().await.unwrap();
    assert_eq!(state.compact_revision, 12);
    assert!(state.events.is_empty());
}

#[tokio::test]
async fn events_left_below_the_compact_revision_by_a_crash_are_skipped_then_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    register_each(&store, 1..=4).await;
    let mut batch = register("late-00000005", 5);
    batch.compact_before = Some(4);
    store.commit(batch).await.unwrap();
    drop(store);

    // What a crash between the compaction's transaction and its deletes
    // leaves: the compact revision raised, old events still there.
    let db = raw_db(dir.path());
    let events = db.open_tree(EVENTS_TREE).unwrap();
    for revision in [1u64, 2] {
        let stale = event(revision, EventType::Added, &agent("stale-00000000", revision));
        events.insert(revision.to_be_bytes(), stale.encode_to_vec()).unwrap();
    }
    db.flush().unwrap();
    drop((events, db));

    let store = SledStore::open(dir.path()).unwrap();
    let state = store.load().await.unwrap();
    assert_eq!(state.compact_revision, 4);
    assert_eq!(revisions(&state.events), [4, 5], "stale history is not replayable");

    let mut batch = register("later-00000006", 6);
    batch.compact_before = Some(5);
    store.commit(batch).await.unwrap();
    drop(store);
    let db = raw_db(dir.path());
    let keys: Vec<_> = db.open_tree(EVENTS_TREE).unwrap().iter().keys().collect();
    let kept: Vec<u64> = keys
        .into_iter()
        .map(|key| u64::from_be_bytes(key.unwrap().as_ref().try_into().unwrap()))
        .collect();
    assert_eq!(kept, [5, 6], "the next compaction deletes the leftovers");
}

#[tokio::test]
async fn backwards_revision_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    register_each(&store, [5]).await;

    assert_invalid(store.commit(register("old-00000004", 4)).await, "below the stored revision 5");
    assert_invalid(
        store.commit(CommitBatch { revision: 3, ..Default::default() }).await,
        "below the stored revision 5",
    );
    // The same revision again would overwrite history.
    assert_invalid(
        store.commit(register("dup-00000005", 5)).await,
        "not above the stored revision",
    );

    // The store is still usable, and the rejected batches left nothing.
    register_each(&store, [6]).await;
    drop(store);
    let state = SledStore::open(dir.path()).unwrap().load().await.unwrap();
    assert_eq!(state.revision, 6);
    assert_eq!(ids(&state.agents), ["agent-00000005", "agent-00000006"]);
    assert_eq!(revisions(&state.events), [5, 6]);
}

#[tokio::test]
async fn inconsistent_batches_are_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let a = agent("a-00000001", 1);
    let b = agent("b-00000002", 2);

    let unordered = CommitBatch {
        revision: 2,
        upserts: shared(vec![a.clone(), b.clone()]),
        events: changes(vec![event(2, EventType::Added, &b), event(1, EventType::Added, &a)]),
        ..Default::default()
    };
    assert_invalid(store.commit(unordered).await, "event revision 1 out of order");

    let beyond = CommitBatch {
        revision: 1,
        upserts: shared(vec![a.clone()]),
        events: changes(vec![event(2, EventType::Added, &a)]),
        ..Default::default()
    };
    assert_invalid(store.commit(beyond).await, "event revision 2 out of order");

    let both = CommitBatch {
        revision: 1,
        upserts: shared(vec![a.clone()]),
        deletes: vec![a.id.clone()],
        events: changes(vec![event(1, EventType::Added, &a)]),
        ..Default::default()
    };
    assert_invalid(store.commit(both).await, "\"a-00000001\" is both upserted and deleted");

    let mut too_far = register("a-00000001", 1);
    too_far.compact_before = Some(3);
    assert_invalid(store.commit(too_far).await, "compact_before Some(3) is beyond it");

    let state = store.load().await.unwrap();
    assert_eq!(state.revision, 0);
    assert!(state.agents.is_empty());
    assert!(state.events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serialized_commits_with_concurrent_flushes_do_not_deadlock() {
    const TASKS: u64 = 8;
    const COMMITS: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    // Like the registry: one commit at a time, revisions in commit order.
    let next_revision = Arc::new(tokio::sync::Mutex::new(0u64));
    let done = Arc::new(AtomicBool::new(false));

    let work = async {
        let mut flushers = Vec::new();
        for _ in 0..2 {
            let (store, done) = (Arc::clone(&store), Arc::clone(&done));
            flushers.push(tokio::spawn(async move {
                let mut flushes = 0u64;
                while !done.load(Ordering::Acquire) {
                    store.flush().await.unwrap();
                    store.load().await.unwrap();
                    flushes += 1;
                }
                flushes
            }));
        }
        let mut writers = Vec::new();
        for task in 0..TASKS {
            let (store, next_revision) = (Arc::clone(&store), Arc::clone(&next_revision));
            writers.push(tokio::spawn(async move {
                for commit in 0..COMMITS {
                    let mut revision = next_revision.lock().await;
                    *revision += 1;
                    let id = format!("t{task}-{commit:08x}");
                    store.commit(register(&id, *revision)).await.unwrap();
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        done.store(true, Ordering::Release);
        for flusher in flushers {
            assert!(flusher.await.unwrap() > 0);
        }
    };
    tokio::time::timeout(DEADLINE, work).await.expect("commits and flushes deadlocked");
    drop(Arc::try_unwrap(store).expect("every task is done"));

    let state = SledStore::open(dir.path()).unwrap().load().await.unwrap();
    let all = TASKS * COMMITS;
    assert_eq!(state.revision, all);
    assert_eq!(state.agents.len() as u64, all);
    assert_eq!(revisions(&state.events), (1..=all).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commits_are_each_applied_whole_or_rejected() {
    const TASKS: u64 = 8;
    const COMMITS: u64 = 25;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    // Unlike the registry, revisions are taken before commits race: a commit
    // that lands after a higher revision must be rejected, and leave nothing.
    let next_revision = Arc::new(AtomicU64::new(0));

    let work = async {
        let mut writers = Vec::new();
        for _ in 0..TASKS {
            let (store, next_revision) = (Arc::clone(&store), Arc::clone(&next_revision));
            writers.push(tokio::spawn(async move {
                let mut accepted = Vec::new();
                for _ in 0..COMMITS {
                    let revision = next_revision.fetch_add(1, Ordering::AcqRel) + 1;
                    match store.commit(register(&format!("r-{revision:08x}"), revision)).await {
                        Ok(()) => accepted.push(revision),
                        Err(StoreError::Invalid(_)) => {}
                        Err(other) => panic!("revision {revision}: {other}"),
                    }
                }
                accepted
            }));
        }
        let mut accepted = BTreeSet::new();
        for writer in writers {
            accepted.extend(writer.await.unwrap());
        }
        accepted
    };
    let accepted = tokio::time::timeout(DEADLINE, work).await.expect("racing commits deadlocked");
    assert!(!accepted.is_empty());
    drop(Arc::try_unwrap(store).expect("every task is done"));

    let state = SledStore::open(dir.path()).unwrap().load().await.unwrap();
    let expected_ids: Vec<String> = accepted.iter().map(|r| format!("r-{r:08x}")).collect();
    assert_eq!(ids(&state.agents), expected_ids);
    assert_eq!(revisions(&state.events), accepted.iter().copied().collect::<Vec<_>>());
    assert_eq!(Some(&state.revision), accepted.last());
}

#[tokio::test]
async fn corrupt_agent_record_is_reported_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    register_each(&store, [1]).await;
    drop(store);

    let db = raw_db(dir.path());
    let agents = db.open_tree(AGENTS_TREE).unwrap();
    // Field 1, length-delimited, claims 127 bytes that are not there.
    agents.insert("weather-1a2b3c4d", &b"\x0a\x7fgarbage"[..]).unwrap();
    db.flush().unwrap();
    drop((agents, db));

    let store = SledStore::open(dir.path()).unwrap();
    match store.load().await {
        Err(error @ StoreError::Corrupt { .. }) => {
            assert!(error.to_string().contains("weather-1a2b3c4d"), "{error}");
            let StoreError::Corrupt { key, .. } = error else { unreachable!() };
            assert_eq!(key, "agents/weather-1a2b3c4d");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_event_record_is_reported_with_its_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    register_each(&store, [1, 2]).await;
    drop(store);

    let db = raw_db(dir.path());
    db.open_tree(EVENTS_TREE).unwrap().insert(2u64.to_be_bytes(), &b"\xff\xff"[..]).unwrap();
    db.flush().unwrap();
    drop(db);

    match SledStore::open(dir.path()).unwrap().load().await {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "events/2"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledStore::open(dir.path()).unwrap());

    let db = raw_db(dir.path());
    db.open_tree(META_TREE).unwrap().insert(META_FORMAT, &99u64.to_be_bytes()[..]).unwrap();
    db.flush().unwrap();
    drop(db);

    match SledStore::open(dir.path()) {
        Err(StoreError::Invalid(message)) => {
            assert!(message.contains("unknown format version 99"), "{message}");
            assert!(message.contains(&dir.path().display().to_string()), "{message}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn open_errors_name_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();

    let error = SledStore::open(&file).unwrap_err();
    assert!(error.to_string().contains(&file.display().to_string()), "{error}");
}
