//! The adapter-independent checks. Each takes a fresh, empty store.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_core::domain::*;
use turnout_core::store::*;

pub fn choices(contest: &str, candidate: &str) -> Choices {
    [(ContestId::parse(contest).unwrap(), CandidateId::parse(candidate).unwrap())].into_iter().collect()
}

/// A cast by a voter verified just now, in an election that is open now.
pub fn ballot(election: &ElectionId, voter: &Username, choices: Choices) -> CastBallot {
    let now = Timestamp::now();
    CastBallot { election: election.clone(), voter: voter.clone(), choices, verified_at: now, now }
}

pub fn new_election(id: &str) -> NewElection {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "title": "Student Union 2026",
        "opens_at": "2026-01-01T00:00:00Z",
        "closes_at": "2036-01-01T00:00:00Z",
        "time_zone": "Europe/London",
        "grace_secs": 60,
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

pub async fn demo_election(store: &dyn Store) -> ElectionId {
    let e = new_election("demo");
    store.create_election(&e, Timestamp::now()).await.unwrap();
    e.id
}

fn voter(n: u32) -> Username {
    Username::parse(&format!("student{n:05}")).unwrap()
}

fn email(n: u32) -> VoterEmail {
    VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap()
}

fn quarantine() -> QuarantinePolicy {
    QuarantinePolicy { period: Duration::from_secs(600), strike_limit: 3 }
}

fn limits(name: &str, per_minute: u32, max_concurrent: u32, daily_cap: u32) -> AccountLimits {
    AccountLimits { name: name.into(), per_minute, max_concurrent, daily_cap }
}

fn policy() -> OtpPolicy {
    OtpPolicy { validity: Duration::from_secs(600), cooldown: Duration::from_secs(60), max_sends: 3, max_attempts: 5 }
}

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

pub async fn one_voter_one_ballot_under_1000_concurrent_submissions(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (store, election) = (store.clone(), election.clone());
        tasks.push(tokio::spawn(async move {
            store.cast_ballot(ballot(&election, &voter(1), choices("pres", "ada"))).await
        }));
    }
    let (mut ok, mut already) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CastError::AlreadyVoted) => already += 1,
            Err(e) => panic!("a submission failed with something other than 'already voted': {e}"),
        }
    }
    assert_eq!((ok, already), (1, 999));
    // Other voters are unaffected, and participation always equals ballots.
    for n in 2..=20 {
        store.cast_ballot(ballot(&election, &voter(n), choices("pres", "ada"))).await.unwrap();
    }
    assert_eq!(store.turnout(&election).await.unwrap(), Turnout { participation: 20, ballots: 20 });
}

pub async fn receipts_are_checkable_per_election(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let other = new_election("other");
    store.create_election(&other, Timestamp::now()).await.unwrap();
    let receipt = store.cast_ballot(ballot(&election, &voter(1), choices("pres", "ada"))).await.unwrap();
    assert!(store.receipt_in_box(&election, &receipt).await.unwrap());
    assert!(!store.receipt_in_box(&other.id, &receipt).await.unwrap(), "receipt found in the wrong election");
    assert!(!store.receipt_in_box(&election, &Receipt::generate()).await.unwrap());
}

pub async fn otp_resend_reuses_a_still_valid_code_and_honours_cooldown_and_cap(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let t0 = Timestamp::now();
    let first = store.issue_otp(&election, &voter(1), &email(1), policy(), t0).await.unwrap();
    assert!(!first.resent);

    let too_soon = store.issue_otp(&election, &voter(1), &email(1), policy(), t0 + Duration::from_secs(10)).await;
    assert!(matches!(too_soon, Err(IssueError::Cooldown { retry_after_secs: 50 })), "{too_soon:?}");

    // Inside the first half of validity: the same code again (same generation and issue time).
    let t1 = t0 + Duration::from_secs(61);
    let second = store.issue_otp(&election, &voter(1), &email(1), policy(), t1).await.unwrap();
    assert!(second.resent);
    assert_eq!((second.generation, second.issued_at.as_second()), (first.generation, first.issued_at.as_second()));
    assert_ne!(second.mail_id, first.mail_id, "each send is its own outbox message");

    // Past half its validity: a fresh code.
    let t2 = t0 + Duration::from_secs(400);
    let third = store.issue_otp(&election, &voter(1), &email(1), policy(), t2).await.unwrap();
    assert!(!third.resent);
    assert_eq!(third.generation, first.generation + 1);

    let capped = store.issue_otp(&election, &voter(1), &email(1), policy(), t2 + Duration::from_secs(120)).await;
    assert!(matches!(capped, Err(IssueError::SendLimit)), "{capped:?}");
}

pub async fn otp_attempts_are_capped_and_a_used_code_is_gone(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let none = store.begin_otp_attempt(&election, &voter(1), 5, Timestamp::now()).await;
    assert!(matches!(none, Err(AttemptError::NoActiveCode)));

    let issue = store.issue_otp(&election, &voter(1), &email(1), policy(), Timestamp::now()).await.unwrap();
    // 20 concurrent attempts: exactly 5 are counted, the rest refused.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, election) = (store.clone(), election.clone());
        tasks.push(tokio::spawn(
            async move { store.begin_otp_attempt(&election, &voter(1), 5, Timestamp::now()).await },
        ));
    }
    let mut counted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(a) => {
                assert_eq!(a.generation, issue.generation);
                counted += 1
            }
            Err(AttemptError::TooManyAttempts) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(counted, 5);

    // Voter 2: a successful verification consumes the code.
    let issue = store.issue_otp(&election, &voter(2), &email(2), policy(), Timestamp::now()).await.unwrap();
    let attempt = store.begin_otp_attempt(&election, &voter(2), 5, Timestamp::now()).await.unwrap();
    assert_eq!(attempt.attempts_used, 1);
    store.consume_otp(&election, &voter(2), issue.generation).await.unwrap();
    assert!(matches!(
        store.begin_otp_attempt(&election, &voter(2), 5, Timestamp::now()).await,
        Err(AttemptError::NoActiveCode)
    ));
}

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

pub async fn repeated_voided_codes_lock_the_voter_for_a_while(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let lock = LockPolicy { after_voids: 2, period: Duration::from_secs(900) };
    let mut now = Timestamp::now();
    let open = OtpPolicy { cooldown: Duration::ZERO, max_sends: 10, ..policy() };
    for round in 0..2 {
        store.issue_otp(&election, &voter(1), &email(1), open, now).await.unwrap();
        for _ in 0..5 {
            store.begin_otp_attempt(&election, &voter(1), 5, now).await.unwrap();
        }
        let locked = store.record_otp_void(&election, &voter(1), lock, now).await.unwrap();
        assert_eq!(locked.is_some(), round == 1, "round {round}");
        now += Duration::from_secs(400); // past half validity: the next request is a new code
    }
    let issue = store.issue_otp(&election, &voter(1), &email(1), open, now).await;
    assert!(matches!(issue, Err(IssueError::Locked { .. })), "{issue:?}");
    let attempt = store.begin_otp_attempt(&election, &voter(1), 5, now).await;
    assert!(matches!(attempt, Err(AttemptError::Locked { .. })), "{attempt:?}");
    let status = store.otp_status(&election, &voter(1)).await.unwrap().unwrap();
    assert!(status.locked_until.is_some() || now > Timestamp::now());
    // The lock ends by itself.
    let after = now + Duration::from_secs(901);
    assert!(store.issue_otp(&election, &voter(1), &email(1), open, after).await.is_ok());
}

pub async fn widened_code_acceptance_is_stored_and_audited(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let audit = AuditEntry {
        actor: "officer:jo".into(),
        action: "otp.widen".into(),
        election: Some(election.clone()),
        detail: serde_json::json!({"extra_secs": 600, "reason": "mail is slow"}),
    };
    store.set_otp_extra(&election, Duration::from_secs(600), &audit, Timestamp::now()).await.unwrap();
    assert_eq!(store.election(&election).await.unwrap().unwrap().otp_extra, Duration::from_secs(600));
    let missing = ElectionId::parse("missing").unwrap();
    assert!(store.set_otp_extra(&missing, Duration::from_secs(1), &audit, Timestamp::now()).await.is_err());
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

fn throttle_rules() -> ThrottleRules {
    ThrottleRules {
        free_failures: 3,
        max_delay: Duration::from_secs(300),
        address_failures: 10,
        address_window: Duration::from_secs(600),
        decay: Duration::from_secs(900),
    }
}

fn throttle_keys(pair: &str, address: &str) -> SignInKeys {
    SignInKeys { pair: pair.into(), address: address.into() }
}

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

pub async fn every_spelling_of_a_voter_is_one_participation_and_one_roll_entry(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let spelling = |raw: &str| Username::parse(raw).unwrap();
    let first = store.cast_ballot(ballot(&election, &spelling("ST000001"), choices("pres", "ada"))).await;
    assert!(first.is_ok(), "{first:?}");
    for raw in ["st000001", "St000001", " st000001 "] {
        let again = store.cast_ballot(ballot(&election, &spelling(raw), choices("pres", "ada"))).await;
        assert!(matches!(again, Err(CastError::AlreadyVoted)), "{raw:?}: {again:?}");
    }
    let t = store.turnout(&election).await.unwrap();
    assert_eq!((t.participation, t.ballots), (1, 1));

    let roll = ElectionId::parse("rolled").unwrap();
    let mut e = new_election(roll.as_str());
    e.eligibility = Eligibility::Roll;
    store.create_election(&e, Timestamp::now()).await.unwrap();
    let entry = RollEntry { uid: spelling("Jane.Doe"), email: None, name: None };
    store.import_roll(&roll, &[entry]).await.unwrap();
    for raw in ["jane.doe", "JANE.DOE"] {
        let found = store.roll_memberships(&spelling(raw), std::slice::from_ref(&roll)).await.unwrap();
        assert_eq!(found, [(roll.clone(), None)], "{raw}");
    }
}

pub async fn a_burst_of_voters_casting_twice_stores_each_ballot_once(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let mut tasks = Vec::new();
    for n in 0..1000 {
        for _ in 0..2 {
            let (store, election) = (store.clone(), election.clone());
            tasks.push(tokio::spawn(async move {
                store.cast_ballot(ballot(&election, &voter(n), choices("pres", "ada"))).await
            }));
        }
    }
    let (mut receipts, mut already) = (std::collections::HashSet::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => assert!(receipts.insert(r.as_str().to_owned()), "a receipt was handed out twice"),
            Err(CastError::AlreadyVoted) => already += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((receipts.len(), already), (1000, 1000));
    assert_eq!(store.turnout(&election).await.unwrap(), Turnout { participation: 1000, ballots: 1000 });
    for r in receipts.iter().take(20) {
        assert!(store.receipt_in_box(&election, &Receipt::parse(r).unwrap()).await.unwrap());
    }
}
