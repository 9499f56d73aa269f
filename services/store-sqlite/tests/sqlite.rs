//! What only the SQLite adapter has to prove (the port's rules run in `conformance.rs`):
//! the ballot table holds nothing that identifies a voter and keeps no casting order, two
//! handles on one file behave like two processes, and an edited or removed audit line is
//! found by an insider with the file.

use std::sync::Arc;

use turnout_domain::Username;
use turnout_store::conformance::{ballot, choices, demo_election};
use turnout_store::{Audit, AuditEntry, CastError, Store, StoreKeys, Turnout};
use turnout_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    let _store = SqliteStore::open(&path, StoreKeys::for_tests()).await.unwrap();
    // WAL mode: one file shared by every process. (What a ballot row holds, and what the
    // file and its WAL give away, is `insider.rs`.)
    let conn = deadpool_sqlite::rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_store_handles_on_one_file_behave_like_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    // Opening twice at once also runs the migration twice at once.
    let (a, b) = tokio::join!(
        SqliteStore::open(&path, StoreKeys::for_tests()),
        SqliteStore::open(&path, StoreKeys::for_tests())
    );
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    let election = demo_election(a.as_ref()).await;
    let voter = Username::parse("student00007").unwrap();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (election, voter) = (election.clone(), voter.clone());
        tasks.push(tokio::spawn(
            async move { store.cast_ballot(ballot(&election, &voter, choices("pres", "ada"))).await },
        ));
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
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    let store = SqliteStore::open(&path, StoreKeys::for_tests()).await.unwrap();
    for n in 0..6 {
        let entry = AuditEntry {
            actor: "officer1".into(),
            action: "extend_close".into(),
            election: None,
            detail: serde_json::json!({ "minutes": n }),
        };
        store.append_audit(&entry, jiff::Timestamp::now()).await.unwrap();
    }
    assert_eq!(store.verify_audit(None).await.unwrap().broken_at, None);
    let conn = deadpool_sqlite::rusqlite::Connection::open(&path).unwrap();
    let tamper = |sql: &str| conn.execute_batch(sql).unwrap();

    // Edited detail (as an insider with file access would do).
    tamper("UPDATE audit_log SET detail = '{\"minutes\":99}' WHERE seq = 3");
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!(v.broken_at, Some(3), "edit not found: {v:?}");
    assert!(v.problem.unwrap().contains("edited"));
    tamper("UPDATE audit_log SET detail = '{\"minutes\":2}' WHERE seq = 3");
    assert_eq!(store.verify_audit(None).await.unwrap().broken_at, None, "restoring the content heals it");

    // A removed middle entry.
    tamper("DELETE FROM audit_log WHERE seq = 4");
    assert_eq!(store.verify_audit(None).await.unwrap().broken_at, Some(5));

    // A removed tail (the most tempting edit: undo the last action).
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = dir2.path().join("turnout.db");
    let store2 = SqliteStore::open(&path2, StoreKeys::for_tests()).await.unwrap();
    for _ in 0..3 {
        let entry = AuditEntry { actor: "a".into(), action: "x".into(), election: None, detail: serde_json::json!({}) };
        store2.append_audit(&entry, jiff::Timestamp::now()).await.unwrap();
    }
    deadpool_sqlite::rusqlite::Connection::open(&path2)
        .unwrap()
        .execute_batch("DELETE FROM audit_log WHERE seq = 3")
        .unwrap();
    let v = store2.verify_audit(None).await.unwrap();
    assert_eq!((v.entries, v.broken_at), (2, Some(3)), "removed tail not found: {v:?}");
}

/// A nomination row whose status is not one the store writes is damage, answered as an
/// error: never read as pending, which could be seconded and put on the ballot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nomination_with_an_unknown_status_is_an_error_not_pending() {
    use turnout_store::{NominationId, Nominations};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    let store = SqliteStore::open(&path, StoreKeys::for_tests()).await.unwrap();
    let id = NominationId::random();
    let conn = deadpool_sqlite::rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO nominations (id, election_id, contest_id, nominee, email, version, name, manifesto, status,
                                  submitted_at, updated_at)
         VALUES (?1, 'e', 'c', 'ada', 'ada@example.org', 1, 'Ada', 'Hi', 'approved-ish', 0, 0)",
        [id.as_str()],
    )
    .unwrap();
    assert!(store.nomination(&id).await.is_err(), "an unknown status must not decode");
}
