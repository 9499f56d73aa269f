//! The code service's metrics: codes requested and verified, mail outcomes and
//! quarantines per sender account, enqueue-to-sent time, and the outbox by state (set
//! from the store just before a scrape).

use std::sync::{Arc, LazyLock};

use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec};
use turnout_core::metrics::{MAX_REPORTED_ELECTIONS, counter_vec, gauge_vec, histogram_vec, on_scrape};
use turnout_core::store::{Elections, Outbox};

static REQUESTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "turnout_codes_requested_total",
        "Code requests by outcome (issued, resent, or the error code, e.g. resend_cooldown)",
        &["election", "outcome"],
    )
});
static VERIFIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "turnout_codes_verified_total",
        "Code verifications by outcome (ok, or the error code, e.g. wrong_code)",
        &["election", "outcome"],
    )
});
static QUEUE_TO_SENT: LazyLock<HistogramVec> = LazyLock::new(|| {
    histogram_vec(
        "turnout_mail_queue_to_sent_seconds",
        "From enqueue to the provider's acceptance (whole seconds: the outbox keeps seconds)",
        &["account"],
        &[1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
    )
});
static OUTBOX: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec("turnout_outbox_messages", "Outbox messages by election and state", &["election", "state"])
});
static OLDEST_WAITING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec(
        "turnout_outbox_oldest_waiting_seconds",
        "Age of the oldest message not yet sent: queued, sending or deferred (0 when none)",
        &["election"],
    )
});

pub fn code_requested(election: &str, outcome: &str) {
    REQUESTED.with_label_values(&[election, outcome]).inc();
}
pub fn code_verified(election: &str, outcome: &str) {
    VERIFIED.with_label_values(&[election, outcome]).inc();
}
pub fn queued_to_sent(account: &str, seconds: f64) {
    QUEUE_TO_SENT.with_label_values(&[account]).observe(seconds);
}

/// The outbox gauges, set just before each scrape from the elections' outboxes.
pub fn register<S: Elections + Outbox + ?Sized + 'static>(store: Arc<S>) {
    LazyLock::force(&REQUESTED);
    LazyLock::force(&VERIFIED);
    on_scrape("outbox", move || {
        let store = store.clone();
        async move {
            let Ok(elections) = store.list_elections(None, MAX_REPORTED_ELECTIONS).await else { return };
            let now = jiff::Timestamp::now();
            for e in elections {
                let Ok(s) = store.outbox_summary(&e.id, now).await else { continue };
                for (state, n) in [
                    ("queued", s.queued),
                    ("sending", s.sending),
                    ("deferred", s.deferred),
                    ("sent", s.sent),
                    ("failed", s.failed),
                ] {
                    OUTBOX.with_label_values(&[e.id.as_str(), state]).set(n as i64);
                }
                OLDEST_WAITING.with_label_values(&[e.id.as_str()]).set(s.oldest_waiting_secs.unwrap_or(0));
            }
        }
    });
}

static SENT: LazyLock<IntCounterVec> =
    LazyLock::new(|| counter_vec("turnout_mail_sent_total", "Code emails accepted by the provider", &["account"]));
static DEFERRED: LazyLock<IntCounterVec> =
    LazyLock::new(|| counter_vec("turnout_mail_deferred_total", "Code emails put back for a retry", &["account"]));
static FAILED: LazyLock<IntCounterVec> =
    LazyLock::new(|| counter_vec("turnout_mail_failed_total", "Code emails given up on", &["account", "reason"]));
static QUARANTINED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "turnout_mail_account_quarantines_total",
        "Sender accounts quarantined after a quota or block answer",
        &["account"],
    )
});

pub fn mail_sent(account: &str) {
    SENT.with_label_values(&[account]).inc();
}
pub fn mail_deferred(account: &str) {
    DEFERRED.with_label_values(&[account]).inc();
}
pub fn mail_failed(account: &str, reason: &str) {
    FAILED.with_label_values(&[account, reason]).inc();
}
pub fn account_quarantined(account: &str) {
    QUARANTINED.with_label_values(&[account]).inc();
}
