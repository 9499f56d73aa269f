//! Store conformance: every rule the Store port promises, run against each adapter.
//! SQLite always runs; other adapters plug in by providing a `fresh_store()`.

mod conformance;
mod console;

use std::sync::Arc;

use turnout_core::store::{SqliteStore, Store};

/// A fresh SQLite store in its own temp dir (kept alive by the returned guard).
async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("turnout.db")).await.unwrap();
    (Arc::new(store), dir)
}

#[path = "../support/mongo.rs"]
mod mongo_support;

/// Each rule, once per adapter: `sqlite::rule` always, `mongodb::rule` when
/// `TURNOUT_TEST_MONGODB_URI` names a server (otherwise a SKIP line).
macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite_adapter {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = sqlite().await;
                    $module::$name(store).await;
                }
            )*
        }
        mod mongodb_adapter {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(store) = mongo_support::fresh(stringify!($name)).await else { return };
                    $module::$name(store.clone()).await;
                    mongo_support::drop_db(&store).await;
                }
            )*
        }
    };
}

conformance!(
    conformance::elections_round_trip_and_ids_are_unique,
    conformance::one_voter_one_ballot_under_1000_concurrent_submissions,
    conformance::receipts_are_checkable_per_election,
    conformance::otp_resend_reuses_a_still_valid_code_and_honours_cooldown_and_cap,
    conformance::otp_attempts_are_capped_and_a_used_code_is_gone,
    conformance::outbox_leases_are_exclusive_and_expire,
    conformance::outbox_status_shows_the_latest_message,
    conformance::the_outbox_summary_gives_exact_delivery_percentiles,
    conformance::list_elections_is_paginated_and_capped,
    conformance::sends_are_spaced_by_rate_capped_by_day_and_sessions_across_holders,
    conformance::blocked_or_throttling_accounts_are_quarantined_and_skipped,
    conformance::repeated_voided_codes_lock_the_voter_for_a_while,
    conformance::widened_code_acceptance_is_stored_and_audited,
    conformance::a_few_sends_start_at_once_on_several_idle_accounts,
    conformance::sign_in_attempts_are_counted_before_the_check_and_wait_to_the_millisecond,
    conformance::an_address_spraying_many_usernames_is_held_back_alone,
    conformance::fifty_parallel_attempts_pass_the_throttle_only_as_often_as_it_allows,
    conformance::a_burst_from_one_address_is_counted_once_each_and_refuses_nobody,
    conformance::every_spelling_of_a_voter_is_one_participation_and_one_roll_entry,
    conformance::sign_outs_are_kept_per_account_read_in_time_order_and_purged,
    conformance::a_burst_of_voters_casting_twice_stores_each_ballot_once,
    console::the_window_is_checked_as_the_ballot_is_recorded,
    console::candidates_are_nominated_decided_and_locked_once_voting_opens,
    console::elections_are_edited_only_before_opening,
    console::the_close_only_moves_later_and_never_after_closing,
    console::the_tally_counts_votes_and_blanks_and_matches_participation,
    console::the_audit_chain_verifies,
    console::an_election_and_its_audit_line_are_created_together,
    console::roll_imports_apply_chunks_keep_errors_and_are_idempotent,
    console::an_import_is_held_by_one_run_and_taken_over_only_after_its_lease,
    console::activity_is_counted_per_minute_with_the_events_themselves,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ballot_table_holds_nothing_that_identifies_the_voter() {
    use turnout_core::store::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let election = conformance::demo_election(&store).await;
    // Ballots cast one after another, in a known order.
    let mut receipts = Vec::new();
    for n in 40..90 {
        let voter = turnout_core::domain::Username::parse(&format!("student{n:05}")).unwrap();
        let choices = conformance::choices("pres", "ada");
        receipts.push(store.cast_ballot(conformance::ballot(&election, &voter, choices)).await.unwrap());
    }

    let conn = deadpool_sqlite::rusqlite::Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('ballots')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(columns, ["election_id", "receipt", "choices"], "ballot columns changed: review for voter linkage");
    let rows: Vec<String> = conn
        .prepare("SELECT election_id || '|' || receipt || '|' || choices FROM ballots")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| !r.contains("student000")), "a ballot row names its voter");
    // The key (the receipt) is random: stored order says nothing about casting order.
    let stored: Vec<String> = rows.iter().map(|r| r.split('|').nth(1).unwrap().to_owned()).collect();
    let cast: Vec<String> = receipts.iter().map(|r| r.as_str().to_owned()).collect();
    assert_ne!(stored, cast, "the ballot box keeps the order ballots were cast in");
    let mut sorted = cast.clone();
    sorted.sort();
    assert_eq!(stored, sorted, "rows are read in key order");
    // WAL mode: one file shared by every process.
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_store_handles_on_one_file_behave_like_two_processes() {
    use turnout_core::store::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    // Opening twice at once also runs the migration twice at once.
    let (a, b) = tokio::join!(SqliteStore::open(&path), SqliteStore::open(&path));
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    let election = conformance::demo_election(a.as_ref()).await;
    let voter = turnout_core::domain::Username::parse("student00007").unwrap();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (election, voter) = (election.clone(), voter.clone());
        tasks.push(tokio::spawn(async move {
            store.cast_ballot(conformance::ballot(&election, &voter, conformance::choices("pres", "ada"))).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CastError::AlreadyVoted) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(b.turnout(&election).await.unwrap(), Turnout { participation: 1, ballots: 1 });
}

/// Tampering is found: an edited entry, a removed entry in the middle, a removed tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edited_or_removed_audit_entries_are_detected() {
    use turnout_core::store::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    let store = SqliteStore::open(&path).await.unwrap();
    for n in 0..6 {
        let entry = AuditEntry {
            actor: "officer1".into(),
            action: "extend_close".into(),
            election: None,
            detail: serde_json::json!({ "minutes": n }),
        };
        store.append_audit(&entry, jiff::Timestamp::now()).await.unwrap();
    }
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None);
    let conn = deadpool_sqlite::rusqlite::Connection::open(&path).unwrap();
    let tamper = |sql: &str| conn.execute_batch(sql).unwrap();

    // Edited detail (as an insider with file access would do).
    tamper("UPDATE audit_log SET detail = '{\"minutes\":99}' WHERE seq = 3");
    let v = store.verify_audit().await.unwrap();
    assert_eq!(v.broken_at, Some(3), "edit not found: {v:?}");
    assert!(v.problem.unwrap().contains("edited"));
    tamper("UPDATE audit_log SET detail = '{\"minutes\":2}' WHERE seq = 3");
    assert_eq!(store.verify_audit().await.unwrap().broken_at, None, "restoring the content heals it");

    // A removed middle entry.
    tamper("DELETE FROM audit_log WHERE seq = 4");
    assert_eq!(store.verify_audit().await.unwrap().broken_at, Some(5));

    // A removed tail (the most tempting edit: undo the last action).
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = dir2.path().join("turnout.db");
    let store2 = SqliteStore::open(&path2).await.unwrap();
    for _ in 0..3 {
        let entry = AuditEntry { actor: "a".into(), action: "x".into(), election: None, detail: serde_json::json!({}) };
        store2.append_audit(&entry, jiff::Timestamp::now()).await.unwrap();
    }
    deadpool_sqlite::rusqlite::Connection::open(&path2)
        .unwrap()
        .execute_batch("DELETE FROM audit_log WHERE seq = 3")
        .unwrap();
    let v = store2.verify_audit().await.unwrap();
    assert_eq!((v.entries, v.broken_at), (2, Some(3)), "removed tail not found: {v:?}");
}
