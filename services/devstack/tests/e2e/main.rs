//! End to end through nginx: real slapd, real SMTP (the sink), the three service
//! processes sharing one SQLite file. One stack per test function; scenarios run against it.

mod ballot_crash;
mod console;
mod contests;
mod crash;
mod disk_full;
mod helpers;
mod hostile;
mod https;
mod identity;
mod log_privacy;
mod mongodb;
mod nominations;
mod observability;
mod scenarios;
mod security;

use helpers::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_student_votes_end_to_end_and_every_rule_holds_through_nginx() {
    let mut stack = TestStack::start().await;

    scenarios::json_flow_login_code_vote_receipt_and_second_vote_refused(&stack).await;
    scenarios::html_flow_without_javascript(&stack).await;
    scenarios::bad_input_gets_a_clear_4xx_with_the_error_body(&stack).await;
    scenarios::two_hundred_concurrent_votes_for_one_voter_store_one_ballot(&stack).await;
    scenarios::wrong_codes_never_send_mail(&stack).await;
    scenarios::a_session_verified_for_one_election_cannot_vote_in_another(&stack).await;
    identity::every_spelling_of_one_account_shares_one_code_budget_and_one_ballot(&stack).await;
    contests::faculty_contests_follow_the_directory_and_the_store_refuses_the_others(&stack).await;
    nominations::students_stand_for_the_by_election_through_nginx(&stack).await;
    // These two wait on the clock; run them side by side.
    tokio::join!(
        scenarios::a_code_used_after_several_steps_but_inside_validity_verifies(&stack),
        scenarios::voting_outside_the_window_is_refused(&stack),
    );
    console::an_extension_reaches_the_otp_and_ballot_processes_within_a_second(&stack).await;
    crash::killing_the_otp_service_mid_drain_loses_no_mail(&mut stack).await;
    scenarios::nginx_limits_sign_in_bursts_with_a_json_429(&stack).await;
    observability::metrics_request_ids_logs_and_probes_hold(&stack).await;
    security::security_headers_and_cookie_flags_hold(&stack).await;
    security::a_sign_out_ends_the_session_on_every_service_within_a_second(&stack).await;
    hostile::hostile_input_gets_a_4xx_and_slow_senders_are_cut_off(&stack).await;
    scenarios::no_secret_appears_in_any_log(&stack).await;
}

/// A stack of its own, so every log line after its start is this one vote's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_log_line_pairs_a_voter_with_their_ballot() {
    log_privacy::one_vote_leaves_no_log_line_that_pairs_the_voter_with_the_ballot().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ballot_box_survives_repeated_kills_under_load() {
    let mut stack = TestStack::start().await;
    ballot_crash::killing_the_ballot_service_under_load_loses_no_acknowledged_vote(&mut stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_votes_cleanly_and_recovers() {
    disk_full::a_full_disk_refuses_votes_cleanly_and_recovers().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_serves_the_site_with_hsts_and_secure_cookies() {
    https::https_serves_the_site_with_hsts_and_secure_cookies().await;
}
