//! The audit log on SQLite: `audit_log`, append-only, each row hashing the previous one.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_store::rules::{audit_hash, ts};
use turnout_store::{Audit, AuditEntry, AuditRecord, AuditVerification, MAX_PAGE, StoreError};

use crate::SqliteStore;
use crate::error::SqlResult;

#[async_trait]
impl Audit for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            append_audit_in(&tx, &entry, now)?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.run(move |c| list_audit(c, after, limit)).await
    }

    async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        self.run(verify_audit).await
    }
}

/// Appends to the hash-chained audit log inside the caller's transaction, so an audited
/// change and its audit line commit together.
pub(crate) fn append_audit_in(
    tx: &rusqlite::Transaction<'_>,
    entry: &AuditEntry,
    now: Timestamp,
) -> Result<(), StoreError> {
    let prev: String = tx
        .query_row("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
        .optional()
        .sql()?
        .unwrap_or_default();
    let detail = entry.detail.to_string();
    let election = entry.election.as_ref().map(|e| e.as_str().to_owned());
    let hash =
        audit_hash(&prev, now.as_second(), &entry.actor, &entry.action, election.as_deref().unwrap_or(""), &detail);
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, election_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now.as_second(), entry.actor, entry.action, election, detail, prev, hash],
    )
    .sql()?;
    Ok(())
}

pub(crate) fn list_audit(conn: &mut Connection, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, election_id, detail, hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    ).sql()?;
    let rows = stmt
        .query_map(params![after, limit.clamp(1, MAX_PAGE)], |r| {
            let detail: String = r.get(5)?;
            Ok(AuditRecord {
                seq: r.get(0)?,
                at: ts(r.get(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                election: r.get(4)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                hash: r.get(6)?,
            })
        })
        .sql()?;
    rows.collect::<Result<_, _>>().sql()
}

/// Walks the chain in order: each entry's `prev_hash` must be the previous entry's hash,
/// and its own hash must match its content. Sequence numbers must not skip (AUTOINCREMENT
/// never reuses one, so a gap means a removed entry).
pub(crate) fn verify_audit(conn: &mut Connection) -> Result<AuditVerification, StoreError> {
    let tx = conn.transaction().sql()?;
    let mut stmt = tx
        .prepare("SELECT seq, at, actor, action, election_id, detail, prev_hash, hash FROM audit_log ORDER BY seq")
        .sql()?;
    let mut rows = stmt.query([]).sql()?;
    let (mut entries, mut prev, mut last_seq) = (0u64, String::new(), 0i64);
    let broken = |seq: i64, entries: u64, why: &str| AuditVerification {
        entries,
        broken_at: Some(seq),
        problem: Some(why.to_owned()),
    };
    while let Some(r) = rows.next().sql()? {
        let seq: i64 = r.get(0).sql()?;
        let (at, actor, action): (i64, String, String) = (r.get(1).sql()?, r.get(2).sql()?, r.get(3).sql()?);
        let (election, detail): (Option<String>, String) = (r.get(4).sql()?, r.get(5).sql()?);
        let (prev_hash, hash): (String, String) = (r.get(6).sql()?, r.get(7).sql()?);
        if seq != last_seq + 1 {
            return Ok(broken(seq, entries, &format!("entries {} to {} are missing", last_seq + 1, seq - 1)));
        }
        if prev_hash != prev {
            return Ok(broken(seq, entries, "does not link to the entry before it"));
        }
        if audit_hash(&prev, at, &actor, &action, election.as_deref().unwrap_or(""), &detail) != hash {
            return Ok(broken(seq, entries, "its content does not match its hash (edited)"));
        }
        entries += 1;
        prev = hash;
        last_seq = seq;
    }
    // A removed tail leaves a gap against the highest sequence ever handed out.
    let highest: Option<i64> =
        tx.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'", [], |r| r.get(0)).optional().sql()?;
    if let Some(highest) = highest
        && highest > last_seq
    {
        return Ok(broken(last_seq + 1, entries, &format!("entries {} to {highest} are missing", last_seq + 1)));
    }
    Ok(AuditVerification { entries, broken_at: None, problem: None })
}
