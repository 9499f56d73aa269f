//! Conformance for the console's store operations: every change obeys its rule and
//! lands together with its audit line.

use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use turnout_core::domain::*;
use turnout_core::store::*;

use super::conformance::{ballot, choices, demo_election};

fn audit(action: &str, election: &ElectionId) -> AuditEntry {
    AuditEntry {
        actor: "admin1".into(),
        action: action.into(),
        election: Some(election.clone()),
        detail: serde_json::json!({ "why": "test" }),
    }
}

/// An election that opens in an hour: still editable.
async fn upcoming(store: &dyn Store, id: &str) -> ElectionId {
    let now = Timestamp::now();
    let e: NewElection = serde_json::from_value(serde_json::json!({
        "id": id,
        "title": "Upcoming",
        "opens_at": (now + 1.hour()).to_string(),
        "closes_at": (now + 2.hours()).to_string(),
        "time_zone": "Europe/London",
        "quorum_pct": 25.0,
        "contests": [{ "id": "pres", "title": "President", "candidates": [] }]
    }))
    .unwrap();
    store.create_election(&e, now).await.unwrap();
    e.id
}

fn cid(s: &str) -> CandidateId {
    CandidateId::parse(s).unwrap()
}

fn kid(s: &str) -> ContestId {
    ContestId::parse(s).unwrap()
}

fn nominee(id: &str) -> NewCandidate {
    serde_json::from_value(serde_json::json!({ "id": id, "name": id.to_uppercase(), "statement": "hi" })).unwrap()
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

pub async fn elections_are_edited_only_before_opening(store: Arc<dyn Store>) {
    let e = upcoming(store.as_ref(), "up").await;
    let now = Timestamp::now();
    let edit = ElectionEdit {
        title: Some("Renamed".into()),
        quorum_pct: Some(40.0),
        otp_validity_secs: Some(900),
        contests: Some(vec![
            ContestEdit { id: kid("pres"), title: "President".into() },
            ContestEdit { id: kid("treas"), title: "Treasurer".into() },
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
        contests: Some(vec![ContestEdit { id: kid("pres"), title: "President".into() }]),
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

pub async fn the_tally_counts_votes_and_blanks_and_matches_participation(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    for n in 0..7u32 {
        let voter = Username::parse(&format!("student{n:05}")).unwrap();
        let c = if n < 5 { choices("pres", "ada") } else { Choices::new() };
        store.cast_ballot(ballot(&e, &voter, c.clone())).await.unwrap();
    }
    let t = store.tally(&e).await.unwrap();
    assert_eq!((t.participation, t.ballots), (7, 7));
    let pres = &t.contests["pres"];
    assert_eq!(pres.votes["ada"], 5);
    // Approved candidates with no votes are listed with 0; pending ones are not listed.
    assert!(!pres.votes.contains_key("bob"));
    assert_eq!(pres.blank, 2);
}

pub async fn the_audit_chain_verifies(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    assert_eq!(store.verify_audit().await.unwrap(), AuditVerification { entries: 0, broken_at: None, problem: None });
    for i in 0..5 {
        let mut a = audit("extend", &e);
        a.detail = serde_json::json!({ "n": i });
        store.append_audit(&a, Timestamp::now()).await.unwrap();
    }
    let v = store.verify_audit().await.unwrap();
    assert_eq!((v.entries, v.broken_at), (5, None));
    let page = store.list_audit(2, 2).await.unwrap();
    assert_eq!(page.iter().map(|a| a.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(page[0].detail["n"], 2);
}

pub async fn an_election_and_its_audit_line_are_created_together(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let mut election = super::conformance::new_election("audited");
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
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
}

fn lease(owner: &str, until: Timestamp) -> ImportLease {
    ImportLease { owner: owner.into(), until }
}

/// One run at a time writes to an import: another takes it over only once the lease has
/// passed, and from then on the old run's chunks and finish are refused, changing nothing.
pub async fn an_import_is_held_by_one_run_and_taken_over_only_after_its_lease(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let t0 = Timestamp::now();
    let job = ImportJob::started("leased", &e, "admin1", "roll.csv", 4, t0);
    let chunk = |from: u32| ImportChunk {
        entries: (from..from + 2)
            .map(|n| RollEntry { uid: Username::parse(&format!("student{n:05}")).unwrap(), email: None, name: None })
            .collect(),
        errors: vec![],
        rows: 2,
    };
    let first = lease("first", t0 + Duration::from_secs(30));
    store.create_import(&job, &first, &audit("roll_import_started", &e), t0).await.unwrap();
    // Held: no one else may take it, however many try.
    for other in ["second", "third"] {
        let claimed = store.claim_import("leased", &lease(other, t0 + Duration::from_secs(60)), t0).await.unwrap();
        assert!(claimed.is_none(), "{other} took an import whose lease had not passed");
    }
    let t1 = t0 + Duration::from_secs(10);
    let renewed = lease("first", t1 + Duration::from_secs(30));
    assert_eq!(store.import_chunk("leased", &renewed, &chunk(1), t1).await.unwrap().rows_done, 2);
    // The chunk renewed the lease: past the first lease's end, it is still held.
    let t2 = t0 + Duration::from_secs(35);
    assert!(store.claim_import("leased", &lease("second", t2 + Duration::from_secs(30)), t2).await.unwrap().is_none());

    // The first run stops committing; once its lease has passed, exactly one run takes over.
    let t3 = t1 + Duration::from_secs(31);
    let second = lease("second", t3 + Duration::from_secs(30));
    let taken = store.claim_import("leased", &second, t3).await.unwrap().expect("an abandoned import is taken over");
    assert_eq!((taken.rows_done, taken.state), (2, ImportState::Running));
    assert!(store.claim_import("leased", &lease("third", t3 + Duration::from_secs(30)), t3).await.unwrap().is_none());

    // The old run wakes up: its chunk and its finish are refused and change nothing.
    let late = store.import_chunk("leased", &renewed, &chunk(3), t3).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let late = store.finish_import("leased", "first", ImportState::Failed, Some("stopped"), t3).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let now = store.import_job("leased").await.unwrap().unwrap();
    assert_eq!((now.rows_done, now.state), (2, ImportState::Running));
    assert_eq!(store.roll_size(&e).await.unwrap(), 2);

    // The new run finishes it; a finished import is no longer running or claimable.
    assert_eq!(store.import_chunk("leased", &second, &chunk(3), t3).await.unwrap().rows_done, 4);
    let done = store.finish_import("leased", "second", ImportState::Done, None, t3).await.unwrap();
    assert_eq!((done.rows_done, done.added, done.state), (4, 4, ImportState::Done));
    assert!(store.running_imports().await.unwrap().is_empty());
    let t4 = t3 + Duration::from_secs(600);
    assert!(store.claim_import("leased", &lease("fourth", t4), t4).await.unwrap().is_none());
}

pub async fn roll_imports_apply_chunks_keep_errors_and_are_idempotent(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let now = Timestamp::now();
    let entries: Vec<RollEntry> = (0..1000u32)
        .map(|n| RollEntry {
            uid: Username::parse(&format!("student{n:05}")).unwrap(),
            email: None,
            name: Some(format!("Student {n}")),
        })
        .collect();
    let chunk = ImportChunk {
        entries: entries.clone(),
        errors: vec![RowError { line: 7, reason: "bad uid".into() }],
        rows: 1001,
    };
    let mut ids = Vec::new();
    for round in 0..2 {
        let job = ImportJob::started(&format!("job{round}"), &e, "admin1", "roll.csv", 1001, now);
        let lease = lease("run", now + Duration::from_secs(30));
        store.create_import(&job, &lease, &audit("roll_import_started", &e), now).await.unwrap();
        assert_eq!(store.running_imports().await.unwrap().len(), 1);
        let after = store.import_chunk(&job.id, &lease, &chunk, now).await.unwrap();
        assert_eq!(after.rows_done, 1001);
        let done = store.finish_import(&job.id, "run", ImportState::Done, None, now).await.unwrap();
        assert_eq!(done.state, ImportState::Done);
        ids.push(done);
    }
    // The second run of the same rows changed nothing.
    assert_eq!((ids[0].added, ids[0].unchanged, ids[0].rejected), (1000, 0, 1));
    assert_eq!((ids[1].added, ids[1].updated, ids[1].unchanged), (0, 0, 1000));
    assert_eq!(store.roll_size(&e).await.unwrap(), 1000);
    assert!(store.running_imports().await.unwrap().is_empty());
    let errors = store.import_errors("job0", 0, 10).await.unwrap();
    assert_eq!(errors, [RowError { line: 7, reason: "bad uid".into() }]);
    // A finished job takes no more chunks, and cannot be claimed.
    let run = lease("run", now + Duration::from_secs(30));
    assert!(store.import_chunk("job0", &run, &chunk, now).await.is_err());
    assert!(store.claim_import("job0", &lease("later", now), now + Duration::from_secs(60)).await.unwrap().is_none());
    // The roll pages by uid.
    let first = store.list_roll(&e, None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.uid.as_str()).collect::<Vec<_>>(),
        ["student00000", "student00001", "student00002"]
    );
    let next = store.list_roll(&e, Some(&first[2].uid), 1).await.unwrap();
    assert_eq!(next[0].uid.as_str(), "student00003");
    assert_eq!(store.list_roll(&e, None, 100_000).await.unwrap().len(), MAX_PAGE as usize, "page size capped");
}

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

pub async fn the_window_is_checked_as_the_ballot_is_recorded(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let s = store.election(&e).await.unwrap().unwrap().schedule;
    let (opens, close) = (s.opens_at, s.closes_at);
    let cast = |n: u32, verified_at: Timestamp, now: Timestamp| CastBallot {
        election: e.clone(),
        voter: Username::parse(&format!("student{n:05}")).unwrap(),
        choices: choices("pres", "ada"),
        verified_at,
        now,
    };
    let refused_as = |r: Result<Receipt, CastError>, code: turnout_core::ErrorCode| matches!(r, Err(CastError::OutsideWindow(e)) if e.code == code);
    let outside = |r: Result<Receipt, CastError>| refused_as(r, turnout_core::ErrorCode::WindowClosed);

    // Grace: verified before the close, cast within the grace period.
    store.cast_ballot(cast(1, close - 10.seconds(), close + 30.seconds())).await.unwrap();
    // Verified after the close, past the grace, or before the opening: refused.
    assert!(outside(store.cast_ballot(cast(2, close + 5.seconds(), close + 30.seconds())).await));
    assert!(outside(store.cast_ballot(cast(3, close - 10.seconds(), close + 2.minutes())).await));
    let early = store.cast_ballot(cast(4, opens - 1.minute(), opens - 1.minute())).await;
    assert!(refused_as(early, turnout_core::ErrorCode::WindowNotOpen));
    // The store's window is the latest word: an extension counts at once ...
    let now = Timestamp::now();
    store.extend_close(&e, close + 1.hour(), &audit("extend", &e), now).await.unwrap();
    store.cast_ballot(cast(3, close - 10.seconds(), close + 2.minutes())).await.unwrap();
    // ... and so does an early close.
    let closed = store.close_now(&e, &audit("close", &e), now).await.unwrap();
    assert!(outside(store.cast_ballot(cast(5, closed + 1.second(), closed + 2.seconds())).await));

    let unknown = CastBallot { election: ElectionId::parse("nope").unwrap(), ..cast(6, now, now) };
    assert!(matches!(store.cast_ballot(unknown).await, Err(CastError::UnknownElection)));
    // Refused casts stored nothing.
    assert_eq!(store.turnout(&e).await.unwrap(), Turnout { participation: 2, ballots: 2 });
}
