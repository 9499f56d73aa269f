//! Structured JSON logs: one line per event, the same keys in every service, so lines
//! from all services merge and filter cleanly:
//!
//! `{"ts":"2026-11-22T10:00:00.123Z","level":"info","service":"ballot","event":"request",
//!   "request_id":"…","route":"/e/{election}/ballot","status":201,"latency_ms":2.1,…}`
//!
//! Fields of the enclosing spans (the request span carries `request_id`) are merged into
//! each line; an event without an `event` field is logged as `"event":"log"`.
//! `TURNOUT_LOG` (or `RUST_LOG`) sets the filter.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; call once at the top of `main`.
pub fn init(service: &'static str) {
    let filter = std::env::var("TURNOUT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().event_format(JsonLine { service });
    // A second init (tests booting several apps) is harmless.
    let _ = tracing_subscriber::registry().with(filter).with(SpanFields).with(lines).try_init();
    tracing::info!(event = "start", "{service} starting");
}

/// Keeps each span's fields as JSON, for the lines logged inside it.
struct SpanFields;

struct Fields(Map<String, Value>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields(Map::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

/// The line format: fixed keys first, then span fields, then the event's own.
struct JsonLine {
    service: &'static str,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        line.insert("ts".into(), Value::from(jiff::Timestamp::now().to_string()));
        line.insert("level".into(), Value::from(event.metadata().level().as_str().to_ascii_lowercase()));
        line.insert("service".into(), Value::from(self.service));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    line.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut own = Fields(Map::new());
        event.record(&mut own);
        line.extend(own.0);
        line.entry("event").or_insert_with(|| Value::from("log"));
        writeln!(writer, "{}", Value::Object(line))
    }
}
