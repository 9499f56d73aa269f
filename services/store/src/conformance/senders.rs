//! Sender accounts: rate, daily cap, sessions across holders, quarantine.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::{limits, quarantine};
use crate::{AccountLimits, AccountReport, Store};

pub async fn sends_are_spaced_by_rate_capped_by_day_and_sessions_across_holders(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let a = limits("a", 60, 2, 5); // one send per ~1.02 s, 2 sessions, 5 a day
    let horizon = Duration::from_secs(3);
    let lease = Duration::from_secs(30);

    let first = store.reserve_sends("i1", std::slice::from_ref(&a), 10, horizon, lease, now).await.unwrap();
    assert_eq!(first.grants.len(), 1);
    let g = &first.grants[0];
    assert_eq!(g.send_at.len(), 3, "3 s horizon at ~1 send/s: {:?}", g.send_at);
    assert_eq!(g.slots, 2);
    for pair in g.send_at.windows(2) {
        let gap = pair[1].duration_since(pair[0]).as_secs_f64();
        assert!((1.01..1.03).contains(&gap), "sends {gap}s apart");
    }

    // Another instance at the same moment: no session slot left, no sends on top.
    let second = store.reserve_sends("i2", std::slice::from_ref(&a), 10, horizon, lease, now).await.unwrap();
    assert!(second.grants.is_empty(), "{second:?}");
    assert!(second.next_capacity_at.is_some());

    // i1 used only one of its three sends: two go back, and its slots are freed.
    let mut report = AccountReport::for_grant(g, &a);
    report.unused = g.send_at[1..].to_vec();
    report.sent = 1;
    store.finish_batch("i1", &[], &[report], quarantine(), now).await.unwrap();
    let third = store.reserve_sends("i2", std::slice::from_ref(&a), 10, horizon, lease, now).await.unwrap();
    assert_eq!(third.grants[0].send_at.len(), 2, "refunded sends are usable again: {third:?}");
    assert!(third.grants[0].send_at[0] > g.send_at[0], "never earlier than the last real send");

    // The daily cap: 1 sent + 2 reserved + 2 more is the cap of 5.
    let later = now + Duration::from_secs(120);
    let mut r = AccountReport::for_grant(&third.grants[0], &a);
    r.sent = 2;
    store.finish_batch("i2", &[], &[r], quarantine(), now).await.unwrap();
    let fourth = store.reserve_sends("i1", std::slice::from_ref(&a), 10, horizon, lease, later).await.unwrap();
    assert_eq!(fourth.grants[0].send_at.len(), 2, "only the rest of the daily cap: {fourth:?}");
    let mut r = AccountReport::for_grant(&fourth.grants[0], &a);
    r.sent = 2;
    store.finish_batch("i1", &[], &[r], quarantine(), later).await.unwrap();
    let fifth = store.reserve_sends("i1", &[a], 10, horizon, lease, later + Duration::from_secs(60)).await.unwrap();
    assert!(fifth.grants.is_empty(), "daily cap exceeded: {fifth:?}");
}

pub async fn blocked_or_throttling_accounts_are_quarantined_and_skipped(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let (a, b) = (limits("a", 600, 4, 1000), limits("b", 600, 4, 1000));
    let accounts = [a.clone(), b.clone()];
    let horizon = Duration::from_secs(1);
    let lease = Duration::from_secs(30);
    let r = store.reserve_sends("i1", &accounts, 20, horizon, lease, now).await.unwrap();
    assert_eq!(r.grants.iter().map(|g| g.send_at.len()).sum::<usize>(), 20);

    // a: blocked by the provider. b: two throttling answers (below the limit of 3).
    let mut ra = AccountReport::for_grant(&r.grants[0], &a);
    ra.quarantine = Some("550 5.1.8 sender blocked".into());
    ra.failed = 1;
    let mut rb = AccountReport::for_grant(&r.grants[1], &b);
    rb.strikes = 2;
    store.finish_batch("i1", &[], &[ra, rb], quarantine(), now).await.unwrap();

    let health = store.sender_health().await.unwrap();
    let ha = health.iter().find(|h| h.account == "a").unwrap();
    assert!(ha.quarantined_until.is_some() && ha.quarantine_reason.as_deref().unwrap().contains("5.1.8"));
    assert!(health.iter().find(|h| h.account == "b").unwrap().quarantined_until.is_none());

    let later = now + Duration::from_secs(5);
    let r = store.reserve_sends("i1", &accounts, 5, horizon, lease, later).await.unwrap();
    assert!(r.grants.iter().all(|g| g.account == "b"), "quarantined account used: {r:?}");

    // A third throttling answer in a row quarantines b too; then nothing is granted.
    let mut rb = AccountReport::for_grant(&r.grants[0], &b);
    rb.strikes = 1;
    store.finish_batch("i1", &[], &[rb], quarantine(), later).await.unwrap();
    let r = store.reserve_sends("i1", &accounts, 5, horizon, lease, later).await.unwrap();
    assert!(r.grants.is_empty());
    assert!(r.next_capacity_at.unwrap() > later + Duration::from_secs(500), "capacity returns after quarantine");

    // After the quarantine period, both are usable again.
    let much_later = now + Duration::from_secs(700);
    let r = store.reserve_sends("i1", &accounts, 5, horizon, lease, much_later).await.unwrap();
    assert!(!r.grants.is_empty());
}

pub async fn a_few_sends_start_at_once_on_several_idle_accounts(store: Arc<dyn Store>) {
    // Three idle accounts at 30/min (one send per ~2 s each): three messages should all
    // start now, one per account, not two seconds apart on one account.
    let now = Timestamp::now();
    let accounts: Vec<AccountLimits> = ["a", "b", "c"].iter().map(|n| limits(n, 30, 2, 1000)).collect();
    let r =
        store.reserve_sends("i1", &accounts, 3, Duration::from_secs(5), Duration::from_secs(30), now).await.unwrap();
    assert_eq!(r.grants.len(), 3, "{r:?}");
    for g in &r.grants {
        assert_eq!(g.send_at.len(), 1);
        assert!(g.send_at[0].duration_since(now).as_secs_f64() < 0.01, "{g:?} starts late");
    }
}
