//! The MongoDB adapter against a real MongoDB-wire server: the operations done so far
//! (elections, the roll, login throttling, the ballot box). Runs when
//! `TURNOUT_TEST_MONGODB_URI` is set (`scripts/test.sh` starts a SecantusDB server for
//! it; point it at a MongoDB replica set to run against MongoDB itself). Otherwise each
//! test prints a SKIP line naming the variable. Each test uses a database of its own and
//! drops it after.

use std::time::Duration;

use jiff::Timestamp;
use mongodb::bson::{Document, doc};
use turnout_core::domain::{CandidateId, ContestId, ElectionId, Receipt, Username, VoterEmail};
use turnout_core::store::{CastBallot, CastError, Choices, NewElection, RollEntry, StoreError};

#[path = "support/mongo.rs"]
mod support;
use support::{drop_db, fresh};

fn election(id: &str, opens: &str, closes: &str) -> NewElection {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "title": "Student Union 2026",
        "opens_at": opens,
        "closes_at": closes,
        "time_zone": "Europe/London",
        "grace_secs": 60,
        "eligibility": {"kind": "roll"},
        "contests": [{
            "id": "pres", "title": "President",
            "candidates": [
                {"id": "ada", "name": "Ada", "status": "approved"},
                {"id": "bob", "name": "Bob", "status": "pending"}
            ]
        }]
    }))
    .unwrap()
}

fn open_now(id: &str) -> NewElection {
    election(id, "2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z")
}

fn voter(n: u32) -> Username {
    Username::parse(&format!("student{n:05}")).unwrap()
}

fn cast(election: &ElectionId, voter: &Username) -> CastBallot {
    let now = Timestamp::now();
    let choices: Choices =
        [(ContestId::parse("pres").unwrap(), CandidateId::parse("ada").unwrap())].into_iter().collect();
    CastBallot { election: election.clone(), voter: voter.clone(), choices, verified_at: now, now }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn elections_round_trip_are_unique_and_page() {
    let Some(store) = fresh("elections_round_trip_are_unique_and_page").await else { return };
    store.ping().await.unwrap();
    for id in ["c", "a", "b"] {
        store.create_election(&open_now(id), Timestamp::now()).await.unwrap();
    }
    let again = store.create_election(&open_now("a"), Timestamp::now()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let e = store.election(&ElectionId::parse("a").unwrap()).await.unwrap().unwrap();
    assert_eq!(e.title, "Student Union 2026");
    assert_eq!(e.schedule.grace, Duration::from_secs(60));
    assert_eq!(e.contests[0].candidates.len(), 2);
    assert_eq!(e.contests[0].candidates[1].status.as_str(), "pending");
    assert!(store.election(&ElectionId::parse("zz").unwrap()).await.unwrap().is_none());

    let first = store.list_elections(None, 2).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let rest = store.list_elections(Some(&first[1].id), 2).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["c"]);
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_voter_one_ballot_under_200_concurrent_submissions() {
    let Some(store) = fresh("one_voter_one_ballot_under_200_concurrent_submissions").await else { return };
    store.create_election(&open_now("council"), Timestamp::now()).await.unwrap();
    let id = ElectionId::parse("council").unwrap();
    let tries = (0..200).map(|_| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.cast_ballot(cast(&id, &voter(1))).await })
    });
    let mut receipts = Vec::new();
    let mut already = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(r) => receipts.push(r),
            Err(CastError::AlreadyVoted) => already += 1,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((receipts.len(), already), (1, 199));
    assert!(store.receipt_in_box(&id, &receipts[0]).await.unwrap());
    assert!(!store.receipt_in_box(&id, &Receipt::generate()).await.unwrap());
    // Other voters, at once: every one stored once, and the counts agree.
    let others = (2..52).map(|n| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.cast_ballot(cast(&id, &voter(n))).await })
    });
    for t in others {
        t.await.unwrap().unwrap();
    }
    let turnout = store.turnout(&id).await.unwrap();
    assert_eq!((turnout.participation, turnout.ballots), (51, 51));
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_window_is_checked_as_the_ballot_is_recorded_and_ballots_hold_no_voter() {
    let Some(store) = fresh("the_window_is_checked_as_the_ballot_is_recorded_and_ballots_hold_no_voter").await else {
        return;
    };
    store
        .create_election(&election("early", "2035-01-01T00:00:00Z", "2036-01-01T00:00:00Z"), Timestamp::now())
        .await
        .unwrap();
    store
        .create_election(&election("over", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"), Timestamp::now())
        .await
        .unwrap();
    store.create_election(&open_now("open"), Timestamp::now()).await.unwrap();
    let refusal = |r: Result<Receipt, CastError>| match r {
        Err(CastError::OutsideWindow(e)) => e.code.as_str().to_owned(),
        other => panic!("expected a window refusal, got {other:?}"),
    };
    assert_eq!(
        refusal(store.cast_ballot(cast(&ElectionId::parse("early").unwrap(), &voter(1))).await),
        "window_not_open"
    );
    assert_eq!(refusal(store.cast_ballot(cast(&ElectionId::parse("over").unwrap(), &voter(1))).await), "window_closed");
    let unknown = store.cast_ballot(cast(&ElectionId::parse("nope").unwrap(), &voter(1))).await;
    assert!(matches!(unknown, Err(CastError::UnknownElection)), "{unknown:?}");
    // A refused cast wrote nothing.
    let t = store.turnout(&ElectionId::parse("over").unwrap()).await.unwrap();
    assert_eq!((t.participation, t.ballots), (0, 0));

    store.cast_ballot(cast(&ElectionId::parse("open").unwrap(), &voter(7))).await.unwrap();
    let ballots: Vec<Document> = {
        use futures_util::TryStreamExt;
        store.database().collection::<Document>("ballots").find(doc! {}).await.unwrap().try_collect().await.unwrap()
    };
    assert_eq!(ballots.len(), 1);
    let text = ballots[0].to_string();
    assert!(!text.contains("student00007"), "a ballot names its voter: {text}");
    assert_eq!(ballots[0].keys().collect::<Vec<_>>(), ["_id", "choices"], "review for voter linkage: {text}");
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roll_imports_are_idempotent_and_memberships_carry_the_address() {
    let Some(store) = fresh("roll_imports_are_idempotent_and_memberships_carry_the_address").await else { return };
    let (a, b) = (ElectionId::parse("a").unwrap(), ElectionId::parse("b").unwrap());
    let entry = |n: u32, email: Option<&str>| RollEntry {
        uid: voter(n),
        email: email.map(|e| VoterEmail::parse(e).unwrap()),
        name: None,
    };
    let first = store.import_roll(&a, &[entry(1, Some("one@roll.example")), entry(2, None)]).await.unwrap();
    assert_eq!((first.added, first.updated, first.unchanged), (2, 0, 0));
    let again =
        store.import_roll(&a, &[entry(1, Some("one@roll.example")), entry(2, Some("two@roll.example"))]).await.unwrap();
    assert_eq!((again.added, again.updated, again.unchanged), (0, 1, 1));
    store.import_roll(&b, &[entry(1, None)]).await.unwrap();

    let mut found = store.roll_memberships(&voter(1), &[a.clone(), b.clone()]).await.unwrap();
    found.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(found, [(a.clone(), Some(VoterEmail::parse("one@roll.example").unwrap())), (b.clone(), None)]);
    assert_eq!(store.roll_memberships(&voter(1), std::slice::from_ref(&b)).await.unwrap().len(), 1);
    assert!(store.roll_memberships(&voter(3), &[a, b]).await.unwrap().is_empty());
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_failures_slow_a_username_down_and_a_success_clears_them() {
    let Some(store) = fresh("login_failures_slow_a_username_down_and_a_success_clears_them").await else { return };
    let now = Timestamp::now();
    let max = Duration::from_secs(300);
    for expected in [0, 0, 0] {
        let t = store.login_failed("k", 3, max, now).await.unwrap();
        assert_eq!(t.next_allowed_at.map(|at| at.as_millisecond() - now.as_millisecond()).unwrap_or(0), expected);
    }
    let fourth = store.login_failed("k", 3, max, now).await.unwrap();
    assert_eq!(fourth.failures, 4);
    assert_eq!(fourth.next_allowed_at.unwrap().as_millisecond() - now.as_millisecond(), 1000);
    let fifth = store.login_failed("k", 3, max, now).await.unwrap();
    assert_eq!(fifth.next_allowed_at.unwrap().as_millisecond() - now.as_millisecond(), 2000);
    let seen = store.login_throttle("k", now).await.unwrap();
    assert_eq!((seen.failures, seen.next_allowed_at), (5, fifth.next_allowed_at));
    assert_eq!(store.login_throttle("other", now).await.unwrap().failures, 0);
    store.login_succeeded("k").await.unwrap();
    assert_eq!(store.login_throttle("k", now).await.unwrap().failures, 0);
    drop_db(&store).await;
}

fn email(n: u32) -> VoterEmail {
    VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap()
}

fn otp_policy() -> turnout_core::store::OtpPolicy {
    turnout_core::store::OtpPolicy {
        validity: Duration::from_secs(600),
        cooldown: Duration::from_secs(60),
        max_sends: 3,
        max_attempts: 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codes_are_resent_while_half_valid_and_honour_cooldown_cap_and_attempts() {
    use turnout_core::store::{AttemptError, IssueError, LockPolicy};
    let Some(store) = fresh("codes_are_resent_while_half_valid_and_honour_cooldown_cap_and_attempts").await else {
        return;
    };
    store.create_election(&open_now("council"), Timestamp::now()).await.unwrap();
    let id = ElectionId::parse("council").unwrap();
    let t0 = Timestamp::now();
    let first = store.issue_otp(&id, &voter(1), &email(1), otp_policy(), t0).await.unwrap();
    assert!(!first.resent);
    let too_soon = store.issue_otp(&id, &voter(1), &email(1), otp_policy(), t0 + Duration::from_secs(10)).await;
    assert!(matches!(too_soon, Err(IssueError::Cooldown { retry_after_secs: 50 })), "{too_soon:?}");
    let second = store.issue_otp(&id, &voter(1), &email(1), otp_policy(), t0 + Duration::from_secs(61)).await.unwrap();
    assert!(second.resent);
    assert_eq!((second.generation, second.issued_at), (first.generation, first.issued_at));
    assert_ne!(second.mail_id, first.mail_id);
    let third = store.issue_otp(&id, &voter(1), &email(1), otp_policy(), t0 + Duration::from_secs(400)).await.unwrap();
    assert_eq!((third.resent, third.generation), (false, first.generation + 1));
    let capped = store.issue_otp(&id, &voter(1), &email(1), otp_policy(), t0 + Duration::from_secs(520)).await;
    assert!(matches!(capped, Err(IssueError::SendLimit)), "{capped:?}");
    let status = store.otp_status(&id, &voter(1)).await.unwrap().unwrap();
    assert_eq!(status.sends, 3);
    assert_eq!(
        status.mail.unwrap().queued_at.as_second(),
        (t0 + Duration::from_secs(400)).as_second(),
        "the latest mail is shown"
    );

    // Attempts: 20 at once, exactly 5 counted; a consumed code is gone.
    assert!(matches!(store.begin_otp_attempt(&id, &voter(2), 5, t0).await, Err(AttemptError::NoActiveCode)));
    let issue = store.issue_otp(&id, &voter(2), &email(2), otp_policy(), Timestamp::now()).await.unwrap();
    let tries = (0..20).map(|_| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.begin_otp_attempt(&id, &voter(2), 5, Timestamp::now()).await })
    });
    let mut counted = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(a) => {
                assert_eq!(a.generation, issue.generation);
                counted += 1;
            }
            Err(AttemptError::TooManyAttempts) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(counted, 5);
    let issue = store.issue_otp(&id, &voter(3), &email(3), otp_policy(), Timestamp::now()).await.unwrap();
    assert_eq!(store.begin_otp_attempt(&id, &voter(3), 5, Timestamp::now()).await.unwrap().attempts_used, 1);
    store.consume_otp(&id, &voter(3), issue.generation).await.unwrap();
    assert!(matches!(
        store.begin_otp_attempt(&id, &voter(3), 5, Timestamp::now()).await,
        Err(AttemptError::NoActiveCode)
    ));

    // Voided codes: the third locks the voter for the period.
    let lock = LockPolicy { after_voids: 3, period: Duration::from_secs(900) };
    let now = Timestamp::now();
    assert_eq!(store.record_otp_void(&id, &voter(3), lock, now).await.unwrap(), None);
    assert_eq!(store.record_otp_void(&id, &voter(3), lock, now).await.unwrap(), None);
    let until = store.record_otp_void(&id, &voter(3), lock, now).await.unwrap().unwrap();
    assert_eq!(until.as_second(), now.as_second() + 900);
    assert!(matches!(store.begin_otp_attempt(&id, &voter(3), 5, now).await, Err(AttemptError::Locked { .. })));
    assert!(matches!(
        store.issue_otp(&id, &voter(3), &email(3), otp_policy(), now + Duration::from_secs(120)).await,
        Err(IssueError::Locked { .. })
    ));
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_leases_are_exclusive_expire_and_only_the_holder_settles() {
    use turnout_core::store::{MailOutcome, MailResult, MailState};
    let Some(store) = fresh("outbox_leases_are_exclusive_expire_and_only_the_holder_settles").await else { return };
    store.create_election(&open_now("council"), Timestamp::now()).await.unwrap();
    let id = ElectionId::parse("council").unwrap();
    let now = Timestamp::now();
    for n in 1..=30 {
        store.issue_otp(&id, &voter(n), &email(n), otp_policy(), now).await.unwrap();
    }
    let lease = Duration::from_secs(30);
    let (a, b) =
        tokio::join!(store.claim_mail("worker-a", 20, lease, now), store.claim_mail("worker-b", 20, lease, now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 30, "every message claimed once");
    let ids_a: std::collections::HashSet<_> = a.iter().map(|m| m.id).collect();
    assert!(b.iter().all(|m| !ids_a.contains(&m.id)), "a message was leased to two workers");

    let sent: Vec<MailOutcome> = a
        .iter()
        .map(|m| MailOutcome { id: m.id, result: MailResult::Sent { account: "e1".into(), from: "e1@u.test".into() } })
        .collect();
    store.record_outcomes("worker-a", &sent, now).await.unwrap();
    assert!(store.claim_mail("worker-c", 100, lease, now).await.unwrap().is_empty(), "nothing due while leases hold");
    let shown = store.otp_status(&id, &a[0].voter).await.unwrap().unwrap().mail.unwrap();
    assert_eq!((shown.state, shown.from.as_deref(), shown.attempts), (MailState::Sent, Some("e1@u.test"), 1));

    // B's lease runs out: its messages go to C, uncounted; B's late outcome is ignored.
    let later = now + Duration::from_secs(31);
    let reclaimed = store.claim_mail("worker-c", 100, lease, later).await.unwrap();
    assert_eq!(reclaimed.len(), b.len());
    assert!(reclaimed.iter().all(|m| m.attempts == 0));
    let late: Vec<MailOutcome> = b
        .iter()
        .map(|m| MailOutcome { id: m.id, result: MailResult::Failed { account: "e1".into(), error: "late".into() } })
        .collect();
    store.record_outcomes("worker-b", &late, later).await.unwrap();
    let shown = store.otp_status(&id, &b[0].voter).await.unwrap().unwrap().mail.unwrap();
    assert_eq!(shown.state, MailState::Sending, "a lost lease must not overwrite the new owner's state");

    // Deferred comes back when due; released goes back at once, uncounted.
    let deferred = MailOutcome {
        id: reclaimed[0].id,
        result: MailResult::Deferred {
            account: "e1".into(),
            error: "421 busy".into(),
            retry_at: later + Duration::from_secs(10),
        },
    };
    let released = MailOutcome { id: reclaimed[1].id, result: MailResult::Released };
    store.record_outcomes("worker-c", &[deferred, released], later).await.unwrap();
    let again = store.claim_mail("worker-d", 100, lease, later + Duration::from_secs(5)).await.unwrap();
    assert_eq!(again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(reclaimed[1].id, 0)]);
    let due = store.claim_mail("worker-e", 100, lease, later + Duration::from_secs(10)).await.unwrap();
    assert_eq!(due.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(reclaimed[0].id, 1)]);
    drop_db(&store).await;
}
