//! One-time upgrades that need the server's keys, so SQL migrations cannot do them; run
//! as the store opens, each in one `BEGIN IMMEDIATE` transaction and recorded in
//! `upgrades`, so concurrent openers run each once.
//!
//! - Sealing: ballots cast before sealing (left in `plaintext_ballots` by migration 0009)
//!   are sealed into `ballots`, the old table is dropped, and its pages are wiped:
//!   `secure_delete` zeroes them, a checkpoint moves that into the file and truncates the
//!   WAL, and `VACUUM` rebuilds the file, so no plaintext choice stays on disk.
//! - Keying the audit chain: entries hashed before the key existed are re-hashed with it,
//!   after checking their unkeyed chain (`turnout_store::rekey_chain`); the verdict is the
//!   upgrade's own audit entry.

use deadpool_sqlite::rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;
use turnout_domain::{ElectionId, Receipt};
use turnout_store::{Choices, KEYED_AUDIT_UPGRADE, StoreError, StoreKeys, StoredEntry, chain_keyed_entry, rekey_chain};

use crate::audit::append_audit_in;
use crate::error::SqlResult;

const SEAL_BALLOTS: &str = "seal-ballots-v1";

pub(crate) fn upgrade(conn: &mut Connection, keys: &StoreKeys) -> Result<(), StoreError> {
    seal_plaintext_ballots(conn, keys)?;
    key_audit_chain(conn, keys)
}

fn seal_plaintext_ballots(conn: &mut Connection, keys: &StoreKeys) -> Result<(), StoreError> {
    let waiting = |c: &Connection| -> Result<bool, StoreError> {
        c.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plaintext_ballots'", [], |_| Ok(()))
            .optional()
            .sql()
            .map(|found| found.is_some())
    };
    if !waiting(conn)? {
        return Ok(());
    }
    conn.pragma_update(None, "secure_delete", "ON").sql()?;
    let sealed = seal_in_one_transaction(conn, keys);
    let wiped = sealed.as_ref().is_ok_and(|n| *n > 0);
    if wiped {
        // Outside any transaction: the freed, zeroed pages into the file, the WAL
        // truncated, then the file rebuilt without free pages. Best effort: another
        // process reading at this moment makes VACUUM busy, and the zeroing has been done.
        for step in ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
            if let Err(e) = conn.execute_batch(step) {
                tracing::warn!(event = "sealing_wipe_step_failed", step, error = %e);
            }
        }
    }
    conn.pragma_update(None, "secure_delete", "OFF").sql()?;
    let n = sealed?;
    if n > 0 {
        tracing::info!(event = "ballots_sealed", ballots = n);
    }
    Ok(())
}

/// Seals every waiting ballot and drops the old table; returns how many were sealed.
fn seal_in_one_transaction(conn: &mut Connection, keys: &StoreKeys) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let exists: Option<()> = tx
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plaintext_ballots'", [], |_| Ok(()))
        .optional()
        .sql()?;
    if exists.is_none() {
        return Ok(0); // another process sealed them first
    }
    let rows: Vec<(String, String, String)> = {
        let mut stmt = tx.prepare("SELECT election_id, receipt, choices FROM plaintext_ballots").sql()?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).sql()?.collect::<Result<_, _>>().sql()?
    };
    for (election, receipt, choices) in &rows {
        let unreadable = |what: &str| {
            StoreError::Other(anyhow::anyhow!(
                "an old ballot cannot be sealed: its {what} does not read back (election {election:?}, receipt {receipt:?}); the database was edited by hand"
            ))
        };
        let e = ElectionId::parse(election).map_err(|_| unreadable("election"))?;
        let r = Receipt::parse(receipt).map_err(|_| unreadable("receipt"))?;
        let c: Choices = serde_json::from_str(choices).map_err(|_| unreadable("choices"))?;
        tx.execute(
            "INSERT INTO ballots (election_id, receipt, sealed) VALUES (?1, ?2, ?3)",
            params![election, r.as_str(), keys.seal(&e, &r, &c)],
        )
        .sql()?;
    }
    tx.execute("DROP TABLE plaintext_ballots", []).sql()?;
    let detail = serde_json::json!({ "ballots": rows.len() }).to_string();
    tx.execute(
        "INSERT OR IGNORE INTO upgrades (name, at, detail) VALUES (?1, ?2, ?3)",
        params![SEAL_BALLOTS, Timestamp::now().as_second(), detail],
    )
    .sql()?;
    tx.commit().sql()?;
    Ok(rows.len() as u64)
}

fn key_audit_chain(conn: &mut Connection, keys: &StoreKeys) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let done: Option<()> =
        tx.query_row("SELECT 1 FROM upgrades WHERE name = ?1", [KEYED_AUDIT_UPGRADE], |_| Ok(())).optional().sql()?;
    if done.is_some() {
        return Ok(());
    }
    type Row = (i64, i64, String, String, Option<String>, String, String, String);
    let rows: Vec<Row> = {
        let mut stmt = tx
            .prepare("SELECT seq, at, actor, action, election_id, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .sql()?;
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })
        .sql()?
        .collect::<Result<_, _>>()
        .sql()?
    };
    let entries: Vec<StoredEntry<'_>> = rows
        .iter()
        .map(|(seq, at, actor, action, election, detail, prev_hash, hash)| StoredEntry {
            seq: *seq,
            at: *at,
            actor,
            action,
            election: election.as_deref().unwrap_or(""),
            detail,
            prev_hash,
            hash,
        })
        .collect();
    let (rewritten, unkeyed_problem) = rekey_chain(keys, &entries);
    for (seq, prev_hash, hash) in &rewritten {
        tx.execute("UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1", params![seq, prev_hash, hash])
            .sql()?;
    }
    let now = Timestamp::now();
    let finding = unkeyed_problem.clone().unwrap_or_else(|| "intact".to_owned());
    if !rewritten.is_empty() {
        let entry = chain_keyed_entry(rewritten.len(), &finding);
        append_audit_in(&tx, keys, &entry, now)?;
    }
    tx.execute(
        "INSERT INTO upgrades (name, at, detail) VALUES (?1, ?2, ?3)",
        params![
            KEYED_AUDIT_UPGRADE,
            now.as_second(),
            serde_json::json!({ "entries": rewritten.len(), "unkeyed_chain": finding }).to_string()
        ],
    )
    .sql()?;
    tx.commit().sql()?;
    if let Some(problem) = unkeyed_problem {
        tracing::warn!(event = "audit_chain_keyed_over_a_break", problem);
    } else if !rewritten.is_empty() {
        tracing::info!(event = "audit_chain_keyed", entries = rewritten.len());
    }
    Ok(())
}
