//! Structured JSON logs. One line per event with the service name, so lines from all
//! services can be merged and filtered. `TURNOUT_LOG` (or `RUST_LOG`) sets the filter.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; call once at the top of `main`.
pub fn init(service: &'static str) {
    let filter = std::env::var("TURNOUT_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false);
    // A second init (tests booting several apps) is harmless.
    let _ = tracing_subscriber::registry().with(filter).with(json).try_init();
    tracing::info!(service, event = "start", "{service} starting");
}
