//! The conformance suite: every rule the Store port promises, as a check on a fresh,
//! empty store. Each adapter runs all of it from its own tests with
//! `turnout_store::conformance_tests!(fresh)`, where `fresh(test_name)` gives a
//! `Harness` (or `None`, after printing a SKIP line, when its server is not configured).
//!
//! One file per aggregate, like the port; the fixtures every file shares are here.

mod activity;
mod audit;
mod ballot_box;
mod codes;
mod contests;
mod elections;
mod imports;
mod nominations;
mod notices;
mod outbox;
pub mod secrecy;
mod senders;
mod sign_in;

pub use activity::*;
pub use audit::*;
pub use ballot_box::*;
pub use codes::*;
pub use contests::*;
pub use elections::*;
pub use imports::*;
pub use nominations::*;
pub use notices::*;
pub use outbox::*;
pub use senders::*;
pub use sign_in::*;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{Timestamp, ToSpan};
use turnout_domain::{CandidateId, ContestId, ElectionId, Username, VoterEmail};

use crate::{
    AccountLimits, AuditEntry, CastBallot, Choices, ImportLease, NewCandidate, NewElection, OtpPolicy,
    QuarantinePolicy, SignInKeys, Store, ThrottleRules, Vote,
};

/// One test's store and whatever keeps it alive (a temp dir, a database of its own).
pub trait Harness: Send {
    fn store(&self) -> Arc<dyn Store>;
    /// Called once the rule passed: drop what the test made.
    fn finish(self) -> impl Future<Output = ()> + Send;
}

/// Every rule as a `#[tokio::test]`, in the calling test crate, on stores from `$fresh`.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@rules $fresh;
            elections::elections_round_trip_and_ids_are_unique,
            elections::list_elections_is_paginated_and_capped,
            elections::an_election_and_its_audit_line_are_created_together,
            elections::elections_are_edited_only_before_opening,
            elections::candidates_are_nominated_decided_and_locked_once_voting_opens,
            elections::the_close_only_moves_later_and_never_after_closing,
            ballot_box::one_voter_one_ballot_under_1000_concurrent_submissions,
            ballot_box::a_burst_of_voters_casting_twice_stores_each_ballot_once,
            ballot_box::receipts_are_checkable_per_election,
            ballot_box::every_spelling_of_a_voter_is_one_participation_and_one_roll_entry,
            ballot_box::the_window_is_checked_as_the_ballot_is_recorded,
            ballot_box::the_box_gives_back_every_ballot_as_cast_and_matches_participation,
            contests::contest_rules_and_the_shuffle_setting_are_stored_and_edited,
            contests::reserved_ids_are_refused_to_candidates,
            contests::a_contest_of_another_constituency_is_refused_in_the_cast_itself,
            contests::constituency_turnout_counts_each_constituencys_voters,
            contests::roll_columns_are_kept_updated_and_counted,
            codes::otp_resend_reuses_a_still_valid_code_and_honours_cooldown_and_cap,
            codes::otp_attempts_are_capped_and_a_used_code_is_gone,
            codes::repeated_voided_codes_lock_the_voter_for_a_while,
            codes::widened_code_acceptance_is_stored_and_audited,
            outbox::outbox_leases_are_exclusive_and_expire,
            outbox::outbox_status_shows_the_latest_message,
            outbox::the_outbox_summary_gives_exact_delivery_percentiles,
            nominations::nominations_are_made_in_their_period_by_the_nominee_and_every_version_is_kept,
            nominations::seconds_are_once_each_never_ones_own_and_capped_per_contest_under_a_race,
            nominations::decisions_name_the_current_version_need_proposers_and_set_the_ballot,
            nominations::the_nomination_period_closes_before_voting_opens,
            nominations::a_student_makes_a_bounded_number_of_nominations_withdrawn_ones_included,
            nominations::a_contest_with_live_nominations_stays_in_the_election,
            nominations::a_photo_is_shown_while_a_page_shows_it_and_then_to_its_nominee_only,
            notices::notices_are_queued_once_per_key_and_recipient_and_leased,
            notices::a_deferred_notice_waits_and_is_given_up_after_its_attempts,
            notices::staff_contacts_follow_each_sign_in_and_are_bounded,
            senders::sends_are_spaced_by_rate_capped_by_day_and_sessions_across_holders,
            senders::blocked_or_throttling_accounts_are_quarantined_and_skipped,
            senders::a_few_sends_start_at_once_on_several_idle_accounts,
            sign_in::sign_in_attempts_are_counted_before_the_check_and_wait_to_the_millisecond,
            sign_in::an_address_spraying_many_usernames_is_held_back_alone,
            sign_in::fifty_parallel_attempts_pass_the_throttle_only_as_often_as_it_allows,
            sign_in::a_burst_from_one_address_is_counted_once_each_and_refuses_nobody,
            sign_in::sign_outs_are_kept_per_account_read_in_time_order_and_purged,
            audit::the_audit_chain_verifies,
            audit::the_chain_must_reach_an_anchored_head,
            imports::roll_imports_apply_chunks_keep_errors_and_are_idempotent,
            imports::an_import_is_held_by_one_run_and_taken_over_only_after_its_lease,
            activity::activity_is_counted_per_minute_with_the_events_themselves,
        );
    };
    (@rules $fresh:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(harness) = $fresh(stringify!($name)).await else { return };
                $crate::conformance::$name($crate::conformance::Harness::store(&harness)).await;
                $crate::conformance::Harness::finish(harness).await;
            }
        )*
    };
}

pub fn choices(contest: &str, candidate: &str) -> Choices {
    [(ContestId::parse(contest).unwrap(), Vote::one(CandidateId::parse(candidate).unwrap()))].into_iter().collect()
}

/// A cast by a voter verified just now, in an election that is open now.
pub fn ballot(election: &ElectionId, voter: &Username, choices: Choices) -> CastBallot {
    let now = Timestamp::now();
    CastBallot {
        election: election.clone(),
        voter: voter.clone(),
        choices,
        constituencies: Vec::new(),
        verified_at: now,
        now,
    }
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

pub fn voter(n: u32) -> Username {
    Username::parse(&format!("student{n:05}")).unwrap()
}

pub fn email(n: u32) -> VoterEmail {
    VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap()
}

pub fn audit(action: &str, election: &ElectionId) -> AuditEntry {
    AuditEntry {
        actor: "admin1".into(),
        action: action.into(),
        election: Some(election.clone()),
        detail: serde_json::json!({ "why": "test" }),
    }
}

/// An election that opens in an hour: still editable.
pub async fn upcoming(store: &dyn Store, id: &str) -> ElectionId {
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

pub fn cid(s: &str) -> CandidateId {
    CandidateId::parse(s).unwrap()
}

pub fn kid(s: &str) -> ContestId {
    ContestId::parse(s).unwrap()
}

pub fn nominee(id: &str) -> NewCandidate {
    serde_json::from_value(serde_json::json!({ "id": id, "name": id.to_uppercase(), "statement": "hi" })).unwrap()
}

pub fn lease(owner: &str, until: Timestamp) -> ImportLease {
    ImportLease { owner: owner.into(), until }
}

pub fn policy() -> OtpPolicy {
    OtpPolicy { validity: Duration::from_secs(600), cooldown: Duration::from_secs(60), max_sends: 3, max_attempts: 5 }
}

pub fn quarantine() -> QuarantinePolicy {
    QuarantinePolicy { period: Duration::from_secs(600), strike_limit: 3 }
}

pub fn limits(name: &str, per_minute: u32, max_concurrent: u32, daily_cap: u32) -> AccountLimits {
    AccountLimits { name: name.into(), per_minute, max_concurrent, daily_cap }
}

pub fn throttle_rules() -> ThrottleRules {
    ThrottleRules {
        free_failures: 3,
        max_delay: Duration::from_secs(300),
        address_failures: 10,
        address_window: Duration::from_secs(600),
        decay: Duration::from_secs(900),
    }
}

pub fn throttle_keys(pair: &str, address: &str) -> SignInKeys {
    SignInKeys { pair: pair.into(), address: address.into() }
}
