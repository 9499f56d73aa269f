//! Prometheus metrics: one registry per process, served at `/metrics` by every service.
//! Labels stay bounded (route templates or `unmatched`, standard methods or `other`,
//! statuses, outcomes, account names, election ids), never user ids or raw paths.
//!
//! Gauges that mirror the store (outbox depth, window state, the directory pool) are set
//! by scrape hooks that run just before each scrape.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let registry = Registry::new();
    // The store adapter times its own operations (`turnout_store_operation_duration_seconds`).
    #[cfg(feature = "sqlite")]
    registry
        .register(Box::new(turnout_store_sqlite::metrics::OPERATION_SECONDS.clone()))
        .expect("each metric is registered once");
    registry
});

/// A counter vector registered in `REGISTRY`.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    REGISTRY.register(Box::new(counter.clone())).expect("each metric is registered once");
    counter
}

/// A gauge vector registered in `REGISTRY`.
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    REGISTRY.register(Box::new(gauge.clone())).expect("each metric is registered once");
    gauge
}

/// A histogram vector registered in `REGISTRY`.
pub fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let histogram = HistogramVec::new(opts, labels).expect("valid metric definition");
    REGISTRY.register(Box::new(histogram.clone())).expect("each metric is registered once");
    histogram
}

/// Elections covered by per-election gauges and checks, at most (the first by id).
pub const MAX_REPORTED_ELECTIONS: u32 = 100;

/// Seconds, from a fast in-memory answer to a slow dependency.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "turnout_http_requests_total",
        "HTTP requests by route template and status",
        &["route", "method", "status"],
    )
});
static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "turnout_http_request_duration_seconds",
        "HTTP request latency by route template and status",
        &["route", "status"],
        LATENCY_BUCKETS,
    )
});

/// One answered request. `route` is the template (`/e/{election}/ballot`); the label
/// spells it `/e/:election/ballot`, since braces inside label values trip up some tools.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let status = status.to_string();
    let route = route.replace('{', ":").replace('}', "");
    let route = route.as_str();
    HTTP_REQUESTS.with_label_values(&[route, method_label(method), &status]).inc();
    HTTP_SECONDS.with_label_values(&[route, &status]).observe(seconds);
}

/// The method as a label: the standard ones by name, anything a client made up as
/// `other` (any token is a valid HTTP method, so each would be a new series).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

type Hook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

static HOOKS: LazyLock<Mutex<Vec<(&'static str, Hook)>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// Runs `hook` before every scrape (at most 1 s of it), e.g. to set gauges from the
/// store. A hook registered again under the same name replaces the old one.
pub fn on_scrape<F, Fut>(name: &'static str, hook: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hook: Hook = Arc::new(move || Box::pin(hook()));
    let mut hooks = HOOKS.lock().unwrap_or_else(|p| p.into_inner());
    hooks.retain(|(n, _)| *n != name);
    hooks.push((name, hook));
}

/// The text exposition format, after the scrape hooks ran.
pub async fn render_fresh() -> String {
    let hooks: Vec<Hook> = HOOKS.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, h)| h.clone()).collect();
    for hook in hooks {
        if tokio::time::timeout(Duration::from_secs(1), hook()).await.is_err() {
            tracing::warn!(event = "metrics_hook_timeout");
        }
    }
    render()
}

/// The text exposition format.
pub fn render() -> String {
    let mut out = Vec::new();
    TextEncoder::new().encode(&REGISTRY.gather(), &mut out).expect("encoding to a Vec never fails");
    String::from_utf8(out).expect("the text format is UTF-8")
}

#[cfg(test)]
mod tests {
    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(super::method_label("POST"), "POST");
        for made_up in ["BREW", "post", "X-EVIL-1", ""] {
            assert_eq!(super::method_label(made_up), "other", "{made_up:?}");
        }
    }
}
