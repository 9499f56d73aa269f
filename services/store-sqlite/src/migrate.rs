//! The SQLite schema's history: the numbered files in `migrations/`, each applied once,
//! in order, in one `BEGIN IMMEDIATE` transaction with the version bump, so two processes
//! starting at once never both apply one. The version is `PRAGMA user_version` (the
//! number of files applied), as it has always been: existing databases migrate unchanged.
//!
//! A new migration is a new file with the next number, listed here; the test below fails
//! when a file is missing from the list.

use deadpool_sqlite::rusqlite::{self, Connection, TransactionBehavior};

/// Every migration, by file name, in the order they apply.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial.sql", include_str!("../migrations/0001_initial.sql")),
    ("0002_sender_accounts_and_code_locks.sql", include_str!("../migrations/0002_sender_accounts_and_code_locks.sql")),
    (
        "0003_eligibility_roll_and_login_failures.sql",
        include_str!("../migrations/0003_eligibility_roll_and_login_failures.sql"),
    ),
    ("0004_console.sql", include_str!("../migrations/0004_console.sql")),
    ("0005_ballots_by_receipt.sql", include_str!("../migrations/0005_ballots_by_receipt.sql")),
    ("0006_import_leases.sql", include_str!("../migrations/0006_import_leases.sql")),
    (
        "0007_sign_in_throttle_sign_outs_and_canonical_voters.sql",
        include_str!("../migrations/0007_sign_in_throttle_sign_outs_and_canonical_voters.sql"),
    ),
    ("0008_contest_kinds.sql", include_str!("../migrations/0008_contest_kinds.sql")),
    ("0009_sealed_ballots_and_upgrades.sql", include_str!("../migrations/0009_sealed_ballots_and_upgrades.sql")),
    ("0010_notices_and_staff_contacts.sql", include_str!("../migrations/0010_notices_and_staff_contacts.sql")),
    ("0011_nominations.sql", include_str!("../migrations/0011_nominations.sql")),
    ("0012_photo_uses.sql", include_str!("../migrations/0012_photo_uses.sql")),
];

/// Brings the schema up to date (a no-op when it is).
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (_, sql) in MIGRATIONS.iter().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_cast_before_the_ballot_box_rekey_survive_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        // A database as version 4 left it, with two ballots in it.
        let tx = conn.transaction().unwrap();
        for (_, m) in &MIGRATIONS[..4] {
            tx.execute_batch(m).unwrap();
        }
        tx.pragma_update(None, "user_version", 4).unwrap();
        tx.execute_batch(
            "INSERT INTO ballots (id, election_id, receipt, choices) VALUES
               ('b1', 'demo', 'R1', '{\"pres\":\"ada\"}'), ('b2', 'demo', 'R2', '{}');",
        )
        .unwrap();
        tx.commit().unwrap();

        migrate(&mut conn).unwrap();
        let rows: Vec<(String, String, String)> = conn
            // Waiting for the store's upgrade to seal them (`upgrade.rs`, tested there).
            .prepare("SELECT election_id, receipt, choices FROM plaintext_ballots ORDER BY receipt")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [("demo".into(), "R1".into(), "{\"pres\":\"ada\"}".into()), ("demo".into(), "R2".into(), "{}".into())]
        );
    }

    #[test]
    fn voters_stored_under_other_spellings_are_folded_and_duplicates_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        let before = MIGRATIONS.iter().position(|(name, _)| name.starts_with("0007_")).unwrap();
        let tx = conn.transaction().unwrap();
        for (_, m) in &MIGRATIONS[..before] {
            tx.execute_batch(m).unwrap();
        }
        tx.pragma_update(None, "user_version", before as i64).unwrap();
        tx.execute_batch(
            "INSERT INTO participation (election_id, voter) VALUES
               ('demo', 'ST000001'), ('demo', 'st000002'), ('demo', 'St000002');
             INSERT INTO voter_roll (election_id, uid) VALUES ('demo', 'Jane.Doe');",
        )
        .unwrap();
        tx.commit().unwrap();

        migrate(&mut conn).unwrap();
        let list = |sql: &str| -> Vec<String> {
            conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        // The one that collides stays: it was a second ballot, and participation = ballots.
        assert_eq!(list("SELECT voter FROM participation ORDER BY voter"), ["St000002", "st000001", "st000002"]);
        assert_eq!(list("SELECT uid FROM voter_roll"), ["jane.doe"]);
    }

    #[test]
    fn contests_from_before_kinds_read_as_one_seat_plurality_and_rolls_keep_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        let before = MIGRATIONS.iter().position(|(name, _)| name.starts_with("0008_")).unwrap();
        let tx = conn.transaction().unwrap();
        for (_, m) in &MIGRATIONS[..before] {
            tx.execute_batch(m).unwrap();
        }
        tx.pragma_update(None, "user_version", before as i64).unwrap();
        tx.execute_batch(
            "INSERT INTO elections (id, title, opens_at, closes_at, time_zone, grace_secs, created_at)
               VALUES ('demo', 'Demo', 0, 1, 'UTC', 0, 0);
             INSERT INTO contests (election_id, id, title, position) VALUES ('demo', 'pres', 'President', 0);
             INSERT INTO voter_roll (election_id, uid, email) VALUES ('demo', 'jane.doe', 'j@uni.test');",
        )
        .unwrap();
        tx.commit().unwrap();
        migrate(&mut conn).unwrap();
        let one = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let rules: turnout_store::ContestRules = serde_json::from_str(&one("SELECT rules FROM contests")).unwrap();
        assert_eq!(rules, turnout_store::ContestRules::default());
        assert_eq!(one("SELECT columns FROM voter_roll"), "{}");
        assert_eq!(one("SELECT email FROM voter_roll"), "j@uni.test");
        let shuffle: i64 = conn.query_row("SELECT shuffle_candidates FROM elections", [], |r| r.get(0)).unwrap();
        assert_eq!(shuffle, 0);
    }

    #[test]
    fn every_file_in_migrations_is_applied_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(files, listed, "a migration file is missing from MIGRATIONS, or out of order");
        for (n, name) in listed.iter().enumerate() {
            assert!(name.starts_with(&format!("{:04}_", n + 1)), "{name} is not number {}", n + 1);
        }
    }
}
