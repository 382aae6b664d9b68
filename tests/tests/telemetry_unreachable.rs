//! Trace export never slows or breaks serving. With the collector down,
//! calls succeed while the exporter's failures are counted; with a collector
//! that accepts exports and never answers, calls keep completing while not
//! one export finishes, and their spans are dropped (and counted) once the
//! bounded queue is full — so no call waited for an export. Checked by
//! counting, not by timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_tests::{McpClient, OtlpReceiver, TracedMesh, eventually, mcp, metric_value};

const DEADLINE: Duration = Duration::from_secs(30);
const CALLS: usize = 40;
const QUEUE: usize = 16;

async fn metrics(url: &str) -> String {
    reqwest::get(url).await.expect("GET /metrics").text().await.expect("body")
}

/// The gateway's and hello's `/metrics` URLs.
fn gateway_and_hello(mesh: &TracedMesh) -> [(String, &'static str); 2] {
    let urls = mesh.metrics_urls();
    [(urls[1].clone(), "switchboard_gateway"), (urls[3].clone(), "switchboard_agent")]
}

fn otel(text: &str, prefix: &str, name: &str) -> f64 {
    metric_value(text, &format!("{prefix}_otel_{name}")).unwrap_or_else(|| panic!("{name}: {text}"))
}

async fn greet_many(mesh: &TracedMesh) {
    let client = McpClient::new(&mesh.gateway_url());
    for i in 0..CALLS {
        let result = client.call("greet", json!({"name": format!("caller {i}")})).await;
        let result = result.unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert!(mcp::text(&result).contains("Today is "), "call {i}: {}", mcp::text(&result));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_succeed_while_export_to_an_unreachable_collector_fails() {
    let mesh = TracedMesh::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("SWITCHBOARD_LOG", "error"),
    ])
    .await;
    mesh.wait_until_wired().await;
    greet_many(&mesh).await;
    for (url, prefix) in gateway_and_hello(&mesh) {
        let text = eventually("export failures counted", DEADLINE, || async {
            let text = metrics(&url).await;
            (otel(&text, prefix, "export_failures_total") > 0.0).then_some(text)
        })
        .await;
        assert_eq!(otel(&text, prefix, "spans_exported_total"), 0.0, "{prefix}: nothing exported");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_waits_for_a_collector_that_never_answers() {
    let collector = OtlpReceiver::stalling().await;
    let endpoint = collector.endpoint();
    let queue = QUEUE.to_string();
    let mesh = TracedMesh::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", queue.as_str()),
        // No export may end (by failing) while the test runs.
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "600000"),
        ("SWITCHBOARD_LOG", "error"),
    ])
    .await;
    mesh.wait_until_wired().await;
    // Each of the four processes has spans by now; their first exports reach
    // the collector and hang there.
    eventually("an export from each process stuck at the collector", DEADLINE, || async {
        (collector.export_requests() >= 4).then_some(())
    })
    .await;

    greet_many(&mesh).await;

    // Every call made two spans in each process; at most QUEUE fit in the
    // queue, and not one export finished: the rest were dropped, not waited for.
    for (url, prefix) in gateway_and_hello(&mesh) {
        let text = metrics(&url).await;
        assert_eq!(otel(&text, prefix, "spans_exported_total"), 0.0, "{prefix}: none exported");
        assert_eq!(otel(&text, prefix, "export_failures_total"), 0.0, "{prefix}: none ended");
        let dropped = otel(&text, prefix, "spans_dropped_total");
        let made = (2 * CALLS) as f64;
        assert!(dropped >= made - QUEUE as f64, "{prefix}: {dropped} dropped of {made}");
        assert!(otel(&text, prefix, "span_queue_size") <= QUEUE as f64, "{prefix}: bounded");
    }
}
