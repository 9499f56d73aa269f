//! Roll imports in MongoDB: `roll_imports` (one document per job: its progress, and the
//! run holding it, `owner` until `lease_until`) and `roll_import_errors` `{_id: {j, l},
//! reason}`. Each chunk lands in one transaction with its progress and the lease's
//! renewal, so an import resumes where the last committed chunk ended.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Bson, Document, doc};
use turnout_domain::ElectionId;
use turnout_store::{
    AuditEntry, ImportChunk, ImportJob, ImportLease, ImportState, Imports, MAX_IMPORT_ERRORS, MAX_PAGE, RowError,
    StoreError,
};

use crate::MongoStore;
use crate::audit::append_audit_in;
use crate::decode::{self, bad, int};
use crate::roll::upsert_roll_in;

/// Refuses (as a conflict) a write by a run that does not hold the import.
fn held_by(current: &Document, job: &str, owner: &str) -> Result<(), StoreError> {
    if current.get_str("owner").ok() == Some(owner) {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("import {job} was taken over by another process")))
    }
}

fn job_from(d: &Document) -> Result<ImportJob, StoreError> {
    let n = |k: &str| int(d, k).map(|v| v.max(0) as u64);
    Ok(ImportJob {
        id: d.get_str("_id").map_err(bad)?.to_owned(),
        election: ElectionId::parse(d.get_str("e").map_err(bad)?).map_err(bad)?,
        actor: d.get_str("actor").map_err(bad)?.to_owned(),
        file_name: d.get_str("file_name").map_err(bad)?.to_owned(),
        state: ImportState::parse(d.get_str("state").map_err(bad)?).unwrap_or(ImportState::Failed),
        rows_total: n("rows_total")?,
        rows_done: n("rows_done")?,
        added: n("added")?,
        updated: n("updated")?,
        unchanged: n("unchanged")?,
        rejected: n("rejected")?,
        message: d.get_str("message").ok().map(str::to_owned),
        created_at: decode::ts(int(d, "created_at")?),
        updated_at: decode::ts(int(d, "updated_at")?),
    })
}

#[async_trait]
impl Imports for MongoStore {
    async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (job, lease, audit) = (job.clone(), lease.clone(), audit.clone());
        self.in_transaction(|store, session| {
            let (job, lease, audit) = (job.clone(), lease.clone(), audit.clone());
            Box::pin(async move {
                store
                    .coll::<Document>("roll_imports")
                    .insert_one(doc! {
                        "_id": &job.id, "e": job.election.as_str(), "actor": &job.actor, "file_name": &job.file_name,
                        "state": "running", "rows_total": job.rows_total as i64, "rows_done": 0_i64, "added": 0_i64,
                        "updated": 0_i64, "unchanged": 0_i64, "rejected": 0_i64, "message": Bson::Null,
                        "errors": 0_i64, "created_at": now.as_second(), "updated_at": now.as_second(),
                        "owner": &lease.owner, "lease_until": lease.until.as_second(),
                    })
                    .session(&mut *session)
                    .await?;
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok::<(), StoreError>(()))
            })
        })
        .await?
    }

    /// Takes over a running import whose lease has passed (or that has none).
    async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError> {
        let claimed = self
            .timed(
                self.coll::<Document>("roll_imports")
                    .find_one_and_update(
                        doc! {
                            "_id": job, "state": "running",
                            "$or": [{ "lease_until": Bson::Null }, { "lease_until": { "$lt": now.as_second() } }],
                        },
                        doc! { "$set": { "owner": &lease.owner, "lease_until": lease.until.as_second() } },
                    )
                    .return_document(mongodb::options::ReturnDocument::After),
            )
            .await?;
        claimed.map(|d| job_from(&d)).transpose()
    }

    /// One chunk (entries, row errors, progress) in one transaction, by the lease holder.
    async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, lease, chunk) = (job.to_owned(), lease.clone(), chunk.clone());
        self.in_transaction(|store, session| {
            let (job, lease, chunk) = (job.clone(), lease.clone(), chunk.clone());
            Box::pin(async move {
                let imports = store.coll::<Document>("roll_imports");
                let Some(current) = imports.find_one(doc! { "_id": &job }).session(&mut *session).await? else {
                    return Ok(Err(StoreError::Conflict(format!("no import {job}"))));
                };
                if let Err(e) = held_by(&current, &job, &lease.owner) {
                    return Ok(Err(e));
                }
                let current = match job_from(&current) {
                    Ok(j) => j,
                    Err(e) => return Ok(Err(e)),
                };
                if current.state != ImportState::Running {
                    return Ok(Err(StoreError::Conflict(format!("import {job} is {}", current.state.as_str()))));
                }
                let stats = upsert_roll_in(store, session, &current.election, &chunk.entries).await?;
                let kept = store
                    .coll::<Document>("roll_import_errors")
                    .count_documents(doc! { "_id.j": &job })
                    .session(&mut *session)
                    .await?;
                let room = MAX_IMPORT_ERRORS.saturating_sub(kept) as usize;
                for e in chunk.errors.iter().take(room) {
                    store
                        .coll::<Document>("roll_import_errors")
                        .update_one(
                            doc! { "_id": { "j": &job, "l": e.line as i64 } },
                            doc! { "$setOnInsert": { "reason": &e.reason } },
                        )
                        .upsert(true)
                        .session(&mut *session)
                        .await?;
                }
                let updated = imports
                    .find_one_and_update(
                        doc! { "_id": &job },
                        doc! {
                            "$inc": {
                                "rows_done": chunk.rows as i64, "added": stats.added as i64, "updated": stats.updated as i64,
                                "unchanged": stats.unchanged as i64, "rejected": chunk.errors.len() as i64,
                            },
                            "$set": { "updated_at": now.as_second(), "lease_until": lease.until.as_second() },
                        },
                    )
                    .return_document(mongodb::options::ReturnDocument::After)
                    .session(&mut *session)
                    .await?;
                Ok(updated.ok_or_else(|| StoreError::Conflict(format!("no import {job}"))).and_then(|d| job_from(&d)))
            })
        })
        .await?
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
        self.in_transaction(|store, session| {
            let (job, owner, message) = (job.clone(), owner.clone(), message.clone());
            Box::pin(async move {
                let imports = store.coll::<Document>("roll_imports");
                let Some(current) = imports.find_one(doc! { "_id": &job }).session(&mut *session).await? else {
                    return Ok(Err(StoreError::Conflict(format!("no import {job}"))));
                };
                if let Err(e) = held_by(&current, &job, &owner) {
                    return Ok(Err(e));
                }
                let done = imports
                    .find_one_and_update(
                        doc! { "_id": &job },
                        doc! { "$set": {
                            "state": state.as_str(), "message": message.as_deref(), "updated_at": now.as_second(),
                            "lease_until": Bson::Null,
                        } },
                    )
                    .return_document(mongodb::options::ReturnDocument::After)
                    .session(&mut *session)
                    .await?;
                let done = match done.map(|d| job_from(&d)) {
                    Some(Ok(j)) => j,
                    Some(Err(e)) => return Ok(Err(e)),
                    None => return Ok(Err(StoreError::Conflict(format!("no import {job}")))),
                };
                let audit = AuditEntry {
                    actor: done.actor.clone(),
                    action: "roll_import_finished".into(),
                    election: Some(done.election.clone()),
                    detail: serde_json::json!({
                        "import": done.id, "state": state.as_str(), "rows": done.rows_done, "added": done.added,
                        "updated": done.updated, "unchanged": done.unchanged, "rejected": done.rejected, "message": message,
                    }),
                };
                append_audit_in(store, session, &audit, now).await?;
                Ok(Ok(done))
            })
        })
        .await?
    }

    async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError> {
        let found = self.timed(self.coll::<Document>("roll_imports").find_one(doc! { "_id": job })).await?;
        found.map(|d| job_from(&d)).transpose()
    }

    async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("roll_import_errors")
                    .find(doc! { "_id.j": job, "_id.l": { "$gt": after_line as i64 } })
                    .sort(doc! { "_id.l": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                Ok(RowError {
                    line: int(d.get_document("_id").map_err(bad)?, "l")?.max(0) as u64,
                    reason: d.get_str("reason").map_err(bad)?.to_owned(),
                })
            })
            .collect()
    }

    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("roll_imports").find(doc! { "state": "running" }).sort(doc! { "created_at": 1 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found.iter().map(job_from).collect()
    }
}
