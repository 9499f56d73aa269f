//! The auth service's metrics: sign-ins by outcome, and the directory pool and breaker
//! (set just before a scrape).

use std::sync::{Arc, LazyLock};

use prometheus::{IntCounterVec, IntGaugeVec};
use turnout_core::metrics::{counter_vec, gauge_vec, on_scrape};

use crate::login::Login;

static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "turnout_logins_total",
        "Sign-ins by outcome (ok, or the error code: invalid_credentials, login_throttled, directory_unavailable, not_eligible, ...)",
        &["outcome"],
    )
});
static POOL: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec("turnout_ldap_pool_connections", "Directory connections: max, open, in_use, idle, waiting", &["state"])
});
static BREAKER: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    gauge_vec("turnout_ldap_breaker_state", "The directory circuit breaker: 0 closed, 1 half-open, 2 open", &[])
});

pub fn login(outcome: &str) {
    LOGINS.with_label_values(&[outcome]).inc();
}

pub fn register(login: Arc<Login>) {
    LazyLock::force(&LOGINS);
    on_scrape("ldap_pool", move || {
        let login = login.clone();
        async move {
            let g = login.directory.gauges();
            for (state, n) in [
                ("max", g.max),
                ("open", g.open),
                ("in_use", g.open.saturating_sub(g.idle)),
                ("idle", g.idle),
                ("waiting", g.waiting),
            ] {
                POOL.with_label_values(&[state]).set(n as i64);
            }
            let breaker = match g.breaker {
                "closed" => 0,
                "half_open" => 1,
                _ => 2,
            };
            BREAKER.with_label_values::<&str>(&[]).set(breaker);
        }
    });
}
