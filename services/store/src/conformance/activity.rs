//! The dashboard's activity counts.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_domain::{Username, VoterEmail};

use super::{ballot, choices, demo_election};
use crate::{ALL_ELECTIONS, Activity, ActivityCount, OtpPolicy, Store};

pub async fn activity_is_counted_per_minute_with_the_events_themselves(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let now = Timestamp::now();
    let voter = Username::parse("student00001").unwrap();
    let to = VoterEmail::parse("student00001@students.turnout.test").unwrap();
    let policy =
        OtpPolicy { validity: Duration::from_secs(600), cooldown: Duration::ZERO, max_sends: 3, max_attempts: 5 };
    store.issue_otp(&e, &voter, &to, policy, now).await.unwrap();
    store.cast_ballot(ballot(&e, &voter, choices("pres", "ada"))).await.unwrap();
    let minute = now.as_second().div_euclid(60);
    store
        .record_activity(&[ActivityCount { election: ALL_ELECTIONS.into(), kind: Activity::Login, minute, n: 3 }])
        .await
        .unwrap();
    store
        .record_activity(&[ActivityCount { election: ALL_ELECTIONS.into(), kind: Activity::Login, minute, n: 2 }])
        .await
        .unwrap();
    let counts = store.activity(&e, minute - 1).await.unwrap();
    let n = |kind: Activity| counts.iter().filter(|c| c.kind == kind).map(|c| c.n).sum::<u64>();
    assert_eq!(n(Activity::Login), 5);
    assert_eq!(n(Activity::CodeRequested), 1);
    assert!(n(Activity::Ballot) >= 1);
    let summary = store.outbox_summary(&e, now).await.unwrap();
    assert_eq!(summary.queued, 1);
    // The oldest unsent message's age, as of the time asked.
    let later = store.outbox_summary(&e, now + Duration::from_secs(90)).await.unwrap();
    assert!((89..=91).contains(&later.oldest_waiting_secs.unwrap()), "{later:?}");
    let outbox = store.list_outbox(&e, None, 10).await.unwrap();
    assert_eq!((outbox.rows.len(), outbox.next_before), (1, None), "one message, one page");
    assert!(store.list_outbox(&e, Some(outbox.rows[0].seq), 10).await.unwrap().rows.is_empty());

    // 24 more messages: pages of 10, 10 and 5, newest first, each message exactly once,
    // and the last page says there is nothing older (no link to an empty page).
    for n in 2..=25 {
        let voter = Username::parse(&format!("student{n:05}")).unwrap();
        let to = VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap();
        store.issue_otp(&e, &voter, &to, policy, now).await.unwrap();
    }
    let (mut seen, mut before, mut pages) = (Vec::new(), None, Vec::new());
    loop {
        let page = store.list_outbox(&e, before, 10).await.unwrap();
        pages.push(page.rows.len());
        seen.extend(page.rows.iter().map(|r| r.voter.clone()));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
        assert!(pages.len() < 10, "the cursor moves on");
    }
    assert_eq!(pages, [10, 10, 5]);
    let expected: Vec<String> = (1..=25).rev().map(|n| format!("student{n:05}")).collect();
    assert_eq!(seen, expected, "newest first, each once");
    let exact = store.list_outbox(&e, None, 25).await.unwrap();
    assert_eq!((exact.rows.len(), exact.next_before), (25, None), "a page that holds the rest is the last");

    store.report_status("auth", false, &serde_json::json!({ "breaker": "open" }), now).await.unwrap();
    store.report_status("auth", true, &serde_json::json!({ "breaker": "closed" }), now).await.unwrap();
    let status = store.service_status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert!(status[0].ok);
    assert_eq!(status[0].detail["breaker"], "closed");
}
