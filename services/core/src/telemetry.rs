//! Structured JSON logs: one line per event, the same keys in every service, so lines
//! from all services merge and filter cleanly:
//!
//! `{"ts":"2026-11-22T10:00:00.123Z","level":"info","service":"ballot","event":"request",
//!   "request_id":"…","route":"/e/{election}/ballot","status":201,"latency_ms":2.1,…}`
//!
//! Fields of the enclosing spans (the request span carries `request_id`) are merged into
//! each line; an event without an `event` field is logged as `"event":"log"`.
//! `TURNOUT_LOG` (or `RUST_LOG`) sets the filter.
//!
//! Lines are written to stdout by a thread of their own: a request formats its line into
//! a buffer in memory, and 20 ms after the first line the writer puts the buffer out in
//! one write, so a busy service makes one system call per batch instead of one per line,
//! and none on the request's thread; an idle one makes none. The buffer is bounded: if
//! stdout stalls, new lines are dropped (and the count is logged once it drains) rather
//! than holding up sign-ins or votes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Bytes of lines waiting for the writer thread, at most; beyond it lines are dropped
/// (and counted).
const QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// How long the writer thread lets lines gather after the first one arrives, before it
/// writes them out.
const WRITE_EVERY: Duration = Duration::from_millis(20);

/// Installs the global subscriber; call once at the top of `main` and keep the guard:
/// dropping it (as `main` returns) writes out the lines still queued.
#[must_use = "dropping the guard at once would lose the lines queued at exit"]
pub fn init(service: &'static str) -> LogGuard {
    let filter = std::env::var("TURNOUT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let queue = LineQueue::start(service, std::io::stdout(), QUEUED_BYTES);
    let lines = tracing_subscriber::fmt::layer().event_format(JsonLine { service }).with_writer(queue.clone());
    // A second init (tests booting several apps) is harmless.
    let _ = tracing_subscriber::registry().with(filter).with(SpanFields).with(lines).try_init();
    tracing::info!(event = "start", "{service} starting");
    LogGuard(queue)
}

struct Queue {
    service: &'static str,
    queued: Mutex<Vec<u8>>,
    capacity: usize,
    dropped: AtomicU64,
    /// Taken while writing out, so the writer thread and a final flush take turns.
    out: Mutex<Box<dyn std::io::Write + Send>>,
    /// The writer thread, woken by the first line into an empty buffer.
    writer: std::sync::OnceLock<std::thread::Thread>,
    /// Times the writer thread has woken to write out (to test that idle is idle).
    rounds: AtomicU64,
}

/// Log lines on their way to stdout. A line is appended to a buffer in memory (the
/// formatter hands over each line in one call); a thread of its own writes the buffer
/// out `WRITE_EVERY` after its first line, in one write, so nobody is woken per line
/// and a request never waits for stdout. With nothing to log the thread sleeps until a
/// line comes: an idle service has no timer waking it.
#[derive(Clone)]
struct LineQueue(Arc<Queue>);

impl LineQueue {
    fn start(service: &'static str, out: impl std::io::Write + Send + 'static, capacity: usize) -> Self {
        let queue = Self(Arc::new(Queue {
            service,
            queued: Mutex::new(Vec::new()),
            capacity,
            dropped: AtomicU64::new(0),
            out: Mutex::new(Box::new(out)),
            writer: std::sync::OnceLock::new(),
            rounds: AtomicU64::new(0),
        }));
        let writer = queue.clone();
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
            let mut spare = Vec::new();
            loop {
                // A line coming in between this check and `park` leaves its wake-up
                // token behind, so `park` then returns at once: no line waits forever.
                while writer.is_empty() {
                    std::thread::park();
                }
                std::thread::sleep(WRITE_EVERY);
                writer.0.rounds.fetch_add(1, Ordering::Relaxed);
                writer.write_out(&mut spare);
            }
        });
        match spawned {
            Ok(thread) => {
                let _ = queue.0.writer.set(thread.thread().clone());
            }
            Err(e) => eprintln!("{service}: cannot start the log writer thread: {e}"),
        }
        queue
    }

    fn is_empty(&self) -> bool {
        self.0.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
            && self.0.dropped.load(Ordering::Relaxed) == 0
    }

    /// Writes out everything queued so far (and how many lines were dropped, if any).
    fn write_out(&self, spare: &mut Vec<u8>) {
        let mut out = self.0.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::swap(&mut *self.0.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner), spare);
        if !spare.is_empty() {
            let _ = out.write_all(spare);
            spare.clear();
        }
        let lost = self.0.dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let line = serde_json::json!({
                "ts": jiff::Timestamp::now().to_string(), "level": "warn", "service": self.0.service,
                "event": "log_lines_dropped", "lines": lost,
            });
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}

impl std::io::Write for LineQueue {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut queued = self.0.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = queued.is_empty();
        if queued.len() + line.len() > self.0.capacity {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            queued.extend_from_slice(line);
        }
        drop(queued);
        if first && let Some(writer) = self.0.writer.get() {
            writer.unpark();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineQueue {
    type Writer = LineQueue;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes out the queued lines when dropped (at the end of `main`).
pub struct LogGuard(LineQueue);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.write_out(&mut Vec::new());
    }
}

/// Keeps each span's fields as JSON, for the lines logged inside it.
struct SpanFields;

/// Fields in the order they were recorded (a field recorded again keeps its place).
#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn set(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for SpanFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
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
        self.set(field.name(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), Value::from(format!("{value:?}")));
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
    /// Written straight into the line, without building a map per event: this runs for
    /// every request.
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(
            writer,
            r#"{{"ts":"{}","level":"{level}","service":{}"#,
            jiff::Timestamp::now(),
            Value::from(self.service)
        )?;
        let mut own = Fields::default();
        event.record(&mut own);
        let scope: Vec<_> = ctx.event_scope().map(|s| s.from_root().collect()).unwrap_or_default();
        let extensions: Vec<_> = scope.iter().map(|span| span.extensions()).collect();
        let spans = extensions.iter().filter_map(|e| e.get::<Fields>()).flat_map(|f| f.0.iter());
        let all: Vec<&(&'static str, Value)> = spans.chain(own.0.iter()).collect();
        for (i, (name, value)) in all.iter().map(|f| (f.0, &f.1)).enumerate() {
            // A later field of the same name (an inner span's, the event's own) wins, and
            // the fixed keys stay fixed.
            let fixed = matches!(name, "ts" | "level" | "service");
            if fixed || all[i + 1..].iter().any(|f| f.0 == name) {
                continue;
            }
            write!(writer, r#","{name}":{value}"#)?;
        }
        if !all.iter().any(|f| f.0 == "event") {
            write!(writer, r#","event":"log""#)?;
        }
        writeln!(writer, "}}")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// An output that records what it got, and can be held shut to stall the writer.
    #[derive(Clone, Default)]
    struct Held {
        got: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
        /// Writes begun (counted before waiting at the gate) and finished.
        entered: Arc<AtomicU64>,
        writes: Arc<AtomicU64>,
    }

    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.entered.fetch_add(1, Ordering::Relaxed);
            let _open = self.gate.lock().unwrap();
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(held: &Held) -> Vec<serde_json::Value> {
        let got = held.got.lock().unwrap();
        String::from_utf8_lossy(&got).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn lines_arrive_whole_and_in_order_in_few_writes_and_the_guard_writes_the_rest() {
        let held = Held::default();
        let queue = LineQueue::start("test", held.clone(), 1 << 20);
        let mut writer = queue.clone();
        for i in 0..500 {
            writer.write_all(format!("{{\"n\":{i}}}\n").as_bytes()).unwrap();
        }
        drop(LogGuard(queue)); // writes out whatever the thread has not yet
        let got = lines(&held);
        assert_eq!(got.iter().map(|l| l["n"].as_u64().unwrap()).collect::<Vec<_>>(), (0..500).collect::<Vec<_>>());
        // A write per batch, not per line.
        assert!(held.writes.load(Ordering::Relaxed) < 10, "{} writes", held.writes.load(Ordering::Relaxed));
    }

    #[test]
    fn an_idle_queue_does_not_wake_its_writer_and_a_new_line_still_goes_out() {
        let held = Held::default();
        let queue = LineQueue::start("test", held.clone(), 1 << 20);
        let mut writer = queue.clone();
        writer.write_all(b"{\"n\":0}\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while lines(&held).is_empty() {
            assert!(std::time::Instant::now() < deadline, "the first line was written out");
            std::thread::sleep(Duration::from_millis(5));
        }
        let rounds = queue.0.rounds.load(Ordering::Relaxed);
        std::thread::sleep(WRITE_EVERY * 10);
        assert_eq!(queue.0.rounds.load(Ordering::Relaxed), rounds, "nothing queued, nothing woke the writer");
        // A line after the idle spell goes out on its own, without a guard's flush.
        writer.write_all(b"{\"n\":1}\n").unwrap();
        while lines(&held).len() < 2 {
            assert!(std::time::Instant::now() < deadline, "the second line was written out");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(queue.0.rounds.load(Ordering::Relaxed), rounds + 1);
    }

    #[test]
    fn a_stalled_output_drops_lines_beyond_the_queue_and_says_how_many() {
        let held = Held::default();
        let queue = LineQueue::start("test", held.clone(), 100);
        let gate = held.gate.lock().unwrap();
        let mut writer = queue.clone();
        // The first line, then wait until the writer thread is stuck writing it out.
        writer.write_all(b"{\"n\":0}\n").unwrap();
        while held.entered.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        let started = std::time::Instant::now();
        for i in 1..100 {
            writer.write_all(format!("{{\"n\":{i}}}\n").as_bytes()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(1), "logging never waits for the output");
        drop(gate);
        drop(LogGuard(queue));
        let got = lines(&held);
        let kept: Vec<u64> = got.iter().filter_map(|l| l.get("n")).map(|n| n.as_u64().unwrap()).collect();
        let dropped: u64 =
            got.iter().filter(|l| l["event"] == "log_lines_dropped").map(|l| l["lines"].as_u64().unwrap()).sum();
        // Line 0 was being written; 100 bytes hold lines 1 to 12 (8 and 9 bytes each).
        assert_eq!(kept, (0..=12).collect::<Vec<_>>());
        assert_eq!(dropped, 87, "every line is either written or counted as dropped");
    }

    #[test]
    fn a_line_has_the_fixed_keys_then_span_fields_then_the_events_own_as_valid_json() {
        let held = Held::default();
        let queue = LineQueue::start("test", held.clone(), 1 << 20);
        let subscriber = tracing_subscriber::registry().with(SpanFields).with(
            tracing_subscriber::fmt::layer().event_format(JsonLine { service: "auth" }).with_writer(queue.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "abc123", route = "/outer");
            let _in_request = request.enter();
            let inner = tracing::info_span!("login", route = "/auth/login");
            let _in_login = inner.enter();
            tracing::info!(event = "request", status = 200u64, latency_ms = 1.5, note = "a \"quoted\"\nline");
            tracing::warn!("no event field");
        });
        drop(LogGuard(queue));
        let text = String::from_utf8(held.got.lock().unwrap().clone()).unwrap();
        let got: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(got.len(), 2, "{text}");
        let first = &got[0];
        assert!(text.lines().next().unwrap().starts_with(r#"{"ts":""#), "fixed keys first: {text}");
        assert_eq!((first["level"].as_str(), first["service"].as_str()), (Some("info"), Some("auth")));
        assert_eq!(first["request_id"], "abc123", "the enclosing span's field");
        assert_eq!(first["route"], "/auth/login", "the inner span wins");
        assert_eq!((first["event"].as_str(), first["status"].as_u64()), (Some("request"), Some(200)));
        assert_eq!(first["note"], "a \"quoted\"\nline", "escaped and read back");
        assert!(first["ts"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
        assert_eq!(text.lines().next().unwrap().matches(r#""route""#).count(), 1, "no key twice");
        assert_eq!((got[1]["level"].as_str(), got[1]["event"].as_str()), (Some("warn"), Some("log")));
        assert_eq!(got[1]["message"], "no event field");
    }
}
