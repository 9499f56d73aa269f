//! The code service's metrics: mail outcomes and quarantines per sender account.

use std::sync::LazyLock;

use prometheus::IntCounterVec;
use turnout_core::metrics::counter_vec;

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
