//! The mail outbox: exclusive leases, the voter's status, the officers' summary.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::{demo_election, email, policy, quarantine, voter};
use crate::{MailOutcome, MailResult, MailState, OutboxMail, Store};

pub async fn outbox_leases_are_exclusive_and_expire(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let now = Timestamp::now();
    for n in 1..=30 {
        store.issue_otp(&election, &voter(n), &email(n), policy(), now).await.unwrap();
    }
    let lease = Duration::from_secs(30);
    let (a, b) =
        tokio::join!(store.claim_mail("worker-a", 20, lease, now), store.claim_mail("worker-b", 20, lease, now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 30, "every message claimed once");
    let ids_a: std::collections::HashSet<_> = a.iter().map(|m| m.id).collect();
    assert!(b.iter().all(|m| !ids_a.contains(&m.id)), "a message was leased to two workers");

    // Worker A finishes its batch in one call; B "crashes".
    let outcomes: Vec<MailOutcome> = a
        .iter()
        .map(|m| MailOutcome { id: m.id, result: MailResult::Sent { account: "e1".into(), from: "e1@u.test".into() } })
        .collect();
    store.finish_batch("worker-a", &outcomes, &[], quarantine(), now).await.unwrap();
    assert!(store.claim_mail("worker-c", 100, lease, now).await.unwrap().is_empty(), "nothing due while leases hold");

    // After B's lease expires, its messages go to C, and B's late finish is ignored.
    let later = now + Duration::from_secs(31);
    let reclaimed = store.claim_mail("worker-c", 100, lease, later).await.unwrap();
    assert_eq!(reclaimed.len(), b.len());
    assert!(reclaimed.iter().all(|m| m.attempts == 0), "a lost lease is not a counted attempt");
    let late: Vec<MailOutcome> = b
        .iter()
        .map(|m| MailOutcome { id: m.id, result: MailResult::Failed { account: "e1".into(), error: "late".into() } })
        .collect();
    store.finish_batch("worker-b", &late, &[], quarantine(), later).await.unwrap();
    let status = store.otp_status(&election, &b[0].voter).await.unwrap().unwrap().mail.unwrap();
    assert_eq!(status.state, MailState::Sending, "a lost lease must not overwrite the new owner's state");

    // A deferred message comes back when due.
    let deferred = vec![MailOutcome {
        id: reclaimed[0].id,
        result: MailResult::Deferred {
            account: "e1".into(),
            error: "421 busy".into(),
            retry_at: later + Duration::from_secs(10),
        },
    }];
    store.finish_batch("worker-c", &deferred, &[], quarantine(), later).await.unwrap();
    assert!(store.claim_mail("worker-d", 100, lease, later + Duration::from_secs(5)).await.unwrap().is_empty());
    assert_eq!(store.claim_mail("worker-d", 100, lease, later + Duration::from_secs(10)).await.unwrap().len(), 1);
}

pub async fn outbox_status_shows_the_latest_message(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    assert!(store.otp_status(&election, &voter(1)).await.unwrap().is_none());
    let now = Timestamp::now();
    store.issue_otp(&election, &voter(1), &email(1), policy(), now).await.unwrap();
    assert_eq!(store.otp_status(&election, &voter(1)).await.unwrap().unwrap().mail.unwrap().state, MailState::Queued);
    let claimed = store.claim_mail("w", 10, Duration::from_secs(30), now).await.unwrap();
    let outcomes = vec![MailOutcome {
        id: claimed[0].id,
        result: MailResult::Sent { account: "elections-3".into(), from: "elections-3@u.test".into() },
    }];
    store.finish_batch("w", &outcomes, &[], quarantine(), now).await.unwrap();
    let status = store.otp_status(&election, &voter(1)).await.unwrap().unwrap().mail.unwrap();
    assert_eq!(status.state, MailState::Sent);
    assert_eq!(status.from.as_deref(), Some("elections-3@u.test"));
    assert!(status.sent_at.is_some());
}

/// The console's outbox summary: counts by state, and exact p50/p95 of queue-to-sent
/// seconds over the last 10 minutes' sent mail, however many messages that is.
pub async fn the_outbox_summary_gives_exact_delivery_percentiles(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let t0 = Timestamp::now();
    assert_eq!(store.outbox_summary(&election, t0).await.unwrap().latency_p50_secs, None);
    for n in 1..=24 {
        store.issue_otp(&election, &voter(n), &email(n), policy(), t0).await.unwrap();
    }
    let claimed = store.claim_mail("w", 100, Duration::from_secs(3600), t0).await.unwrap();
    assert_eq!(claimed.len(), 24);
    let sent = |m: &OutboxMail| MailOutcome {
        id: m.id,
        result: MailResult::Sent { account: "e1".into(), from: "e1@u.test".into() },
    };
    // Sent 2 s after queueing: 12 messages; 5 s: 6; 30 s: 2. Three stay in flight, and
    // one fails (neither counts).
    for (from, to, secs) in [(0, 12, 2u64), (12, 18, 5), (18, 20, 30)] {
        let outcomes: Vec<MailOutcome> = claimed[from..to].iter().map(sent).collect();
        store.finish_batch("w", &outcomes, &[], quarantine(), t0 + Duration::from_secs(secs)).await.unwrap();
    }
    let failed = vec![MailOutcome {
        id: claimed[20].id,
        result: MailResult::Failed { account: "e1".into(), error: "550".into() },
    }];
    store.finish_batch("w", &failed, &[], quarantine(), t0 + Duration::from_secs(1)).await.unwrap();

    let summary = store.outbox_summary(&election, t0 + Duration::from_secs(60)).await.unwrap();
    assert_eq!((summary.sent, summary.failed, summary.sending), (20, 1, 3), "{summary:?}");
    // Nearest rank over 20: p50 is the 11th (2 s), p95 the 19th (30 s).
    assert_eq!((summary.latency_p50_secs, summary.latency_p95_secs), (Some(2), Some(30)), "{summary:?}");
    // Ten minutes on, none of it is recent any more.
    let later = store.outbox_summary(&election, t0 + Duration::from_secs(700)).await.unwrap();
    assert_eq!((later.sent, later.latency_p50_secs, later.latency_p95_secs), (20, None, None));
}
