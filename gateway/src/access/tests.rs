use super::*;

#[test]
fn bearer_secrets_that_are_not_jwts_are_api_keys() {
    assert!(looks_like_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2ln"));
    assert!(!looks_like_jwt("sbk_0123456789abcdef"));
    assert!(!looks_like_jwt("eyJ.only-two"));
    assert_eq!(bearer("Bearer  abc "), Some("abc"));
    assert_eq!(bearer("bearer abc"), Some("abc"));
    assert_eq!(bearer("Basic abc"), None);
    assert_eq!(bearer("Bearer "), None);
}

#[test]
fn each_method_needs_its_scope() {
    assert_eq!(scope_of("tools/call", false), SCOPE_TOOLS_CALL);
    assert_eq!(scope_of("resources/read", false), SCOPE_RESOURCES_READ);
    assert_eq!(scope_of("prompts/get", false), SCOPE_PROMPTS_GET);
    assert_eq!(scope_of("completion/complete", true), SCOPE_PROMPTS_GET);
    assert_eq!(scope_of("completion/complete", false), SCOPE_RESOURCES_READ);
}

#[test]
fn a_policy_needs_authentication() {
    let config = AccessConfig { policy: Some("p.toml".into()), ..AccessConfig::default() };
    assert!(config.validate().unwrap_err().contains("policy"));
    let short = AccessConfig {
        identity: IdentityMode::Signed { key: b"short".to_vec() },
        ..AccessConfig::default()
    };
    assert!(short.validate().unwrap_err().contains("32 bytes"));
}

#[test]
fn a_certificate_maps_to_one_principal() {
    let names = switchboard_tls::PeerNames(vec!["billing.mesh.internal".into()]);
    let principal = principal_of_certificate(&names).unwrap();
    assert_eq!(principal.id, "cert:billing.mesh.internal");
    assert_eq!(principal.method, AuthMethod::Certificate);
    assert!(principal.has_scope(SCOPE_TOOLS_CALL));
}

#[tokio::test]
async fn a_verified_certificate_on_the_request_is_the_caller() {
    let channel = switchboard_client::connect_lazy("127.0.0.1:1").unwrap();
    let config = AccessConfig { mtls: true, ..AccessConfig::default() };
    let access = Access::new(config, channel).unwrap();
    let metrics = GatewayMetrics::new();
    // What a TLS listener with a client CA inserts once the chain verified.
    let mut request = axum::http::Request::new(());
    request.extensions_mut().insert(switchboard_tls::PeerNames(vec!["billing".into()]));
    let (parts, ()) = request.into_parts();
    let principal = access.authenticate(&parts, &metrics).await.unwrap();
    assert_eq!(principal.id, "cert:billing");

    let (parts, ()) = axum::http::Request::new(()).into_parts();
    let refusal = access.authenticate(&parts, &metrics).await.unwrap_err();
    assert_eq!(refusal, Refusal::Unauthenticated { failure: AuthFailure::Missing, metadata: None });
    assert!(
        metrics.render().contains(r#"switchboard_gateway_auth_failures_total{cause="missing"} 1"#)
    );
}
