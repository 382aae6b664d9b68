use std::sync::Arc;

use switchboard_proto::v1::{CreateTokenRequest, RegisterAgentRequest, Role, Tool};
use switchboard_tls::PeerNames;
use tonic::{Code, Request, Status};

use super::{Access, AuthConfig};
use crate::store::{SledStore, Store};

async fn access(dir: &tempfile::TempDir) -> (Access, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let config = AuthConfig {
        enabled: true,
        bootstrap_token_file: Some(dir.path().join("admin.token")),
        ..AuthConfig::default()
    };
    (Access::load(&config, store.clone()).await.unwrap(), store)
}

fn registration(name: &str, capability: &str) -> RegisterAgentRequest {
    RegisterAgentRequest {
        name: name.into(),
        tools: vec![Tool { name: "t".into(), capability: capability.into(), ..Tool::default() }],
        ..RegisterAgentRequest::default()
    }
}

#[tokio::test]
async fn a_verified_certificate_is_an_agent_bound_to_its_first_name() {
    let dir = tempfile::tempdir().unwrap();
    let (access, _store) = access(&dir).await;
    let mut request = Request::new(());
    request.extensions_mut().insert(PeerNames(vec!["weather".into(), "other".into()]));
    let caller = access.authenticate(&request).unwrap();
    assert_eq!(caller.identity(), "cert:weather");
    assert_eq!(caller.role(), Role::Agent);
    caller.check_registration(&registration("weather", "weather_forecast")).unwrap();
    caller.check_registration(&registration("weather", "weather")).unwrap();
    let hijack =
        Status::from(caller.check_registration(&registration("weather", "payments")).unwrap_err());
    assert_eq!(hijack.code(), Code::PermissionDenied);
    assert!(hijack.message().contains("\"payments\""), "{hijack:?}");
    let other =
        Status::from(caller.check_registration(&registration("other", "other")).unwrap_err());
    assert!(other.message().contains("agent name \"other\""), "{other:?}");
}

#[tokio::test]
async fn a_token_beats_a_certificate_and_no_credential_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (access, _store) = access(&dir).await;
    let missing = Status::from(access.authenticate(&Request::new(())).unwrap_err());
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(missing.message().contains("missing credentials"), "{missing:?}");
    let empty = Request::new(());
    let mut empty = empty;
    empty.extensions_mut().insert(PeerNames(Vec::new()));
    assert!(access.authenticate(&empty).is_err());

    let admin = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let mut request = Request::new(());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {}", admin.trim()).parse().unwrap());
    request.extensions_mut().insert(PeerNames(vec!["weather".into()]));
    let caller = access.authenticate(&request).unwrap();
    assert_eq!(caller.identity(), "token:bootstrap");
    assert_eq!(caller.role(), Role::Admin);
}

#[cfg(unix)]
#[tokio::test]
async fn the_bootstrap_file_is_private_and_made_once() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (first, store) = access(&dir).await;
    let path = dir.path().join("admin.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = std::fs::read_to_string(&path).unwrap();
    assert!(secret.starts_with(super::SECRET_PREFIX));
    assert_eq!(first.list(false).len(), 1);
    drop((first, store));
    let (again, _store) = access(&dir).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret, "bootstrapped twice");
    assert_eq!(again.list(false).len(), 1);
}

#[tokio::test]
async fn token_requests_are_checked_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let (access, _store) = access(&dir).await;
    let bad = |request: CreateTokenRequest| {
        let access = &access;
        async move { Status::from(access.create(request).await.unwrap_err()) }
    };
    let no_role = bad(CreateTokenRequest { name: "x".into(), ..Default::default() }).await;
    assert!(no_role.message().starts_with("role:"), "{no_role:?}");
    let no_names = bad(CreateTokenRequest {
        name: "x".into(),
        role: Role::Agent as i32,
        ..Default::default()
    })
    .await;
    assert!(no_names.message().starts_with("agent_names:"), "{no_names:?}");
    let viewer_scope = bad(CreateTokenRequest {
        name: "x".into(),
        role: Role::Viewer as i32,
        provides: vec!["a".into()],
        ..Default::default()
    })
    .await;
    assert!(viewer_scope.message().starts_with("provides:"), "{viewer_scope:?}");
}
