//! JSON log lines that join up with traces.
//!
//! One object per line: `timestamp`, `level`, `target`, the event's fields
//! (`message` included), `span` (the innermost span: its name and fields),
//! `spans` (names, outermost first) and — when an exported span is active —
//! `trace_id` and `span_id` in the W3C hex form a tracing backend searches by.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event formatter (pair it with [`JsonFields`] for span fields).
///
/// Trace ids are read through the subscriber the formatter belongs to; call
/// [`JsonFormat::attach`] once that subscriber is installed.
#[derive(Debug, Default, Clone)]
pub struct JsonFormat {
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl JsonFormat {
    /// A formatter not yet attached to a subscriber (no trace ids until then).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads trace ids through `dispatch` from now on.
    pub fn attach(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }
}

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        if SystemTime.format_time(&mut Writer::new(&mut timestamp)).is_ok() {
            line.insert("timestamp".into(), Value::String(timestamp));
        }
        let meta = event.metadata();
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        event.record(&mut JsonVisitor(&mut line));

        if let Some(scope) = ctx.event_scope() {
            let mut names = Vec::new();
            let mut innermost = None;
            let mut ids = None;
            for span in scope {
                if innermost.is_none() {
                    let mut fields = span_fields::<N, _>(&span);
                    fields.insert("name".into(), Value::String(span.name().to_owned()));
                    innermost = Some(Value::Object(fields));
                }
                if ids.is_none() {
                    ids = self.trace_ids(&span.id());
                }
                names.push(Value::String(span.name().to_owned()));
            }
            names.reverse();
            if let Some(span) = innermost {
                line.insert("span".into(), span);
            }
            line.insert("spans".into(), Value::Array(names));
            if let Some((trace_id, span_id)) = ids {
                line.insert("trace_id".into(), Value::String(trace_id));
                line.insert("span_id".into(), Value::String(span_id));
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The span's fields as formatted by [`JsonFields`] (empty for other formatters).
fn span_fields<N, S>(span: &tracing_subscriber::registry::SpanRef<'_, S>) -> Map<String, Value>
where
    N: for<'a> FormatFields<'a> + 'static,
    S: for<'a> LookupSpan<'a>,
{
    let extensions = span.extensions();
    let Some(fields) = extensions.get::<FormattedFields<N>>() else { return Map::new() };
    match serde_json::from_str::<Value>(fields) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

impl JsonFormat {
    /// The OpenTelemetry ids of span `id`, when the OpenTelemetry layer tracks it.
    fn trace_ids(&self, id: &tracing::span::Id) -> Option<(String, String)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| (context.trace_id().to_string(), context.span_id().to_string()))
    }
}

/// The field formatter to pair with [`JsonFormat`].
pub fn json_fields() -> JsonFields {
    JsonFields::new()
}

/// Collects an event's fields into a JSON map.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().to_owned(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests;
