//! The audit log on SQLite: `audit_log`, append-only, each row's keyed hash covering the
//! previous one; the walk and its verdict are the port's (`ChainWalk`).

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_store::rules::ts;
use turnout_store::{
    Audit, AuditEntry, AuditHead, AuditRecord, AuditVerification, ChainWalk, MAX_PAGE, StoreError, StoreKeys,
    StoredEntry,
};

use crate::SqliteStore;
use crate::error::SqlResult;

#[async_trait]
impl Audit for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError> {
        let (entry, keys) = (entry.clone(), self.keys.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            append_audit_in(&tx, &keys, &entry, now)?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.run(move |c| list_audit(c, after, limit)).await
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        self.read_here(|c| {
            c.prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .sql()?
                .query_row([], |r| Ok(AuditHead { seq: r.get(0)?, hash: r.get(1)? }))
                .optional()
                .sql()
        })
    }

    async fn verify_audit(&self, anchor: Option<&AuditHead>) -> Result<AuditVerification, StoreError> {
        let (keys, anchor) = (self.keys.clone(), anchor.cloned());
        self.run(move |c| verify_audit(c, &keys, anchor.as_ref())).await
    }
}

/// Appends to the hash-chained audit log inside the caller's transaction, so an audited
/// change and its audit line commit together.
pub(crate) fn append_audit_in(
    tx: &rusqlite::Transaction<'_>,
    keys: &StoreKeys,
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
    let hash = keys.audit_hash(
        &prev,
        now.as_second(),
        &entry.actor,
        &entry.action,
        election.as_deref().unwrap_or(""),
        &detail,
    );
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

/// Walks the chain in order (`ChainWalk`: no gap, each link, each keyed hash), then
/// checks nothing is missing after the last entry: neither against the highest sequence
/// number SQLite ever handed out (AUTOINCREMENT never reuses one) nor against `anchor`.
pub(crate) fn verify_audit(
    conn: &mut Connection,
    keys: &StoreKeys,
    anchor: Option<&AuditHead>,
) -> Result<AuditVerification, StoreError> {
    let tx = conn.transaction().sql()?;
    let mut walk = ChainWalk::new(keys, anchor);
    {
        let mut stmt = tx
            .prepare("SELECT seq, at, actor, action, election_id, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .sql()?;
        let mut rows = stmt.query([]).sql()?;
        while let Some(r) = rows.next().sql()? {
            let (actor, action): (String, String) = (r.get(2).sql()?, r.get(3).sql()?);
            let (election, detail): (Option<String>, String) = (r.get(4).sql()?, r.get(5).sql()?);
            let (prev_hash, hash): (String, String) = (r.get(6).sql()?, r.get(7).sql()?);
            let entry = StoredEntry {
                seq: r.get(0).sql()?,
                at: r.get(1).sql()?,
                actor: &actor,
                action: &action,
                election: election.as_deref().unwrap_or(""),
                detail: &detail,
                prev_hash: &prev_hash,
                hash: &hash,
            };
            if !walk.step(&entry) {
                break;
            }
        }
    }
    let highest: Option<i64> =
        tx.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'", [], |r| r.get(0)).optional().sql()?;
    Ok(walk.finish(highest.unwrap_or(0), anchor))
}
