//! Who may call which tool at the gateway: the policy file (allowed,
//! denied with the rule named, `tools/list` filtered, a bad reload keeps
//! the old policy), rate limits (a burst cut at the bucket, counted; other
//! principals unaffected), the call audit (every call once, with principal
//! and outcome), the identity agents receive and token passthrough, and
//! API keys checked at the registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_gateway::access::{IdentityMode, Rate};
use switchboard_telemetry::audit::AuditTarget;
use switchboard_tests::gateway::register_fake;
use switchboard_tests::oauth::{LegacySession, SecuredMesh, bearer, call, list, mcp};
use switchboard_tests::{RecordingUpstream, eventually, metric_value};

const DEADLINE: Duration = Duration::from_secs(30);

const POLICY: &str = r#"
[[rules]]
name = "alice-dates"
effect = "allow"
principals = ["jwt:alice"]
tools = ["get_*"]

[[rules]]
name = "no-greetings-for-bob"
effect = "deny"
principals = ["jwt:bob"]
agents = ["hello"]

[[rules]]
name = "bob-rest"
effect = "allow"
principals = ["jwt:bob"]
"#;

async fn with_policy(dir: &tempfile::TempDir) -> SecuredMesh {
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, POLICY).unwrap();
    SecuredMesh::start(|access| {
        access.policy = Some(path);
        access.policy_check_every = Duration::from_millis(50);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_allows_denies_naming_the_rule_and_filters_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = with_policy(&dir).await;
    let (alice, bob) = (mesh.auth("alice", "tools:call"), mesh.auth("bob", "tools:call"));

    assert_eq!(list(&mesh.url(), &alice).await.tool_names(), ["get_date"]);
    assert_eq!(list(&mesh.url(), &bob).await.tool_names(), ["get_date"]);
    let carol = mesh.auth("carol", "tools:call");
    assert!(list(&mesh.url(), &carol).await.tool_names().is_empty());

    assert_eq!(call(&mesh.url(), &alice, "get_date").await.status, 200);
    let denied = call(&mesh.url(), &alice, "greet").await;
    assert_eq!((denied.status, denied.error_code()), (200, Some(-32011)), "{:?}", denied.body);
    assert!(denied.error_message().contains("rule \"default\""), "{:?}", denied.body);
    let denied = call(&mesh.url(), &bob, "greet").await;
    assert!(denied.error_message().contains("\"no-greetings-for-bob\""), "{:?}", denied.body);
    assert_eq!(denied.body["error"]["data"]["rule"], "no-greetings-for-bob");

    let metrics = mesh.gateway.metrics().await;
    let sample = r#"switchboard_gateway_denials_total{rule="no-greetings-for-bob"}"#;
    assert_eq!(metric_value(&metrics, sample), Some(1.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_file_keeps_the_old_policy_and_a_good_one_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let mesh = with_policy(&dir).await;
    let path = dir.path().join("policy.toml");
    let alice = mesh.auth("alice", "tools:call");

    std::fs::write(&path, "[[rules]]\nname = \"oops\"\neffect = \"permit\"\n").unwrap();
    eventually("the bad file is rejected", DEADLINE, || async {
        let metrics = mesh.gateway.metrics().await;
        let sample = r#"switchboard_gateway_policy_reloads_total{outcome="invalid"}"#;
        metric_value(&metrics, sample).filter(|n| *n >= 1.0)
    })
    .await;
    assert_eq!(call(&mesh.url(), &alice, "get_date").await.status, 200, "old policy kept");
    assert_eq!(call(&mesh.url(), &alice, "greet").await.error_code(), Some(-32011));

    let opened = POLICY.replace("tools = [\"get_*\"]", "tools = [\"get_*\", \"greet\"]");
    std::fs::write(&path, opened).unwrap();
    eventually("the new policy lets alice greet", DEADLINE, || async {
        let answer = call(&mesh.url(), &alice, "greet").await;
        (answer.error_code() != Some(-32011)).then_some(())
    })
    .await;
    assert_eq!(list(&mesh.url(), &alice).await.tool_names(), ["get_date", "greet"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_cut_at_the_limit_and_other_principals_are_unaffected() {
    // A bucket of 3 refilled once in 1000 s: within the test, exactly 3 pass.
    let mesh = SecuredMesh::start(|access| {
        access.limits.per_principal = Some(Rate { per_second: 0.001, burst: 3 });
    })
    .await;
    let alice = mesh.auth("alice", "tools:call");
    let mut passed = 0;
    let mut limited = 0;
    for _ in 0..10 {
        let answer = call(&mesh.url(), &alice, "get_date").await;
        match answer.status {
            200 => passed += 1,
            429 => {
                limited += 1;
                assert_eq!(answer.error_code(), Some(-32012), "{:?}", answer.body);
                assert!(answer.body["error"]["data"]["retryAfterMs"].as_u64().unwrap() > 0);
                assert!(answer.header("retry-after").parse::<u64>().unwrap() >= 1);
            }
            other => panic!("HTTP {other}: {:?}", answer.body),
        }
    }
    assert_eq!((passed, limited), (3, 7));
    let bob = mesh.auth("bob", "tools:call");
    let url = mesh.url();
    let bob_passed = futures::future::join_all((0..3).map(|_| call(&url, &bob, "greet")))
        .await
        .iter()
        .filter(|a| a.status == 200)
        .count();
    assert_eq!(bob_passed, 3, "bob has his own bucket");
    let metrics = mesh.gateway.metrics().await;
    let sample = r#"switchboard_gateway_rate_limited_total{principal="jwt:alice",tool="get_date"}"#;
    assert_eq!(metric_value(&metrics, sample), Some(7.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_a_scenario_is_audited_once_with_principal_and_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let (audit_file, policy_file) = (audit.clone(), policy.clone());
    let mesh = SecuredMesh::start(move |access| {
        access.policy = Some(policy_file);
        access.audit = AuditTarget::File(audit_file);
        access.limits.per_principal = Some(Rate { per_second: 0.001, burst: 1 });
    })
    .await;
    let (alice, bob) = (mesh.auth("alice", "tools:call"), mesh.auth("bob", "tools:call"));
    let url = mesh.url();
    let greet = json!({"name": "greet", "arguments": {"name": "a secret"}});
    assert_eq!(call(&url, &alice, "get_date").await.status, 200);
    assert_eq!(mcp(&url, &alice, "tools/call", greet.clone()).await.error_code(), Some(-32011));
    assert_eq!(mcp(&url, &bob, "tools/call", greet).await.error_code(), Some(-32011));
    assert_eq!(call(&url, &bob, "nope").await.error_code(), Some(-32602));
    assert_eq!(call(&url, &bob, "get_date").await.status, 200);
    assert_eq!(call(&url, &bob, "get_date").await.status, 429);

    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seen: Vec<(String, String, String)> = records
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            assert_eq!(field("action"), "tools/call", "{r}");
            assert_eq!(r["detail"]["arguments_sha256"].as_str().map(str::len), Some(64), "{r}");
            assert!(r["detail"]["latency_ms"].is_number(), "{r}");
            assert!(r.get("time").is_some(), "{r}");
            (field("who"), field("target"), field("outcome"))
        })
        .collect();
    let expected = [
        ("jwt:alice", "get_date", "ok"),
        ("jwt:alice", "greet", "denied:default"),
        ("jwt:bob", "greet", "denied:no-greetings-for-bob"),
        ("jwt:bob", "nope", "unknown_tool"),
        ("jwt:bob", "get_date", "ok"),
        ("jwt:bob", "get_date", "rate_limited:principal"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into())).collect();
    assert_eq!(seen, expected, "{text}");
    assert!(records[0]["detail"]["agent"].as_str().unwrap().starts_with("date-service"));
    assert!(!text.contains("a secret"), "arguments are not recorded unless configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_learn_who_calls_signed_and_never_see_the_token_unless_asked() {
    let key = b"an hmac key of at least thirty-two bytes".to_vec();
    let hmac = key.clone();
    let mesh = SecuredMesh::start(move |access| {
        access.identity = IdentityMode::Signed { key: hmac };
        access.token_passthrough = vec!["recall".into()];
    })
    .await;
    let recorder = RecordingUpstream::start().await;
    let _fake =
        register_fake(mesh.registry.channel().await, "recorder", "remember", &recorder.url()).await;
    let _fake2 =
        register_fake(mesh.registry.channel().await, "recorder2", "recall", &recorder.url()).await;
    mesh.gateway.caught_up(mesh.registry.registry().snapshot().revision).await;

    let token = mesh.token("alice", "tools:call");
    let session = LegacySession::open(&mesh.url(), &bearer(&token)).await;
    // A client cannot speak for someone else: its own entry is replaced.
    let forged = json!({"name": "remember", "arguments": {"value": "x"},
        "_meta": {"io.switchboard/caller": {"principal": "jwt:root"}}});
    let answer = session.post("tools/call", Some(forged)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    session.call("recall", json!({})).await;

    let records = recorder.records();
    assert_eq!(records.calls.len(), 2, "{records:?}");
    let meta = &records.calls[0]["params"]["_meta"];
    assert_eq!(meta["io.switchboard/caller"]["principal"], "jwt:alice", "{meta}");
    assert_eq!(meta["io.switchboard/caller"]["scopes"], json!(["tools:call"]));
    let signed = meta["io.switchboard/callerToken"].as_str().unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[recorder.url()]);
    let claims = jsonwebtoken::decode::<Value>(
        signed,
        &jsonwebtoken::DecodingKey::from_secret(&key).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["principal"], "jwt:alice");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(records.call_authorizations[0], "", "the caller's token stays at the gateway");
    assert_eq!(records.call_authorizations[1], format!("Bearer {token}"), "passthrough asked for");
}

/// An API key made by `switchboard key create`'s RPC, used at two
/// gateways, revoked: refused by both within the cache's second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_works_until_revoked_and_then_within_a_second_on_every_gateway() {
    use switchboard_gateway::access::{AccessConfig, KEY_TTL};
    use switchboard_proto::v1::access_service_client::AccessServiceClient;
    use switchboard_proto::v1::{CreateTokenRequest, RevokeTokenRequest, Role};
    // Keys are registry tokens: the registry runs with auth, the agent
    // registers with the admin token, each gateway reads with a viewer token.
    let registry = switchboard_tests::TestRegistry::builder().auth().start().await;
    let admin = registry.admin_token();
    let agent = switchboard_agent::Agent::new("date-service")
        .registry(&registry.addr.to_string())
        .listen("127.0.0.1:0")
        .token(&admin);
    let _agent = switchboard_examples::date_service::start(agent).await.unwrap();
    let viewer = CreateTokenRequest {
        name: "gateways".into(),
        role: Role::Viewer as i32,
        ..CreateTokenRequest::default()
    };
    let (_, viewer) = registry.issue_token(viewer).await;
    let gateway = || {
        switchboard_tests::InProcessGateway::start_with(switchboard_gateway::GatewayConfig {
            registry: registry.addr.to_string(),
            registry_token: switchboard_client::Bearer::new(Some(&viewer)).unwrap(),
            access: AccessConfig {
                api_keys: true,
                registry_token: Some(viewer.clone()),
                ..AccessConfig::default()
            },
            ..switchboard_gateway::GatewayConfig::default()
        })
    };
    let (first, second) = (gateway().await, gateway().await);
    let revision = registry.registry().snapshot().revision;
    first.caught_up(revision).await;
    second.caught_up(revision).await;
    let key = CreateTokenRequest {
        name: "ci".into(),
        role: Role::Client as i32,
        scopes: vec!["tools:call".into()],
        ..CreateTokenRequest::default()
    };
    let (info, secret) = registry.issue_token(key).await;
    let urls = [first.url(), second.url()];
    for url in &urls {
        for auth in [vec![("X-API-Key", secret.clone())], bearer(&secret)] {
            let answer = call(url, &auth, "get_date").await;
            assert_eq!(answer.status, 200, "{url}: {:?}", answer.body);
        }
    }
    let mut tokens = AccessServiceClient::new(registry.channel_as(&admin).await);
    tokens.revoke_token(RevokeTokenRequest { id: info.id }).await.unwrap();
    let revoked_at = tokio::time::Instant::now();
    let auth = vec![("X-API-Key", secret.clone())];
    for url in &urls {
        eventually("the revoked key is refused", DEADLINE, || async {
            (call(url, &auth, "get_date").await.status == 401).then_some(())
        })
        .await;
    }
    // The bound is the cache's lifetime (a correctness bound, not speed):
    // one TTL plus the time the requests themselves took.
    assert!(revoked_at.elapsed() < KEY_TTL * 3, "revocation took {:?}", revoked_at.elapsed());
}
