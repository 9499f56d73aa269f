//! The ballot service's metrics: ballots cast, and each election's window state (set from
//! the store just before a scrape).

use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use prometheus::{IntCounterVec, IntGaugeVec};
use turnout_core::metrics::{MAX_REPORTED_ELECTIONS, counter_vec, gauge_vec, on_scrape};
use turnout_core::schedule::WindowState;
use turnout_core::store::Elections;

static BALLOTS: LazyLock<IntCounterVec> =
    LazyLock::new(|| counter_vec("turnout_ballots_cast_total", "Ballots recorded (answered 201)", &["election"]));
static WINDOW: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec("turnout_window_state", "Voting window per election: 0 not yet open, 1 open, 2 closed", &["election"])
});
static SECONDS_LEFT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec("turnout_window_seconds_left", "Seconds until the close (negative once closed)", &["election"])
});

pub fn ballot_cast(election: &str) {
    BALLOTS.with_label_values(&[election]).inc();
}

pub fn register(store: Arc<dyn Elections>) {
    LazyLock::force(&BALLOTS);
    on_scrape("ballot_windows", move || {
        let store = store.clone();
        async move {
            let Ok(elections) = store.list_elections(None, MAX_REPORTED_ELECTIONS).await else { return };
            let now = Timestamp::now();
            for e in elections {
                let schedule = e.schedule();
                let state = match schedule.state(now) {
                    WindowState::NotYetOpen => 0,
                    WindowState::Open => 1,
                    WindowState::Closed => 2,
                };
                WINDOW.with_label_values(&[e.id.as_str()]).set(state);
                SECONDS_LEFT.with_label_values(&[e.id.as_str()]).set(schedule.closes_at.as_second() - now.as_second());
            }
        }
    });
}
