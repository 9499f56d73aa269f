//! The one-time upgrades that need the keys (`turnout_store::upgrades`), on SQLite: the
//! operator runs them (`turnout-ballot upgrade`, services stopped); a store opening only
//! does what needs no key and hides nothing (dropping an empty `plaintext_ballots`,
//! marking an empty audit chain keyed).
//!
//! - Keying the audit chain: entries hashed before the key existed are re-hashed with it,
//!   after checking their unkeyed chain (`turnout_store::rekey_chain`); the verdict is the
//!   upgrade's own audit entry. Refused when the chain holds entries only keyed versions
//!   write, or already verifies with the key.
//! - Sealing: ballots cast before sealing (left in `plaintext_ballots` by migration 0009)
//!   are sealed into `ballots` and every participation row without a tag is tagged, with
//!   an audit entry per election saying how many; then the old table is dropped and its
//!   pages wiped (`secure_delete` zeroes them, a checkpoint moves that into the file and
//!   truncates the WAL, `VACUUM` rebuilds the file). Refused for an election whose box
//!   the audit log already records (`box.*` entries).

use deadpool_sqlite::rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use jiff::Timestamp;
use turnout_domain::{ElectionId, Receipt};
use turnout_store::{
    AuditEntry, Choices, KEYED_AUDIT_UPGRADE, KEYED_ERA_ACTIONS, StoreError, StoreKeys, StoredEntry, chain_keyed_entry,
    rekey_chain,
};

use crate::audit::append_audit_in;
use crate::error::SqlResult;

const SEAL_BALLOTS: &str = "seal-ballots-v1";

fn refused(why: String) -> StoreError {
    StoreError::Other(anyhow::anyhow!("upgrade refused: {why}"))
}

/// As the store opens: only what needs no key and could hide nothing.
pub(crate) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    if plaintext_waiting(&tx)? == Some(0) {
        tx.execute("DROP TABLE plaintext_ballots", []).sql()?;
        mark(&tx, SEAL_BALLOTS, serde_json::json!({ "ballots": 0 }))?;
    }
    if !done(&tx, KEYED_AUDIT_UPGRADE)? && audit_entries(&tx)? == 0 {
        mark(&tx, KEYED_AUDIT_UPGRADE, serde_json::json!({ "entries": 0 }))?;
    }
    tx.commit().sql()
}

pub(crate) fn pending(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction().sql()?;
    let mut due = Vec::new();
    if !done(&tx, KEYED_AUDIT_UPGRADE)? {
        due.push(format!("the audit log's {} entries were hashed before hashes were keyed", audit_entries(&tx)?));
    }
    if let Some(n) = plaintext_waiting(&tx)? {
        due.push(format!("{n} ballots were cast before ballots were sealed"));
    }
    let untagged: i64 = tx.query_row("SELECT COUNT(*) FROM participation WHERE tag IS NULL", [], |r| r.get(0)).sql()?;
    if untagged > 0 && !done(&tx, SEAL_BALLOTS)? {
        due.push(format!("{untagged} participations were recorded before they were tagged"));
    }
    Ok(due)
}

pub(crate) fn run(conn: &mut Connection, keys: &StoreKeys) -> Result<Vec<String>, StoreError> {
    let mut report = Vec::new();
    if let Some(n) = key_audit_chain(conn, keys)? {
        report.push(format!("audit log: {n} entries re-hashed with the key"));
    }
    if let Some(lines) = seal_plaintext_ballots(conn, keys)? {
        report.extend(lines);
    }
    Ok(report)
}

fn done(tx: &Transaction<'_>, name: &str) -> Result<bool, StoreError> {
    Ok(tx.query_row("SELECT 1 FROM upgrades WHERE name = ?1", [name], |_| Ok(())).optional().sql()?.is_some())
}

fn mark(tx: &Transaction<'_>, name: &str, detail: serde_json::Value) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO upgrades (name, at, detail) VALUES (?1, ?2, ?3)",
        params![name, Timestamp::now().as_second(), detail.to_string()],
    )
    .sql()?;
    Ok(())
}

fn audit_entries(tx: &Transaction<'_>) -> Result<i64, StoreError> {
    tx.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0)).sql()
}

/// How many ballots wait in `plaintext_ballots`, if the table is there.
fn plaintext_waiting(tx: &Transaction<'_>) -> Result<Option<i64>, StoreError> {
    let exists = tx
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plaintext_ballots'", [], |_| Ok(()))
        .optional()
        .sql()?;
    if exists.is_none() {
        return Ok(None);
    }
    Ok(Some(tx.query_row("SELECT COUNT(*) FROM plaintext_ballots", [], |r| r.get(0)).sql()?))
}

fn key_audit_chain(conn: &mut Connection, keys: &StoreKeys) -> Result<Option<usize>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    if done(&tx, KEYED_AUDIT_UPGRADE)? {
        return Ok(None);
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
    if let Some(e) = entries.iter().find(|e| KEYED_ERA_ACTIONS.contains(&e.action)) {
        return Err(refused(format!(
            "entry {} ({}) is one only a keyed chain holds: the upgrade's record was removed from the database; check the chain against a head noted earlier (verify-audit --head)",
            e.seq, e.action
        )));
    }
    if let Some(first) = entries.first()
        && keys.audit_hash("", first.at, first.actor, first.action, first.election, first.detail) == first.hash
    {
        return Err(refused("the chain is already keyed: the upgrade's record was removed from the database".into()));
    }
    let (rewritten, unkeyed_problem) = rekey_chain(keys, &entries);
    for (seq, prev_hash, hash) in &rewritten {
        tx.execute("UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1", params![seq, prev_hash, hash])
            .sql()?;
    }
    let finding = unkeyed_problem.unwrap_or_else(|| "intact".to_owned());
    if !rewritten.is_empty() {
        append_audit_in(&tx, keys, &chain_keyed_entry(rewritten.len(), &finding), Timestamp::now())?;
    }
    mark(&tx, KEYED_AUDIT_UPGRADE, serde_json::json!({ "entries": rewritten.len(), "unkeyed_chain": finding }))?;
    tx.commit().sql()?;
    Ok(Some(rewritten.len()))
}

fn seal_plaintext_ballots(conn: &mut Connection, keys: &StoreKeys) -> Result<Option<Vec<String>>, StoreError> {
    conn.pragma_update(None, "secure_delete", "ON").sql()?;
    let sealed = seal_in_one_transaction(conn, keys);
    if sealed.as_ref().is_ok_and(Option::is_some) {
        // Outside any transaction: the freed, zeroed pages into the file, the WAL
        // truncated, then the file rebuilt without free pages. The services are stopped
        // for the upgrade, so nothing should hold the file; if something does, say so.
        for step in ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
            conn.execute_batch(step).map_err(|e| {
                StoreError::Other(anyhow::anyhow!(
                    "the ballots are sealed, but wiping the old pages failed at `{step}` ({e}): stop every service and run the upgrade again to finish"
                ))
            })?;
        }
    }
    conn.pragma_update(None, "secure_delete", "OFF").sql()?;
    sealed
}

/// Seals every waiting ballot, tags every untagged participation, and drops the old
/// table; per election, a line saying how many.
fn seal_in_one_transaction(conn: &mut Connection, keys: &StoreKeys) -> Result<Option<Vec<String>>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let waiting = plaintext_waiting(&tx)?;
    let untagged: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT election_id, voter FROM participation WHERE tag IS NULL").sql()?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).sql()?.collect::<Result<_, _>>().sql()?
    };
    if waiting.is_none() && untagged.is_empty() {
        return Ok(None);
    }
    if done(&tx, SEAL_BALLOTS)? {
        return Err(refused(format!(
            "ballots were sealed and voters tagged once already, yet {} untagged participations{} are there now: they were added in the database",
            untagged.len(),
            if waiting.is_some() { " and a plaintext ballot table" } else { "" }
        )));
    }
    let rows: Vec<(String, String, String)> = match waiting {
        None => Vec::new(),
        Some(_) => {
            let mut stmt = tx.prepare("SELECT election_id, receipt, choices FROM plaintext_ballots").sql()?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).sql()?.collect::<Result<_, _>>().sql()?
        }
    };
    let mut per_election: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for (election, receipt, choices) in &rows {
        let unreadable = |what: &str| {
            refused(format!(
                "an old ballot's {what} does not read back (election {election:?}, receipt {receipt:?}): the database was edited by hand"
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
        per_election.entry(election.clone()).or_default().0 += 1;
    }
    for (election, voter) in &untagged {
        let e = ElectionId::parse(election)
            .map_err(|_| refused(format!("a participation's election {election:?} is not an election id")))?;
        tx.execute(
            "UPDATE participation SET tag = ?3 WHERE election_id = ?1 AND voter = ?2",
            params![election, voter, keys.participation_tag(&e, voter)],
        )
        .sql()?;
        per_election.entry(election.clone()).or_default().1 += 1;
    }
    // An election whose box the log records was cast sealed and tagged: plaintext ballots
    // or untagged voters there were put in by hand, and sealing them would launder them.
    for election in per_election.keys() {
        let recorded: Option<String> = tx
            .query_row(
                "SELECT action FROM audit_log WHERE election_id = ?1 AND action IN ('box.counted', 'box.sealed') LIMIT 1",
                [election],
                |r| r.get(0),
            )
            .optional()
            .sql()?;
        if let Some(action) = recorded {
            return Err(refused(format!(
                "election {election} has unsealed ballots or untagged voters, but the audit log already records its sealed box ({action}): they were added in the database"
            )));
        }
    }
    let now = Timestamp::now();
    let mut report = Vec::new();
    for (election, (ballots, voters)) in &per_election {
        let entry = AuditEntry {
            actor: "system".into(),
            action: "box.upgraded".into(),
            election: Some(ElectionId::parse(election).map_err(|_| refused(format!("{election:?}")))?),
            detail: serde_json::json!({ "ballots_sealed": ballots, "voters_tagged": voters }),
        };
        append_audit_in(&tx, keys, &entry, now)?;
        report.push(format!("election {election}: {ballots} ballots sealed, {voters} voters tagged"));
    }
    if waiting.is_some() {
        tx.execute("DROP TABLE plaintext_ballots", []).sql()?;
    }
    mark(&tx, SEAL_BALLOTS, serde_json::json!({ "ballots": rows.len(), "voters": untagged.len() }))?;
    tx.commit().sql()?;
    Ok(Some(report))
}
