//! W3C Trace Context in and out of a process.
//!
//! The `traceparent`/`tracestate` pair travels in HTTP headers, gRPC
//! metadata and MCP `params._meta`; these helpers turn it into an
//! OpenTelemetry [`Context`] and back. They use the W3C propagator directly,
//! so they work whether or not this process exports spans: with export off,
//! a caller's context is forwarded unchanged (the trace stays whole as long
//! as the next hop exports).

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The header (and `_meta` key) carrying the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The header (and `_meta` key) carrying vendor trace state.
pub const TRACESTATE: &str = "tracestate";

/// A serialized trace context, ready to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct W3cContext {
    /// `00-<trace id>-<span id>-<flags>`.
    pub traceparent: String,
    /// Vendor state, when there is any.
    pub tracestate: Option<String>,
}

/// The remote parent described by `traceparent` (and `tracestate`), or
/// `None` when it is absent or malformed.
pub fn remote_context(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Context> {
    let mut carrier = HashMap::new();
    carrier.insert(TRACEPARENT.to_owned(), traceparent?.to_owned());
    if let Some(state) = tracestate {
        carrier.insert(TRACESTATE.to_owned(), state.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// The remote parent in HTTP headers (or gRPC metadata as headers).
pub fn from_headers(headers: &http::HeaderMap) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// `cx` serialized, or `None` when it holds no valid span.
pub fn to_w3c(cx: &Context) -> Option<W3cContext> {
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut MapInjector(&mut carrier));
    Some(W3cContext {
        traceparent: carrier.remove(TRACEPARENT)?,
        tracestate: carrier.remove(TRACESTATE).filter(|s| !s.is_empty()),
    })
}

/// The context to hand to the next hop from here: the active span's when
/// spans are exported, else whatever remote context the caller attached.
pub fn current() -> Option<W3cContext> {
    to_w3c(&Context::current())
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_traceparent_round_trips() {
        let cx = remote_context(Some(PARENT), Some("vendor=1")).unwrap();
        let w3c = to_w3c(&cx).unwrap();
        assert_eq!(w3c.traceparent, PARENT);
        assert_eq!(w3c.tracestate.as_deref(), Some("vendor=1"));
    }

    #[test]
    fn garbage_and_absence_give_no_parent() {
        assert!(remote_context(None, None).is_none());
        assert!(remote_context(Some("00-zz-yy-01"), None).is_none());
        assert!(to_w3c(&Context::new()).is_none());
    }

    #[test]
    fn headers_are_read() {
        let mut headers = http::HeaderMap::new();
        headers.insert(TRACEPARENT, http::HeaderValue::from_static(PARENT));
        let cx = from_headers(&headers).unwrap();
        assert_eq!(to_w3c(&cx).unwrap().traceparent, PARENT);
        assert!(from_headers(&http::HeaderMap::new()).is_none());
    }

    #[test]
    fn an_attached_remote_context_is_forwarded_when_nothing_is_exported() {
        let cx = remote_context(Some(PARENT), None).unwrap();
        let _guard = cx.attach();
        assert_eq!(current().unwrap().traceparent, PARENT);
    }
}
