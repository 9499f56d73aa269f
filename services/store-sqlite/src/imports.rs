//! Roll imports on SQLite: `roll_imports` (progress and lease) and `roll_import_errors`.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_domain::ElectionId;
use turnout_store::rules::ts;
use turnout_store::{
    AuditEntry, ImportChunk, ImportJob, ImportLease, ImportState, Imports, MAX_IMPORT_ERRORS, MAX_PAGE, RowError,
    StoreError, StoreKeys,
};

use crate::SqliteStore;
use crate::audit::append_audit_in;
use crate::error::{SqlResult, parsed};
use crate::roll::upsert_roll;

#[async_trait]
impl Imports for SqliteStore {
    async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (job, lease, audit) = (job.clone(), lease.clone(), audit.clone());
        let keys = self.keys.clone();
        self.run(move |conn| create_import(conn, &keys, &job, &lease, &audit, now)).await
    }

    async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError> {
        let (job, lease) = (job.to_owned(), lease.clone());
        self.run(move |conn| claim_import(conn, &job, &lease, now)).await
    }

    async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, lease, chunk) = (job.to_owned(), lease.clone(), chunk.clone());
        self.run(move |conn| import_chunk(conn, &job, &lease, &chunk, now)).await
    }

    async fn finish_import(
        &self,
        job: &str,
        owner: &str,
        state: ImportState,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, owner, message) = (job.to_owned(), owner.to_owned(), message.map(str::to_owned));
        let keys = self.keys.clone();
        self.run(move |conn| finish_import(conn, &keys, &job, &owner, state, message.as_deref(), now)).await
    }

    async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError> {
        let job = job.to_owned();
        self.run(move |conn| import_job(conn, &job)).await
    }

    async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError> {
        let job = job.to_owned();
        self.run(move |conn| import_errors(conn, &job, after_line, limit)).await
    }

    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        self.run(running_imports).await
    }
}

const JOB_COLUMNS: &str = "id, election_id, actor, file_name, state, rows_total, rows_done, added, updated,
     unchanged, rejected, message, created_at, updated_at";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImportJob> {
    let state: String = r.get(4)?;
    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    Ok(ImportJob {
        id: r.get(0)?,
        election: parsed(1, r.get(1)?, ElectionId::parse)?,
        actor: r.get(2)?,
        file_name: r.get(3)?,
        state: ImportState::parse(&state).unwrap_or(ImportState::Failed),
        rows_total: n(5)?,
        rows_done: n(6)?,
        added: n(7)?,
        updated: n(8)?,
        unchanged: n(9)?,
        rejected: n(10)?,
        message: r.get(11)?,
        created_at: ts(r.get(12)?),
        updated_at: ts(r.get(13)?),
    })
}

fn job_in(conn: &Connection, id: &str) -> rusqlite::Result<Option<ImportJob>> {
    conn.query_row(&format!("SELECT {JOB_COLUMNS} FROM roll_imports WHERE id = ?1"), [id], job_row).optional()
}

pub(crate) fn create_import(
    conn: &mut Connection,
    keys: &StoreKeys,
    job: &ImportJob,
    lease: &ImportLease,
    audit: &AuditEntry,
    now: Timestamp,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    tx.execute(
        "INSERT INTO roll_imports
             (id, election_id, actor, file_name, state, rows_total, created_at, updated_at, owner, lease_until)
         VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?6, ?7, ?8)",
        params![
            job.id,
            job.election.as_str(),
            job.actor,
            job.file_name,
            job.rows_total as i64,
            now.as_second(),
            lease.owner,
            lease.until.as_second()
        ],
    )
    .sql()?;
    append_audit_in(&tx, keys, audit, now)?;
    tx.commit().sql()?;
    Ok(())
}

pub(crate) fn claim_import(
    conn: &mut Connection,
    job: &str,
    lease: &ImportLease,
    now: Timestamp,
) -> Result<Option<ImportJob>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    let taken = tx
        .execute(
            "UPDATE roll_imports SET owner = ?2, lease_until = ?3
         WHERE id = ?1 AND state = 'running' AND (lease_until IS NULL OR lease_until < ?4)",
            params![job, lease.owner, lease.until.as_second(), now.as_second()],
        )
        .sql()?;
    let claimed = if taken == 1 { job_in(&tx, job).sql()? } else { None };
    tx.commit().sql()?;
    Ok(claimed)
}

/// Refuses (as a conflict) a write by a run that does not hold the import.
fn check_owner(tx: &rusqlite::Transaction<'_>, job: &str, owner: &str) -> Result<(), StoreError> {
    let holder: Option<Option<String>> =
        tx.query_row("SELECT owner FROM roll_imports WHERE id = ?1", [job], |r| r.get(0)).optional().sql()?;
    match holder {
        None => Err(StoreError::Conflict(format!("no import {job}"))),
        Some(h) if h.as_deref() == Some(owner) => Ok(()),
        Some(_) => Err(StoreError::Conflict(format!("import {job} was taken over by another process"))),
    }
}

pub(crate) fn import_chunk(
    conn: &mut Connection,
    job: &str,
    lease: &ImportLease,
    chunk: &ImportChunk,
    now: Timestamp,
) -> Result<ImportJob, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    check_owner(&tx, job, &lease.owner)?;
    let current = job_in(&tx, job).sql()?.ok_or_else(|| StoreError::Conflict(format!("no import {job}")))?;
    if current.state != ImportState::Running {
        return Err(StoreError::Conflict(format!("import {job} is {}", current.state.as_str())));
    }
    let stats = upsert_roll(&tx, &current.election, &chunk.entries)?;
    {
        let mut insert = tx
            .prepare(
                "INSERT OR IGNORE INTO roll_import_errors (import_id, line, reason)
             SELECT ?1, ?2, ?3 WHERE (SELECT COUNT(*) FROM roll_import_errors WHERE import_id = ?1) < ?4",
            )
            .sql()?;
        for e in &chunk.errors {
            insert.execute(params![job, e.line as i64, e.reason, MAX_IMPORT_ERRORS as i64]).sql()?;
        }
    }
    tx.execute(
        "UPDATE roll_imports SET rows_done = rows_done + ?2, added = added + ?3, updated = updated + ?4,
                unchanged = unchanged + ?5, rejected = rejected + ?6, updated_at = ?7, lease_until = ?8
         WHERE id = ?1",
        params![
            job,
            chunk.rows as i64,
            stats.added as i64,
            stats.updated as i64,
            stats.unchanged as i64,
            chunk.errors.len() as i64,
            now.as_second(),
            lease.until.as_second()
        ],
    )
    .sql()?;
    let updated = job_in(&tx, job).sql()?.expect("the job row was just read");
    tx.commit().sql()?;
    Ok(updated)
}

pub(crate) fn finish_import(
    conn: &mut Connection,
    keys: &StoreKeys,
    job: &str,
    owner: &str,
    state: ImportState,
    message: Option<&str>,
    now: Timestamp,
) -> Result<ImportJob, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    check_owner(&tx, job, owner)?;
    tx.execute(
        "UPDATE roll_imports SET state = ?2, message = ?3, updated_at = ?4, lease_until = NULL WHERE id = ?1",
        params![job, state.as_str(), message, now.as_second()],
    )
    .sql()?;
    let done = job_in(&tx, job).sql()?.ok_or_else(|| StoreError::Conflict(format!("no import {job}")))?;
    let audit = AuditEntry {
        actor: done.actor.clone(),
        action: "roll_import_finished".into(),
        election: Some(done.election.clone()),
        detail: serde_json::json!({
            "import": done.id, "state": state.as_str(), "rows": done.rows_done, "added": done.added,
            "updated": done.updated, "unchanged": done.unchanged, "rejected": done.rejected, "message": message,
        }),
    };
    append_audit_in(&tx, keys, &audit, now)?;
    tx.commit().sql()?;
    Ok(done)
}

pub(crate) fn import_job(conn: &mut Connection, job: &str) -> Result<Option<ImportJob>, StoreError> {
    job_in(conn, job).sql()
}

pub(crate) fn import_errors(
    conn: &mut Connection,
    job: &str,
    after_line: u64,
    limit: u32,
) -> Result<Vec<RowError>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT line, reason FROM roll_import_errors WHERE import_id = ?1 AND line > ?2 ORDER BY line LIMIT ?3",
        )
        .sql()?;
    let rows = stmt
        .query_map(params![job, after_line as i64, limit.clamp(1, MAX_PAGE)], |r| {
            Ok(RowError { line: r.get::<_, i64>(0)?.max(0) as u64, reason: r.get(1)? })
        })
        .sql()?;
    rows.collect::<Result<_, _>>().sql()
}

pub(crate) fn running_imports(conn: &mut Connection) -> Result<Vec<ImportJob>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {JOB_COLUMNS} FROM roll_imports WHERE state = 'running' ORDER BY created_at"))
        .sql()?;
    let rows = stmt.query_map([], job_row).sql()?;
    rows.collect::<Result<_, _>>().sql()
}
