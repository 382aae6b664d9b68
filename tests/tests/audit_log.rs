//! The audit log: every control-plane change of a scripted scenario, against
//! the real `switchboard registry --audit-log FILE`, appears exactly once
//! with its action, target, outcome and identity; `switchboard audit` reads
//! it back, filtered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use switchboard_proto::v1::{DeregisterAgentRequest, RegisterAgentRequest};
use switchboard_tests::{TestRegistry, cli, eventually};
use tonic::Code;

/// One record reduced to what the scenario checks.
fn key(record: &Value) -> (String, String, String, String, String) {
    let text = |field: &str| record[field].as_str().unwrap_or_default().to_owned();
    let outcome = text("outcome");
    // A refusal is checked by its code; its message is the caller's.
    let outcome = outcome.split(':').next().unwrap_or_default().to_owned();
    let detail = &record["detail"];
    let kind = detail["change"].as_str().or(detail["status"].as_str()).unwrap_or_default();
    (text("who"), text("action"), text("target"), outcome, kind.to_owned())
}

fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).expect("one JSON record per line")).collect()
}

fn row(
    who: &str,
    action: &str,
    target: &str,
    outcome: &str,
    kind: &str,
) -> (String, String, String, String, String) {
    (who.into(), action.into(), target.into(), outcome.into(), kind.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_a_scripted_scenario_is_recorded_once_and_read_back_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let log_text = log.to_str().unwrap();
    let flags = [
        "--audit-log",
        log_text,
        "--heartbeat-interval",
        "200ms",
        "--degraded-after",
        "2s",
        "--expired-after",
        "3s",
        "--retention",
        "1s",
    ];
    let registry = TestRegistry::builder().child_process(&flags).start().await;
    let mut client = registry.registry_client().await;

    // Two agents, one changed, one deregistered (twice: the second is refused),
    // a registration refused for its bad name; the changed one then expires.
    let weather = client
        .register_agent(common::provider("weather", "weather.forecast", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    let clock = client
        .register_agent(common::provider("clock", "time.now", "1.0.0", &[]))
        .await
        .unwrap()
        .into_inner()
        .agent_id;
    let changed = RegisterAgentRequest {
        agent_id: weather.clone(),
        ..common::provider("weather", "weather.forecast", "1.1.0", &[])
    };
    let again = client.register_agent(changed).await.unwrap().into_inner();
    assert!(!again.created);
    client.deregister_agent(DeregisterAgentRequest { agent_id: clock.clone() }).await.unwrap();
    let twice = client.deregister_agent(DeregisterAgentRequest { agent_id: clock.clone() }).await;
    assert_eq!(twice.unwrap_err().code(), Code::NotFound);
    let bad = common::provider("Bad Name!", "x.y", "1.0.0", &[]);
    let refused = client.register_agent(bad).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    // Nobody heartbeats for weather: the registry degrades, expires and
    // finally evicts it, each recorded as its own change.
    eventually(
        "the eviction of the expired agent in the audit log",
        Duration::from_secs(30),
        || {
            let found = records(&log).iter().any(|r| r["action"] == "evict");
            async move { found.then_some(()) }
        },
    )
    .await;

    let all = records(&log);
    let mut seen: Vec<_> = all.iter().map(key).collect();
    let mut expected = vec![
        row("anonymous", "register", &weather, "ok", "created"),
        row("anonymous", "register", &clock, "ok", "created"),
        row("anonymous", "register", &weather, "ok", "changed"),
        row("anonymous", "deregister", &clock, "ok", ""),
        row("anonymous", "deregister", &clock, "not found", ""),
        row("anonymous", "register", "Bad Name!", "invalid argument", ""),
        row("registry", "status", &weather, "ok", "degraded"),
        row("registry", "status", &weather, "ok", "expired"),
        row("registry", "evict", &weather, "ok", "expired"),
    ];
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "audit log:\n{all:#?}");
    for record in &all {
        assert!(record["time"].as_str().unwrap().ends_with('Z'), "{record}");
        if record["who"] == "anonymous" {
            let from = record["from"].as_str().unwrap_or_default();
            assert!(from.starts_with("127.0.0.1:"), "the caller's address: {record}");
        }
        if record["outcome"] == "ok" {
            assert!(record["detail"]["revision"].as_u64().unwrap() > 0, "{record}");
        }
    }
    let refusal = all.iter().find(|r| r["target"] == "Bad Name!").unwrap();
    assert!(refusal["outcome"].as_str().unwrap().contains("name"), "names the field: {refusal}");

    // Read back: a table of everything, and each filter on its own.
    let table = cli(&["audit", "--since", "1h", "--file", log_text]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("TIME") && lines[0].contains("OUTCOME"), "{}", table.stdout);
    assert_eq!(lines.len(), 1 + expected.len(), "{}", table.stdout);
    assert!(table.stdout.contains("invalid argument: "), "{}", table.stdout);

    let registrations = cli(&["audit", "--file", log_text, "--action", "register", "--json"]).await;
    let registrations = registrations.json_lines();
    assert_eq!(registrations.len(), 4);
    assert!(registrations.iter().all(|r| r["action"] == "register"));
    let own = cli(&["audit", "--file", log_text, "--who", "registry", "--json"]).await.json_lines();
    assert_eq!(own.len(), 3);
    let about =
        cli(&["audit", "--file", log_text, "--target", &clock, "--json"]).await.json_lines();
    assert_eq!(about.len(), 3);
    let future =
        cli(&["audit", "--file", log_text, "--since", "2999-01-01T00:00:00Z", "--json"]).await;
    assert_eq!((future.code, future.stdout.as_str()), (0, ""));

    // A torn line is reported with its number and skipped, not fatal.
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"time\": \"2026-\n");
    std::fs::write(&log, text).unwrap();
    let torn = cli(&["audit", "--file", log_text, "--json"]).await;
    assert_eq!(torn.code, 0, "{}", torn.stderr);
    assert_eq!(torn.json_lines().len(), expected.len());
    let line = expected.len() + 1;
    assert!(torn.stderr.contains(&format!(":{line}: not an audit record")), "{}", torn.stderr);

    let bad_since = cli(&["audit", "--file", log_text, "--since", "soon"]).await;
    assert_eq!(bad_since.code, 2);
    assert!(bad_since.stderr.contains("--since"), "{}", bad_since.stderr);
    let missing = cli(&["audit", "--file", "/nonexistent/audit.jsonl"]).await;
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    registry.stop().await;
}
