//! Notices and staff contacts: queued once per key and recipient, leased, given up after
//! their attempts; contacts replaced by each sign-in and bounded.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_domain::{Username, VoterEmail};

use crate::{MAX_STAFF_CONTACTS, MailOutcome, MailResult, MailState, NOTICE_ATTEMPTS, Notice, StaffContact, Store};

fn notice(key: &str, to: &str) -> Notice {
    Notice {
        key: key.into(),
        to: VoterEmail::parse(to).unwrap(),
        subject: format!("About {key}"),
        body: format!("Line one.\n\nThe head is {key}.\n"),
    }
}

fn sent() -> MailResult {
    MailResult::Sent { account: "e1".into(), from: "e1@u.test".into() }
}

pub async fn notices_are_queued_once_per_key_and_recipient_and_leased(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let batch = [
        notice("anchor:e1:opened", "officer1@u.test"),
        notice("anchor:e1:opened", "anchor@u.test"),
        notice("anchor:e2:opened", "officer1@u.test"),
    ];
    assert_eq!(store.queue_notices(&batch, now).await.unwrap(), 3);
    // A second process (or a restart) queuing the same notices adds nothing.
    let again = [notice("anchor:e1:opened", "officer1@u.test"), notice("anchor:e1:sealed", "officer1@u.test")];
    assert_eq!(store.queue_notices(&again, now).await.unwrap(), 1);
    assert_eq!(store.notices("anchor:e1:", 100).await.unwrap().len(), 3);
    assert_eq!(store.notices("anchor:", 100).await.unwrap().len(), 4);

    // One invalid notice refuses the lot.
    let mut bad = notice("anchor:e3:opened", "officer1@u.test");
    bad.subject = "two\nlines".into();
    assert!(store.queue_notices(&[notice("anchor:e3:x", "a@u.test"), bad], now).await.is_err());
    assert!(store.notices("anchor:e3:", 100).await.unwrap().is_empty(), "nothing of a refused batch is queued");

    let lease = Duration::from_secs(30);
    let (a, b) =
        tokio::join!(store.claim_notices("worker-a", 3, lease, now), store.claim_notices("worker-b", 3, lease, now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 4, "every notice claimed once");
    let ids: std::collections::HashSet<_> = a.iter().map(|m| m.id).collect();
    assert!(b.iter().all(|m| !ids.contains(&m.id)), "a notice was leased to two workers");
    let first = a.first().or(b.first()).unwrap();
    assert!(first.subject.starts_with("About anchor:") && first.body.contains("Line one.\n\n"));

    // A's sends are recorded; B "crashes", its lease runs out, and C takes its notices;
    // B's late outcome is ignored.
    let done: Vec<_> = a.iter().map(|m| MailOutcome { id: m.id, result: sent() }).collect();
    store.record_notice_outcomes("worker-a", &done, now).await.unwrap();
    assert!(store.claim_notices("worker-c", 10, lease, now).await.unwrap().is_empty(), "leases hold");
    let later = now + Duration::from_secs(31);
    let taken = store.claim_notices("worker-c", 10, lease, later).await.unwrap();
    assert_eq!(taken.len(), b.len());
    let late: Vec<_> = b
        .iter()
        .map(|m| MailOutcome { id: m.id, result: MailResult::Failed { account: "e1".into(), error: "late".into() } })
        .collect();
    store.record_notice_outcomes("worker-b", &late, later).await.unwrap();
    let done: Vec<_> = taken.iter().map(|m| MailOutcome { id: m.id, result: sent() }).collect();
    store.record_notice_outcomes("worker-c", &done, later).await.unwrap();
    let rows = store.notices("anchor:", 100).await.unwrap();
    assert!(rows.iter().all(|r| r.state == MailState::Sent && r.sent_at.is_some()), "{rows:?}");
    assert!(store.claim_notices("worker-d", 10, lease, later + Duration::from_secs(60)).await.unwrap().is_empty());
}

pub async fn a_deferred_notice_waits_and_is_given_up_after_its_attempts(store: Arc<dyn Store>) {
    let mut now = Timestamp::now();
    store.queue_notices(&[notice("anchor:e1:window:1", "officer1@u.test")], now).await.unwrap();
    let lease = Duration::from_secs(30);
    for attempt in 1..=NOTICE_ATTEMPTS {
        let claimed = store.claim_notices("w", 10, lease, now).await.unwrap();
        assert_eq!(claimed.len(), 1, "attempt {attempt} is due");
        assert_eq!(claimed[0].attempts, attempt - 1);
        let retry_at = now + Duration::from_secs(10);
        let result = MailResult::Deferred { account: "e1".into(), error: "421 busy".into(), retry_at };
        store.record_notice_outcomes("w", &[MailOutcome { id: claimed[0].id, result }], now).await.unwrap();
        assert!(store.claim_notices("w", 10, lease, now).await.unwrap().is_empty(), "not due before its retry");
        now = retry_at;
    }
    let rows = store.notices("anchor:e1:", 10).await.unwrap();
    assert_eq!((rows[0].state, rows[0].attempts), (MailState::Failed, NOTICE_ATTEMPTS));
    assert_eq!(rows[0].last_error.as_deref(), Some("421 busy"));
    assert!(store.claim_notices("w", 10, lease, now + Duration::from_secs(3600)).await.unwrap().is_empty());

    // A released notice goes back without counting an attempt.
    store.queue_notices(&[notice("anchor:e2:opened", "officer1@u.test")], now).await.unwrap();
    let claimed = store.claim_notices("w", 10, lease, now).await.unwrap();
    store
        .record_notice_outcomes("w", &[MailOutcome { id: claimed[0].id, result: MailResult::Released }], now)
        .await
        .unwrap();
    let again = store.claim_notices("w", 10, lease, now).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 0));
}

fn contact(n: u32, officer: bool, seen_at: Timestamp) -> StaffContact {
    StaffContact {
        username: Username::parse(&format!("officer{n}")).unwrap(),
        email: VoterEmail::parse(&format!("officer{n}@u.test")).unwrap(),
        admin: !officer,
        officer,
        seen_at,
    }
}

pub async fn staff_contacts_follow_each_sign_in_and_are_bounded(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let week_ago = now - Duration::from_secs(7 * 86_400);
    store.record_staff_contact(&contact(1, true, week_ago)).await.unwrap();
    store.record_staff_contact(&contact(2, false, now)).await.unwrap();
    store.record_staff_contact(&contact(3, true, now)).await.unwrap();
    let names = |list: Vec<StaffContact>| list.into_iter().map(|c| c.username.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(
        names(store.officer_contacts(week_ago).await.unwrap()),
        ["officer3", "officer1"],
        "admins are not officers"
    );
    assert_eq!(names(store.officer_contacts(now).await.unwrap()), ["officer3"], "only those seen since");

    // A later sign-in replaces the address; one without a staff role removes the account.
    let mut moved = contact(1, true, now + Duration::from_secs(1));
    moved.email = VoterEmail::parse("officer1@new.u.test").unwrap();
    store.record_staff_contact(&moved).await.unwrap();
    let list = store.officer_contacts(now).await.unwrap();
    assert_eq!(list[0].email.as_str(), "officer1@new.u.test");
    let mut gone = contact(3, false, now);
    gone.admin = false;
    store.record_staff_contact(&gone).await.unwrap();
    assert_eq!(names(store.officer_contacts(week_ago).await.unwrap()), ["officer1"]);

    for n in 10..10 + MAX_STAFF_CONTACTS + 20 {
        store.record_staff_contact(&contact(n, true, now)).await.unwrap();
    }
    assert_eq!(store.officer_contacts(week_ago).await.unwrap().len(), MAX_STAFF_CONTACTS as usize);
}
