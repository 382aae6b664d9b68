use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tower::ServiceExt;

use super::*;

async fn get(router: Router, path: &str) -> anyhow::Result<(StatusCode, Option<String>, String)> {
    let request = Request::get(path).body(Body::empty())?;
    let response = router.oneshot(request).await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().map(str::to_owned))
        .transpose()?;
    let body = to_bytes(response.into_body(), 1 << 20).await?;
    Ok((status, content_type, String::from_utf8(body.to_vec())?))
}

fn no_metrics() -> MetricsRenderer {
    Arc::new(String::new)
}

#[test]
fn readiness_waits_for_every_task() {
    let readiness = Readiness::new();
    assert!(readiness.is_ready(), "no tasks: ready");
    let store = readiness.register("store");
    let listener = readiness.clone().register("listener");
    assert!(!readiness.is_ready());
    assert_eq!(readiness.pending(), ["store", "listener"]);

    store.ready();
    assert_eq!(readiness.pending(), ["listener"]);
    listener.ready();
    assert!(readiness.is_ready());
}

#[test]
fn a_dropped_task_stays_pending() {
    let readiness = Readiness::new();
    drop(readiness.register("snapshot"));
    assert!(!readiness.is_ready());
    assert_eq!(readiness.pending(), ["snapshot"]);
}

#[tokio::test]
async fn healthz_is_always_ok() -> anyhow::Result<()> {
    let readiness = Readiness::new();
    let _pending = readiness.register("store");
    let (status, _, body) = get(probe_router(readiness, no_metrics()), "/healthz").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
    Ok(())
}

#[tokio::test]
async fn readyz_lists_pending_tasks_until_ready() -> anyhow::Result<()> {
    let readiness = Readiness::new();
    let store = readiness.register("store");
    let _listener = readiness.register("listener");
    let router = probe_router(readiness.clone(), no_metrics());

    let (status, _, body) = get(router.clone(), "/readyz").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: waiting for store, listener");

    store.ready();
    let (status, _, body) = get(router.clone(), "/readyz").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: waiting for listener");

    _listener.ready();
    let (status, _, body) = get(router, "/readyz").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ready");
    Ok(())
}

#[tokio::test]
async fn metrics_uses_the_renderer_and_openmetrics_type() -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let heartbeats = Counter::<u64>::default();
    registry.register("switchboard_heartbeats", "Heartbeats received", heartbeats.clone());
    heartbeats.inc_by(3);
    let router = probe_router(Readiness::new(), registry_renderer(Arc::new(registry)));

    let (status, content_type, body) = get(router.clone(), "/metrics").await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(body.contains("switchboard_heartbeats_total 3"), "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");

    heartbeats.inc();
    let (_, _, body) = get(router, "/metrics").await?;
    assert!(body.contains("switchboard_heartbeats_total 4"), "rendered per request: {body}");
    Ok(())
}

#[tokio::test]
async fn unknown_paths_are_not_found() -> anyhow::Result<()> {
    let (status, _, _) = get(probe_router(Readiness::new(), no_metrics()), "/nope").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}
