//! One-time codes: resend, cooldown, caps, attempts, locks, widened acceptance.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_domain::ElectionId;

use super::{demo_election, email, policy, voter};
use crate::{AttemptError, AuditEntry, IssueError, LockPolicy, OtpPolicy, Store};

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
