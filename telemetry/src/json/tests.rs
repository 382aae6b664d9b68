use std::io;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Dispatch;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

/// A subscriber logging JSON into a buffer, with an OpenTelemetry layer
/// when `traced`.
fn subscriber(traced: bool) -> (Dispatch, Buffer) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let json = JsonFormat::new();
    let logs = tracing_subscriber::fmt::layer()
        .fmt_fields(json_fields())
        .event_format(json.clone())
        .with_writer(move || writer.clone());
    let provider = SdkTracerProvider::builder().build();
    let spans = traced.then(|| tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(logs).with(spans));
    json.attach(&dispatch);
    (dispatch, buffer)
}

#[test]
fn lines_in_a_span_carry_its_trace_and_span_ids() {
    let (dispatch, buffer) = subscriber(true);
    let ids = tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("tools/call", agent_id = "hello-1");
        let _entered = span.enter();
        tracing::info!(answer = 42, "inside");
        let cx = span.context();
        let context = cx.span().span_context().clone();
        (context.trace_id().to_string(), context.span_id().to_string())
    });
    tracing::dispatcher::with_default(&dispatch, || tracing::warn!("outside"));

    let lines = buffer.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let inside = &lines[0];
    assert_eq!(inside["message"], "inside");
    assert_eq!(inside["answer"], 42);
    assert_eq!(inside["level"], "INFO");
    assert_eq!(inside["trace_id"], ids.0.as_str());
    assert_eq!(inside["span_id"], ids.1.as_str());
    assert_eq!(inside["span"]["name"], "tools/call");
    assert_eq!(inside["span"]["agent_id"], "hello-1");
    assert_eq!(inside["spans"], serde_json::json!(["tools/call"]));
    assert!(inside["timestamp"].is_string());
    let outside = &lines[1];
    assert_eq!(outside["message"], "outside");
    assert!(outside.get("trace_id").is_none(), "no span, no trace id: {outside}");
}

#[test]
fn without_trace_export_lines_have_no_ids() {
    let (dispatch, buffer) = subscriber(false);
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("work");
        let _entered = span.enter();
        tracing::info!("inside");
    });
    let lines = buffer.lines();
    assert_eq!(lines[0]["span"]["name"], "work");
    assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
}
