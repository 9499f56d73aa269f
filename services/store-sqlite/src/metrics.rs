//! How long each SQLite operation takes, by port method: the histogram
//! `turnout_store_operation_duration_seconds`. It is made here, unregistered; core adds
//! it to the process's registry (`turnout_core::metrics`), which serves `/metrics`.

use std::sync::LazyLock;

use prometheus::{HistogramOpts, HistogramVec};

/// Seconds, from a cached point read to a slow commit (core's `LATENCY_BUCKETS`).
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub static OPERATION_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new("turnout_store_operation_duration_seconds", "Store operation latency")
        .buckets(BUCKETS.to_vec());
    HistogramVec::new(opts, &["op"]).expect("valid metric definition")
});

pub(crate) fn store_operation(op: &str, seconds: f64) {
    OPERATION_SECONDS.with_label_values(&[op]).observe(seconds);
}

/// The port method a closure runs in, from its type name
/// (`<impl ...::Codes for ...::SqliteStore>::issue_otp::{{closure}}` is `issue_otp`): a
/// bounded label, one per method.
pub(crate) fn op_name(closure_type: &'static str) -> &'static str {
    let Some(start) = closure_type.find("Store>::").map(|i| i + "Store>::".len()) else { return "other" };
    let rest = &closure_type[start..];
    // Methods made by `async_trait` are generic over lifetimes (`issue_otp<'_, '_>`).
    rest.split("::").next().and_then(|s| s.split('<').next()).filter(|s| !s.is_empty()).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    #[test]
    fn op_names_come_from_the_store_method() {
        let t = "turnout_store_sqlite::codes::<impl turnout_store::codes::Codes for turnout_store_sqlite::SqliteStore>::issue_otp<'_, '_>::{{closure}}::{{closure}}";
        assert_eq!(super::op_name(t), "issue_otp");
        assert_eq!(super::op_name("something::else"), "other");
    }

    #[tokio::test]
    async fn each_operation_is_timed_under_its_method_name() {
        use turnout_store::ActivityLog;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("turnout.db"), turnout_store::StoreKeys::for_tests())
            .await
            .unwrap();
        let before = super::OPERATION_SECONDS.with_label_values(&["ping"]).get_sample_count();
        store.ping().await.unwrap();
        assert_eq!(super::OPERATION_SECONDS.with_label_values(&["ping"]).get_sample_count(), before + 1);
    }
}
