//! The gateway as an OAuth 2.1 resource server, as a client sees it: the
//! 401 challenge and metadata discovery, and every way a bearer token can
//! be wrong — against a real issuer stand-in with keys the test makes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use switchboard_tests::gateway::http_get;
use switchboard_tests::metric_value;
use switchboard_tests::oauth::{SecuredMesh, TestKey, bearer, call, list, now};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_gets_401_with_the_metadata_a_client_discovers_the_issuer_from() {
    let mesh = SecuredMesh::start(|_| {}).await;
    let answer = list(&mesh.url(), &[]).await;
    assert_eq!(answer.status, 401, "{:?}", answer.body);
    let challenge = answer.header("www-authenticate");
    let metadata_url =
        format!("http://{}/.well-known/oauth-protected-resource/mcp", mesh.gateway.addr);
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{metadata_url}\""));
    assert_eq!(answer.error_code(), Some(-32010), "{:?}", answer.body);

    // The client follows the challenge to the metadata, then to the issuer.
    for url in [
        metadata_url.clone(),
        format!("http://{}/.well-known/oauth-protected-resource", mesh.gateway.addr),
    ] {
        let (status, body) = http_get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let document: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(document["resource"], mesh.resource.as_str());
        assert_eq!(document["authorization_servers"][0], mesh.issuer.issuer.as_str());
        let scopes = document["scopes_supported"].as_array().unwrap();
        assert!(scopes.iter().any(|s| s == "tools:call"), "{document}");
    }
    let issuer_metadata = format!("{}/.well-known/oauth-authorization-server", mesh.issuer.issuer);
    let (status, body) = http_get(&issuer_metadata).await;
    assert_eq!(status, 200);
    assert!(body.contains("jwks.json"), "{body}");

    // Probes and metrics stay open.
    assert_eq!(mesh.gateway.get("/healthz").await.0, 200);
    assert_eq!(mesh.gateway.get("/metrics").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_lists_and_calls() {
    let mesh = SecuredMesh::start(|_| {}).await;
    let auth = mesh.auth("alice", "tools:call");
    let listed = list(&mesh.url(), &auth).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.tool_names(), ["get_date", "greet"]);
    let called = call(&mesh.url(), &auth, "get_date").await;
    assert_eq!(called.status, 200, "{:?}", called.body);
    assert_eq!(called.text().len(), "2026-12-01".len(), "{:?}", called.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_its_cause() {
    let mesh = SecuredMesh::start(|_| {}).await;
    let key = mesh.issuer.current_key();
    let claims = || mesh.issuer.claims("mallory", "tools:call", &mesh.resource);
    let with = |field: &str, value: Value| {
        let mut claims = claims();
        claims[field] = value;
        key.sign(&claims)
    };
    let cases = [
        ("expired", with("exp", (now() - 3600).into()), "expired"),
        ("not yet valid", with("nbf", (now() + 3600).into()), "not valid yet"),
        ("wrong audience", with("aud", "http://elsewhere.example/mcp".into()), "audience"),
        ("wrong issuer", with("iss", "http://evil.example".into()), "issuer"),
        ("bad signature", key.impostor().sign(&claims()), "signature"),
        ("unknown key", TestKey::new("nobody").sign(&claims()), "unknown signing key"),
        ("not a token", "eyJhbGciOi.not.atoken".to_owned(), "well-formed"),
    ];
    for (what, token, message) in cases {
        let answer = call(&mesh.url(), &bearer(&token), "get_date").await;
        assert_eq!(answer.status, 401, "{what}: {:?}", answer.body);
        let challenge = answer.header("www-authenticate");
        assert!(challenge.contains("error=\"invalid_token\""), "{what}: {challenge}");
        assert!(challenge.contains("resource_metadata="), "{what}: {challenge}");
        assert!(answer.error_message().contains(message), "{what}: {:?}", answer.body);
    }
    let metrics = mesh.gateway.metrics().await;
    for cause in ["expired", "not_yet_valid", "wrong_audience", "wrong_issuer", "bad_signature"] {
        let sample = format!("switchboard_gateway_auth_failures_total{{cause=\"{cause}\"}}");
        assert_eq!(metric_value(&metrics, &sample), Some(1.0), "{sample}\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_the_scope_gets_403_insufficient_scope() {
    let mesh = SecuredMesh::start(|_| {}).await;
    let auth = mesh.auth("reader", "resources:read");
    let answer = call(&mesh.url(), &auth, "get_date").await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    let challenge = answer.header("www-authenticate");
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"tools:call\""),
        "{challenge}"
    );
    assert!(answer.error_message().contains("tools:call"), "{:?}", answer.body);
    // Nothing it could call is listed.
    assert!(list(&mesh.url(), &auth).await.tool_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_at_the_issuer_is_fetched_on_first_sight() {
    let mesh = SecuredMesh::start(|_| {}).await;
    let before = call(&mesh.url(), &mesh.auth("alice", "tools:call"), "greet").await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    let fetched = mesh.issuer.fetches();
    let old = mesh.issuer.current_key();
    let new = mesh.issuer.rotate("k2");
    let token = new.sign(&mesh.issuer.claims("alice", "tools:call", &mesh.resource));
    let after = call(&mesh.url(), &bearer(&token), "greet").await;
    assert_eq!(after.status, 200, "{:?}", after.body);
    assert_eq!(mesh.issuer.fetches(), fetched + 1, "one refetch for the new key id");
    // Cached tokens of the old key stay valid until they expire; a fresh
    // one signed by the retired key is refused.
    let retired = old.sign(&mesh.issuer.claims("bob", "tools:call", &mesh.resource));
    assert_eq!(call(&mesh.url(), &bearer(&retired), "greet").await.status, 401);
}
