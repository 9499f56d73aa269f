//! The insider with the database file: what they can read, and what they can change
//! without being found. Each test plays someone holding `turnout.db` (and its `-wal`) but
//! not `TURNOUT_SECRET`.

use std::sync::Arc;

use deadpool_sqlite::rusqlite::{Connection, params};
use turnout_store::conformance::secrecy::{
    CHANCE_PAIRS, SECRET_BALLOTS, assert_unopened, cast_secret_ballots, markers, paired_by_order, unkeyed_audit_hash,
};
use turnout_store::conformance::{audit, ballot, choices, demo_election, voter};
use turnout_store::{AuditHead, Store, StoreKeys, Upgrades};
use turnout_store_sqlite::SqliteStore;

async fn store(dir: &tempfile::TempDir) -> (Arc<dyn Store>, std::path::PathBuf) {
    let path = dir.path().join("turnout.db");
    (Arc::new(SqliteStore::open(&path, StoreKeys::for_tests()).await.unwrap()), path)
}

fn list(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

fn bytes_of(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_file_and_its_wal_hold_no_choice_and_no_order_of_casting() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store(&dir).await;
    let e = demo_election(store.as_ref()).await;
    let cast = cast_secret_ballots(&store, &e).await;

    // The raw bytes, as a backup taken now would hold them: the file and the WAL (not
    // yet checkpointed: every cast's frames are still there).
    let wal = path.with_extension("db-wal");
    let (db, wal) = (bytes_of(&path), bytes_of(&wal));
    assert!(!wal.is_empty(), "the test wants the WAL frames of the casts");
    for n in 0..SECRET_BALLOTS {
        for m in markers(n) {
            assert!(!contains(&db, &m) && !contains(&wal, &m), "{m} (a choice) is readable in the database or its WAL");
        }
    }

    // Every order the tables offer. Both are WITHOUT ROWID tables, so key order is the
    // only one: participation by voter (here, as it happens, the order of casting) and
    // ballots by receipt, both ways.
    let conn = Connection::open(&path).unwrap();
    let voters_by_row = list(&conn, "SELECT voter FROM participation");
    let voters_by_key = list(&conn, "SELECT voter FROM participation ORDER BY election_id DESC, voter DESC");
    let natural = list(&conn, "SELECT receipt FROM ballots");
    let by_key_desc = list(&conn, "SELECT receipt FROM ballots ORDER BY election_id DESC, receipt DESC");
    assert_eq!(voters_by_row.len(), 50);
    assert_eq!(paired_by_order(&cast, &voters_by_row, &voters_by_row_receipts(&cast)), 50, "the measure works");
    for voters in [&voters_by_row, &voters_by_key] {
        for receipts in [&natural, &by_key_desc] {
            let paired = paired_by_order(&cast, voters, receipts);
            assert!(paired <= CHANCE_PAIRS, "{paired} of 50 ballots line up with their voter by stored order");
        }
    }
    // What a ballot row holds: the box, the receipt, ciphertext of one fixed length.
    let columns = list(&conn, "SELECT name FROM pragma_table_info('ballots')");
    assert_eq!(columns, ["election_id", "receipt", "sealed"], "ballot columns changed: review for voter linkage");
    let lengths = list(&conn, "SELECT DISTINCT CAST(length(sealed) AS TEXT) FROM ballots");
    assert_eq!(lengths.len(), 1, "ciphertext lengths differ, so they tell choices apart: {lengths:?}");
}

/// The receipts in casting order (what a perfect pairing would line up with).
fn voters_by_row_receipts(cast: &[(turnout_domain::Username, turnout_domain::Receipt)]) -> Vec<String> {
    cast.iter().map(|(_, r)| r.as_str().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changed_copied_or_forged_ballots_do_not_open_and_are_never_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store(&dir).await;
    let e = demo_election(store.as_ref()).await;
    let mut receipts = Vec::new();
    for n in 0..3 {
        receipts.push(store.cast_ballot(ballot(&e, &voter(n), choices("pres", "ada"))).await.unwrap());
    }
    let conn = Connection::open(&path).unwrap();
    // Change one ballot: flip a byte of its ciphertext.
    conn.execute(
        "UPDATE ballots SET sealed = substr(sealed, 1, 40) || X'00' || substr(sealed, 42) WHERE receipt = ?1",
        [receipts[0].as_str()],
    )
    .unwrap();
    // Add a participation + ballot pair: a copy of a real ballot's ciphertext under a new
    // receipt (the insider cannot seal one of their own without the key).
    let forged = turnout_domain::Receipt::generate();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("INSERT INTO participation (election_id, voter) VALUES ('demo', 'mallory')", []).unwrap();
    conn.execute(
        "INSERT INTO ballots (election_id, receipt, sealed) SELECT election_id, ?1, sealed FROM ballots WHERE receipt = ?2",
        params![forged.as_str(), receipts[1].as_str()],
    )
    .unwrap();
    conn.execute_batch("COMMIT").unwrap();

    let contents = store.box_contents(&e).await.unwrap();
    assert_unopened(&contents, &[&receipts[0], &forged], 4);

    // The same database opened with another secret opens nothing.
    drop(store);
    let other = SqliteStore::open(&path, StoreKeys::new([1; 32], [9; 32])).await.unwrap();
    let contents = turnout_store::BallotBox::box_contents(&other, &e).await.unwrap();
    assert_eq!((contents.ballots.len(), contents.unopened.len()), (0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_entry_with_its_chain_recomputed_is_found_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store(&dir).await;
    let e = demo_election(store.as_ref()).await;
    for _ in 0..4 {
        store.append_audit(&audit("window.extended", &e), jiff::Timestamp::now()).await.unwrap();
    }
    // The insider edits entry 2 and rewrites every hash from there, as the old
    // unkeyed chain would have let them.
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2", []).unwrap();
    let rows: Vec<(i64, i64, String, String, String, String)> = conn
        .prepare("SELECT seq, at, actor, action, coalesce(election_id, ''), detail FROM audit_log ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = String::new();
    for (seq, at, actor, action, election, detail) in rows {
        let hash = unkeyed_audit_hash(&prev, at, &actor, &action, &election, &detail);
        conn.execute("UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1", params![seq, prev, hash])
            .unwrap();
        prev = hash;
    }
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!(v.broken_at, Some(1), "{v:?}");
    assert!(v.problem.unwrap().contains("keyed hash"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_tail_with_the_sequence_lowered_is_found_by_the_anchored_head() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store(&dir).await;
    let e = demo_election(store.as_ref()).await;
    for _ in 0..3 {
        store.append_audit(&audit("window.extended", &e), jiff::Timestamp::now()).await.unwrap();
    }
    let anchored: AuditHead = store.audit_head().await.unwrap().unwrap();
    assert_eq!(anchored.seq, 3);
    // Remove the last entry and lower SQLite's own counter, so the store itself sees no gap.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DELETE FROM audit_log WHERE seq = 3; UPDATE sqlite_sequence SET seq = 2 WHERE name = 'audit_log';",
    )
    .unwrap();
    let unanchored = store.verify_audit(None).await.unwrap();
    assert_eq!(unanchored.broken_at, None, "without an anchor the cut chain looks whole: {unanchored:?}");
    let v = store.verify_audit(Some(&anchored)).await.unwrap();
    assert_eq!(v.broken_at, Some(3), "{v:?}");
    assert!(v.problem.unwrap().contains("entries 3 to 3 were removed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ballots_and_an_unkeyed_chain_from_before_are_sealed_keyed_and_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("turnout.db");
    // A database as the version before sealing left it: plaintext ballots, an unkeyed chain.
    {
        let (store, _) = store(&dir).await;
        demo_election(store.as_ref()).await;
    }
    let receipt = turnout_domain::Receipt::generate();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DELETE FROM upgrades;
             CREATE TABLE plaintext_ballots (election_id TEXT NOT NULL, receipt TEXT NOT NULL,
               choices TEXT NOT NULL, PRIMARY KEY (election_id, receipt)) WITHOUT ROWID;
             DELETE FROM audit_log;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO plaintext_ballots VALUES ('demo', ?1, '{\"pres\":\"zqxoldchoice\"}')",
            [receipt.as_str()],
        )
        .unwrap();
        conn.execute("INSERT INTO participation (election_id, voter) VALUES ('demo', 'old.voter')", []).unwrap();
        let mut prev = String::new();
        for n in 1..=2i64 {
            let hash = unkeyed_audit_hash(&prev, n, "admin1", "election.created", "demo", "{}");
            conn.execute(
                "INSERT INTO audit_log (seq, at, actor, action, election_id, detail, prev_hash, hash)
                 VALUES (?1, ?1, 'admin1', 'election.created', 'demo', '{}', ?2, ?3)",
                params![n, prev, hash],
            )
            .unwrap();
            prev = hash;
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    assert!(contains(&bytes_of(&path), "zqxoldchoice"), "the old ballot is on disk in the clear to begin with");

    // Opening does not upgrade (a database writer could fake what says one is due); the
    // operator's upgrade does.
    let store = SqliteStore::open(&path, StoreKeys::for_tests()).await.unwrap();
    let due = store.pending_upgrades().await.unwrap();
    assert_eq!(due.len(), 3, "{due:?}");
    let report = store.run_upgrades().await.unwrap();
    assert!(report.iter().any(|l| l.contains("election demo: 1 ballots sealed, 1 voters tagged")), "{report:?}");
    assert!(store.pending_upgrades().await.unwrap().is_empty());
    let e = turnout_domain::ElectionId::parse("demo").unwrap();
    let contents = turnout_store::BallotBox::box_contents(&store, &e).await.unwrap();
    assert!(contents.intact(), "{contents:?}");
    assert_eq!(contents.ballots, [choices("pres", "zqxoldchoice")]);
    assert_eq!(contents.receipts, [receipt]);
    for file in [path.clone(), path.with_extension("db-wal")] {
        assert!(!contains(&bytes_of(&file), "zqxoldchoice"), "the plaintext stays on disk in {}", file.display());
    }
    // The chain, checked unkeyed and re-hashed with the key, verifies, and says so; the
    // sealing is in it too.
    let v = turnout_store::Audit::verify_audit(&store, None).await.unwrap();
    assert_eq!((v.entries, v.broken_at), (4, None), "{v:?}");
    let last = turnout_store::Audit::list_audit(&store, 2, 2).await.unwrap();
    assert_eq!(last[0].action, "audit.chain_keyed");
    assert_eq!(last[0].detail["unkeyed_chain"], "intact");
    assert_eq!((last[1].action.as_str(), &last[1].detail["ballots_sealed"]), ("box.upgraded", &serde_json::json!(1)));
    assert!(store.run_upgrades().await.unwrap().is_empty(), "a second run does nothing");
}

/// The insider fakes "an upgrade is due" to have their own ballots sealed, or their edited
/// chain keyed, with the real key: the upgrade refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_faked_upgrade_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = store(&dir).await;
    let e = demo_election(store.as_ref()).await;
    store.cast_ballot(ballot(&e, &voter(1), choices("pres", "ada"))).await.unwrap();
    store.append_audit(&audit("box.counted", &e), jiff::Timestamp::now()).await.unwrap();
    let conn = Connection::open(&path).unwrap();
    // Forged ballots waiting to be sealed, and an untagged voter to balance them.
    conn.execute_batch(
        "DELETE FROM upgrades;
         CREATE TABLE plaintext_ballots (election_id TEXT NOT NULL, receipt TEXT NOT NULL,
           choices TEXT NOT NULL, PRIMARY KEY (election_id, receipt)) WITHOUT ROWID;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO plaintext_ballots VALUES ('demo', ?1, '{\"pres\":\"bob\"}')",
        [turnout_domain::Receipt::generate().as_str()],
    )
    .unwrap();
    conn.execute("INSERT INTO participation (election_id, voter) VALUES ('demo', 'mallory')", []).unwrap();
    assert!(!store.pending_upgrades().await.unwrap().is_empty(), "the fake looks due");
    let err = store.run_upgrades().await.unwrap_err().to_string();
    assert!(err.contains("only a keyed chain holds"), "{err}");
    // Even with the marker of the keyed chain put back, the sealing is refused.
    conn.execute("INSERT INTO upgrades (name, at, detail) VALUES ('keyed-audit-chain-v1', 0, '{}')", []).unwrap();
    let err = store.run_upgrades().await.unwrap_err().to_string();
    assert!(err.contains("already records its sealed box"), "{err}");
    let contents = store.box_contents(&e).await.unwrap();
    assert_eq!((contents.ballots.len(), contents.untagged.as_slice()), (1, ["mallory".to_owned()].as_slice()));
}
