//! Elections: creation, listing, edits before opening, candidates, the close.

use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use turnout_domain::ElectionId;

use super::{audit, choices, cid, demo_election, kid, new_election, nominee, upcoming};
use crate::{CandidateStatus, ChangeError, ContestEdit, Decision, ElectionEdit, Store, StoreError};

pub async fn elections_round_trip_and_ids_are_unique(store: Arc<dyn Store>) {
    let id = demo_election(store.as_ref()).await;
    let e = store.election(&id).await.unwrap().expect("stored");
    assert_eq!(e.title, "Student Union 2026");
    assert_eq!(e.schedule.grace, Duration::from_secs(60));
    assert_eq!(e.contests[0].candidates.len(), 2);
    assert_eq!(e.contests[0].candidates[1].status, CandidateStatus::Pending);
    // Only approved candidates can be chosen.
    assert!(e.check_choices(&choices("pres", "ada")).is_ok());
    assert!(e.check_choices(&choices("pres", "bob")).is_err(), "pending candidate accepted");
    assert!(e.check_choices(&choices("treasurer", "ada")).is_err(), "unknown contest accepted");

    let again = store.create_election(&new_election("demo"), Timestamp::now()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "duplicate election id accepted");
    assert!(store.election(&ElectionId::parse("nope").unwrap()).await.unwrap().is_none());
}

pub async fn list_elections_is_paginated_and_capped(store: Arc<dyn Store>) {
    for i in 0..120 {
        store.create_election(&new_election(&format!("e{i:03}")), Timestamp::now()).await.unwrap();
    }
    let first = store.list_elections(None, 1000).await.unwrap();
    assert_eq!(first.len(), 100, "page size is capped");
    let rest = store.list_elections(Some(&first.last().unwrap().id), 1000).await.unwrap();
    assert_eq!(rest.len(), 20);
    assert_eq!(rest[0].id.as_str(), "e100");
}

pub async fn an_election_and_its_audit_line_are_created_together(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let mut election = super::new_election("audited");
    let entry = audit("election.created", &election.id);
    store.create_election_audited(&election, &entry, Timestamp::now()).await.unwrap();
    assert!(store.election(&election.id).await.unwrap().is_some());
    let lines = store.list_audit(0, 10).await.unwrap();
    assert_eq!(lines.iter().map(|l| l.action.as_str()).collect::<Vec<_>>(), ["election.created"]);
    // An id that exists: refused, and no audit line for what did not happen.
    election.id = e;
    let again = store.create_election_audited(&election, &entry, Timestamp::now()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(store.list_audit(0, 10).await.unwrap().len(), 1);
    assert_eq!(store.verify_audit(None).await.unwrap().broken_at, None);
}

pub async fn elections_are_edited_only_before_opening(store: Arc<dyn Store>) {
    let e = upcoming(store.as_ref(), "up").await;
    let now = Timestamp::now();
    let edit = ElectionEdit {
        title: Some("Renamed".into()),
        quorum_pct: Some(40.0),
        otp_validity_secs: Some(900),
        contests: Some(vec![
            ContestEdit { id: kid("pres"), title: "President".into(), rules: None },
            ContestEdit { id: kid("treas"), title: "Treasurer".into(), rules: None },
        ]),
        ..ElectionEdit::default()
    };
    store.edit_election(&e, &edit, &audit("edit", &e), now).await.unwrap();
    let got = store.election(&e).await.unwrap().unwrap();
    assert_eq!(got.title, "Renamed");
    assert_eq!(got.quorum_pct, 40.0);
    assert_eq!(got.otp_validity, Some(Duration::from_secs(900)));
    assert_eq!(got.contests.len(), 2);

    // A contest with candidates can't be dropped.
    store.nominate_candidate(&e, &kid("treas"), &nominee("ada"), &audit("nominate", &e), now).await.unwrap();
    let drop = ElectionEdit {
        contests: Some(vec![ContestEdit { id: kid("pres"), title: "President".into(), rules: None }]),
        ..ElectionEdit::default()
    };
    assert!(matches!(store.edit_election(&e, &drop, &audit("edit", &e), now).await, Err(ChangeError::Refused(_))));
    // The close must stay after the opening.
    let bad = ElectionEdit { closes_at: Some(now), ..ElectionEdit::default() };
    assert!(matches!(store.edit_election(&e, &bad, &audit("edit", &e), now).await, Err(ChangeError::Refused(_))));
    // After opening: refused.
    let late = store.edit_election(&e, &edit, &audit("edit", &e), now + 2.hours()).await;
    assert!(matches!(late, Err(ChangeError::Refused(_))));
    let unknown = store.edit_election(&ElectionId::parse("nope").unwrap(), &edit, &audit("edit", &e), now).await;
    assert!(matches!(unknown, Err(ChangeError::UnknownElection)));
}

pub async fn candidates_are_nominated_decided_and_locked_once_voting_opens(store: Arc<dyn Store>) {
    // Arrange
    let e = upcoming(store.as_ref(), "up").await;
    let now = Timestamp::now();
    // Act: nominate two, approve one, reject one with a reason.
    store.nominate_candidate(&e, &kid("pres"), &nominee("ada"), &audit("nominate", &e), now).await.unwrap();
    store.nominate_candidate(&e, &kid("pres"), &nominee("bob"), &audit("nominate", &e), now).await.unwrap();
    let dup = store.nominate_candidate(&e, &kid("pres"), &nominee("ada"), &audit("nominate", &e), now).await;
    assert!(matches!(dup, Err(ChangeError::Refused(_))), "duplicate candidate accepted");
    let no_contest = store.nominate_candidate(&e, &kid("nope"), &nominee("cy"), &audit("nominate", &e), now).await;
    assert!(matches!(no_contest, Err(ChangeError::UnknownCandidate)));
    store
        .decide_candidate(&e, &kid("pres"), &cid("ada"), Decision::Approve, "eligible", &audit("approve", &e), now)
        .await
        .unwrap();
    store
        .decide_candidate(&e, &kid("pres"), &cid("bob"), Decision::Reject, "not enrolled", &audit("reject", &e), now)
        .await
        .unwrap();
    // Assert: only the approved one is on the ballot; the reason is kept.
    let election = store.election(&e).await.unwrap().unwrap();
    assert!(election.check_choices(&choices("pres", "ada")).is_ok());
    assert!(election.check_choices(&choices("pres", "bob")).is_err(), "rejected candidate on the ballot");
    let rows = store.list_candidates(&e, None, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].reason.as_deref(), Some("not enrolled"));
    let page = store.list_candidates(&e, Some((&rows[0].contest, &rows[0].id)), 10).await.unwrap();
    assert_eq!(page.len(), 1, "pagination after the first row");
    assert_eq!(page[0].id.as_str(), "bob");

    // Once the window is open, nothing about candidates may change.
    let later = now + 1.hour() + 1.second();
    let locked = store.nominate_candidate(&e, &kid("pres"), &nominee("cy"), &audit("nominate", &e), later).await;
    assert!(matches!(locked, Err(ChangeError::Refused(_))), "nomination after opening: {locked:?}");
    let locked = store
        .decide_candidate(
            &e,
            &kid("pres"),
            &cid("bob"),
            Decision::Approve,
            "changed mind",
            &audit("approve", &e),
            later,
        )
        .await;
    assert!(matches!(locked, Err(ChangeError::Refused(_))), "decision after opening: {locked:?}");
    // Five audited changes (2 nominations, 2 decisions... and the refused ones left nothing).
    let actions: Vec<String> = store.list_audit(0, 100).await.unwrap().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["nominate", "nominate", "approve", "reject"]);
}

pub async fn the_close_only_moves_later_and_never_after_closing(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let close = store.election(&e).await.unwrap().unwrap().schedule.closes_at;
    let now = Timestamp::now();
    // Earlier, or the same: refused, and nothing audited.
    for to in [close - 1.minute(), close] {
        let r = store.extend_close(&e, to, &audit("extend", &e), now).await;
        assert!(matches!(r, Err(ChangeError::Refused(_))), "extension to {to} accepted");
    }
    assert!(store.list_audit(0, 10).await.unwrap().is_empty());
    // Later: stored and audited.
    store.extend_close(&e, close + 30.minutes(), &audit("extend", &e), now).await.unwrap();
    assert_eq!(store.election(&e).await.unwrap().unwrap().schedule.closes_at, close + 30.minutes());
    assert_eq!(store.list_audit(0, 10).await.unwrap().len(), 1);
    // Close early, then no reopening by "extension".
    let closed_at = store.close_now(&e, &audit("close", &e), now).await.unwrap();
    assert_eq!(closed_at.as_second(), now.as_second());
    let reopen = store.extend_close(&e, now + 1.hour(), &audit("extend", &e), now + 1.second()).await;
    assert!(matches!(reopen, Err(ChangeError::Refused(_))), "a closed election was reopened");
    let again = store.close_now(&e, &audit("close", &e), now + 1.second()).await;
    assert!(matches!(again, Err(ChangeError::Refused(_))));
}
