//! Sign-in: the throttle counted atomically, per pair and per address; sign-outs.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::{throttle_keys, throttle_rules, voter};
use crate::{Admission, AttemptOutcome, Store, StoreError, ThrottleRules, ThrottledBy};

pub async fn sign_in_attempts_are_counted_before_the_check_and_wait_to_the_millisecond(store: Arc<dyn Store>) {
    let rules = throttle_rules();
    let k = throttle_keys("pair-1", "addr-1");
    // A failure just before a second boundary must still wait its full second.
    let t0: Timestamp = "2026-11-22T12:00:00.900Z".parse().unwrap();
    for n in 1..=3 {
        assert_eq!(store.sign_in_attempt(&k, &rules, t0).await.unwrap(), Admission::Allowed, "free attempt {n}");
    }
    let fourth = store.sign_in_attempt(&k, &rules, t0 + Duration::from_millis(300)).await.unwrap();
    assert_eq!(fourth, Admission::Throttled { until: t0 + Duration::from_secs(1), by: ThrottledBy::Account });
    assert_eq!(store.sign_in_attempt(&k, &rules, t0 + Duration::from_millis(1000)).await.unwrap(), Admission::Allowed);
    let waiting = store.sign_in_attempt(&k, &rules, t0 + Duration::from_millis(1001)).await.unwrap();
    assert_eq!(
        waiting,
        Admission::Throttled { until: t0 + Duration::from_secs(3), by: ThrottledBy::Account },
        "the wait doubles"
    );
    // Another address for the same username is not held back at all.
    let elsewhere = throttle_keys("pair-1-from-2", "addr-2");
    assert_eq!(store.sign_in_attempt(&elsewhere, &rules, t0).await.unwrap(), Admission::Allowed);
    // A success clears the pair; a directory outage gives its attempt back.
    store.sign_in_settled(&k, AttemptOutcome::Succeeded, &rules, t0).await.unwrap();
    let t1 = t0 + Duration::from_secs(1);
    for _ in 0..2 {
        assert_eq!(store.sign_in_attempt(&k, &rules, t1).await.unwrap(), Admission::Allowed);
    }
    for _ in 0..5 {
        assert_eq!(store.sign_in_attempt(&k, &rules, t1).await.unwrap(), Admission::Allowed, "given back each time");
        store.sign_in_settled(&k, AttemptOutcome::NotCounted, &rules, t1).await.unwrap();
    }
    // Failures decay: 15 minutes after the last one, the pair starts again.
    let t2 = t1 + Duration::from_secs(10);
    assert_eq!(store.sign_in_attempt(&k, &rules, t2).await.unwrap(), Admission::Allowed);
    assert!(matches!(store.sign_in_attempt(&k, &rules, t2).await.unwrap(), Admission::Throttled { .. }));
    assert_eq!(store.sign_in_attempt(&k, &rules, t2 + Duration::from_secs(901)).await.unwrap(), Admission::Allowed);
}

pub async fn an_address_spraying_many_usernames_is_held_back_alone(store: Arc<dyn Store>) {
    let rules = throttle_rules();
    let t0: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
    for n in 0..10 {
        let k = throttle_keys(&format!("user-{n}-at-a"), "addr-a");
        assert_eq!(store.sign_in_attempt(&k, &rules, t0).await.unwrap(), Admission::Allowed, "attempt {n}");
    }
    let eleventh = store.sign_in_attempt(&throttle_keys("user-10-at-a", "addr-a"), &rules, t0).await.unwrap();
    assert_eq!(eleventh, Admission::Throttled { until: t0 + Duration::from_secs(600), by: ThrottledBy::Address });
    // The same username from another address is untouched.
    let other = store.sign_in_attempt(&throttle_keys("user-10-at-b", "addr-b"), &rules, t0).await.unwrap();
    assert_eq!(other, Admission::Allowed);
    // A right password gives the address its count back: honest sign-ins never fill it.
    let k = throttle_keys("user-0-at-a", "addr-a");
    store.sign_in_settled(&k, AttemptOutcome::Succeeded, &rules, t0).await.unwrap();
    assert_eq!(
        store.sign_in_attempt(&throttle_keys("user-11-at-a", "addr-a"), &rules, t0).await.unwrap(),
        Admission::Allowed
    );
    // A new window forgives the address; old rows are purged.
    let later = t0 + Duration::from_secs(600);
    assert_eq!(
        store.sign_in_attempt(&throttle_keys("user-12-at-a", "addr-a"), &rules, later).await.unwrap(),
        Admission::Allowed
    );
    let purged = store.purge_sign_in_throttles(&rules, later + Duration::from_secs(3600), 10_000).await.unwrap();
    assert!(purged >= 12, "purged {purged}");
    assert_eq!(store.purge_sign_in_throttles(&rules, later + Duration::from_secs(3600), 10_000).await.unwrap(), 0);
}

pub async fn fifty_parallel_attempts_pass_the_throttle_only_as_often_as_it_allows(store: Arc<dyn Store>) {
    let rules = throttle_rules();
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, rules) = (store.clone(), rules);
        tasks.push(tokio::spawn(async move {
            store.sign_in_attempt(&throttle_keys("racer", "addr-race"), &rules, now).await
        }));
    }
    let (mut allowed, mut busy) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(Admission::Allowed) => allowed += 1,
            Ok(Admission::Throttled { .. }) => {}
            // Contention may exhaust a transaction's reruns: a 503, never a directory check.
            Err(StoreError::Unavailable(_)) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(allowed <= 3 && allowed + busy >= 3, "the check and the count are one step: {allowed} allowed");
}

/// The opening burst behind one campus NAT: many students at once, one address. Each
/// attempt is counted exactly once and none is refused for contention.
pub async fn a_burst_from_one_address_is_counted_once_each_and_refuses_nobody(store: Arc<dyn Store>) {
    let rules = ThrottleRules { address_failures: 200, ..throttle_rules() };
    let now = Timestamp::now();
    let mut tasks = Vec::new();
    for n in 0..200 {
        let (store, rules) = (store.clone(), rules);
        tasks.push(tokio::spawn(async move {
            store.sign_in_attempt(&throttle_keys(&format!("student-{n}"), "nat"), &rules, now).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Admission::Allowed);
    }
    let next = store.sign_in_attempt(&throttle_keys("student-200", "nat"), &rules, now).await.unwrap();
    assert!(matches!(next, Admission::Throttled { by: ThrottledBy::Address, .. }), "exactly 200 counted: {next:?}");
}

pub async fn sign_outs_are_kept_per_account_read_in_time_order_and_purged(store: Arc<dyn Store>) {
    let t0: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    store.record_sign_out(&voter(1), at(10)).await.unwrap();
    store.record_sign_out(&voter(2), at(5)).await.unwrap();
    store.record_sign_out(&voter(1), at(30)).await.unwrap();
    store.record_sign_out(&voter(1), at(20)).await.unwrap(); // late and older: ignored
    let all = store.sign_outs_since(t0, 10).await.unwrap();
    assert_eq!(all, [(voter(2), at(5)), (voter(1), at(30))], "one row per account, the latest, oldest first");
    assert_eq!(store.sign_outs_since(at(6), 10).await.unwrap(), [(voter(1), at(30))]);
    assert_eq!(store.sign_outs_since(t0, 1).await.unwrap().len(), 1, "limited");
    assert_eq!(store.purge_sign_outs(at(6)).await.unwrap(), 1);
    assert_eq!(store.sign_outs_since(t0, 10).await.unwrap(), [(voter(1), at(30))]);
}
