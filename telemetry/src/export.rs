//! The export path: OTLP/gRPC behind a bounded batch queue.
//!
//! Serving threads only ever push a finished span into a bounded queue
//! ([`Bounded`]); when it is full the span is dropped and counted, never
//! waited for. The SDK's batch processor exports from its own thread, and
//! every export is cut off after `export_timeout` ([`Counted`]), so a
//! collector that hangs (accepts connections, never answers) cannot wedge the
//! exporter forever either: it fails, is counted, and the next batch tries again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::{Either, select};
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use tokio::runtime::Handle;

use crate::stats::STATS;

/// Admission control in front of the batch processor: at most `capacity`
/// spans queued or in export; the rest are dropped and counted.
#[derive(Debug)]
pub(crate) struct Bounded {
    inner: BatchSpanProcessor,
    capacity: i64,
}

/// Counts what the wrapped exporter achieves and bounds each export in time.
#[derive(Debug)]
pub(crate) struct Counted<E> {
    inner: E,
    timeout: Duration,
    runtime: Handle,
    failing: AtomicBool,
}

// === impl Bounded ===

impl Bounded {
    /// A batch processor over `exporter` holding at most `capacity` spans.
    pub(crate) fn new<E>(exporter: E, capacity: usize) -> Self
    where
        E: SpanExporter + Send + 'static,
    {
        // The processor's own queue is as large as ours, so it never drops
        // silently: every drop happens (and is counted) here.
        let config = BatchConfigBuilder::default().with_max_queue_size(capacity).build();
        let inner = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
        Self { inner, capacity: i64::try_from(capacity).unwrap_or(i64::MAX) }
    }
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if STATS.queued.inc() >= self.capacity {
            STATS.queued.dec();
            STATS.dropped.inc();
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

// === impl Counted ===

impl<E: SpanExporter> Counted<E> {
    /// Wraps `inner`; timers run on `runtime`.
    pub(crate) fn new(inner: E, timeout: Duration, runtime: Handle) -> Self {
        Self { inner, timeout, runtime, failing: AtomicBool::new(false) }
    }

    fn record(&self, spans: usize, result: &OTelSdkResult) {
        STATS.queued.dec_by(i64::try_from(spans).unwrap_or(i64::MAX));
        match result {
            Ok(()) => {
                STATS.exported.inc_by(spans as u64);
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("span export recovered");
                }
            }
            Err(error) => {
                STATS.failures.inc();
                if self.failing.swap(true, Ordering::Relaxed) {
                    tracing::debug!(%error, spans, "span export failed again");
                } else {
                    tracing::warn!(%error, spans, "span export failing: spans are dropped until the collector answers");
                }
            }
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len();
        // The timer is made on the runtime: this runs on the processor's own
        // thread, outside it.
        let timeout = self.timeout;
        let timer = self.runtime.spawn(async move { tokio::time::sleep(timeout).await });
        let export = self.inner.export(batch);
        async move {
            let result = match select(Box::pin(export), timer).await {
                Either::Left((result, timer)) => {
                    timer.abort();
                    result
                }
                Either::Right(_) => Err(OTelSdkError::Timeout(self.timeout)),
            };
            self.record(spans, &result);
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
