//! The audit chain in MongoDB: `audit` `{_id: seq, at, actor, action, e, detail,
//! prev_hash, hash}` and one `audit_head` `{_id: "head", seq, hash}`. An append reads the
//! head and moves it in the same transaction, so appends are serialized (two at once
//! conflict and one is run again) and sequence numbers never skip; `verify` compares the
//! last entry with the head, so a removed tail is found too.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};
use turnout_store::{Audit, AuditEntry, AuditRecord, AuditVerification, MAX_PAGE, StoreError, rules};

use crate::MongoStore;
use crate::decode::{self, bad, int};

/// Appends `entry` to the chain inside the caller's transaction.
pub(crate) async fn append_audit_in(
    store: &MongoStore,
    session: &mut ClientSession,
    entry: &AuditEntry,
    now: Timestamp,
) -> mongodb::error::Result<()> {
    let heads = store.coll::<Document>("audit_head");
    let head = heads.find_one(doc! { "_id": "head" }).session(&mut *session).await?;
    let (seq, prev) = match &head {
        Some(h) => (int(h, "seq").unwrap_or(0), h.get_str("hash").unwrap_or("").to_owned()),
        None => (0, String::new()),
    };
    let detail = entry.detail.to_string();
    let election = entry.election.as_ref().map(|e| e.as_str().to_owned());
    let hash = rules::audit_hash(
        &prev,
        now.as_second(),
        &entry.actor,
        &entry.action,
        election.as_deref().unwrap_or(""),
        &detail,
    );
    store
        .coll::<Document>("audit")
        .insert_one(doc! {
            "_id": seq + 1, "at": now.as_second(), "actor": &entry.actor, "action": &entry.action,
            "e": election, "detail": detail, "prev_hash": prev, "hash": &hash,
        })
        .session(&mut *session)
        .await?;
    heads
        .update_one(doc! { "_id": "head" }, doc! { "$set": { "seq": seq + 1, "hash": hash } })
        .upsert(true)
        .session(&mut *session)
        .await?;
    Ok(())
}

#[async_trait]
impl Audit for MongoStore {
    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.in_transaction(|store, session| {
            let entry = entry.clone();
            Box::pin(async move {
                append_audit_in(store, session, &entry, now).await?;
                Ok(Ok::<(), StoreError>(()))
            })
        })
        .await?
    }

    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("audit")
                    .find(doc! { "_id": { "$gt": after } })
                    .sort(doc! { "_id": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let detail = d.get_str("detail").map_err(bad)?;
                Ok(AuditRecord {
                    seq: int(d, "_id")?,
                    at: decode::ts(int(d, "at")?),
                    actor: d.get_str("actor").map_err(bad)?.to_owned(),
                    action: d.get_str("action").map_err(bad)?.to_owned(),
                    election: d.get_str("e").ok().map(str::to_owned),
                    detail: serde_json::from_str(detail).unwrap_or(serde_json::Value::String(detail.to_owned())),
                    hash: d.get_str("hash").map_err(bad)?.to_owned(),
                })
            })
            .collect()
    }

    /// Walks the whole chain in order (each link and each hash), then checks the last
    /// entry is the head's: an edit, an insertion or a removal anywhere is found.
    async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut cursor = self.timed(self.coll::<Document>("audit").find(doc! {}).sort(doc! { "_id": 1 })).await?;
        let (mut entries, mut prev, mut last_seq) = (0u64, String::new(), 0i64);
        let broken = |seq: i64, entries: u64, why: &str| AuditVerification {
            entries,
            broken_at: Some(seq),
            problem: Some(why.to_owned()),
        };
        while let Some(d) = self.timed(cursor.try_next()).await? {
            let seq = int(&d, "_id")?;
            let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(bad);
            let (actor, action, detail) = (text("actor")?, text("action")?, text("detail")?);
            let (prev_hash, hash) = (text("prev_hash")?, text("hash")?);
            let election = d.get_str("e").unwrap_or("").to_owned();
            if seq != last_seq + 1 {
                return Ok(broken(seq, entries, &format!("entries {} to {} are missing", last_seq + 1, seq - 1)));
            }
            if prev_hash != prev {
                return Ok(broken(seq, entries, "does not link to the entry before it"));
            }
            let at = int(&d, "at")?;
            if rules::audit_hash(&prev, at, &actor, &action, &election, &detail) != hash {
                return Ok(broken(seq, entries, "its content does not match its hash (edited)"));
            }
            entries += 1;
            prev = hash;
            last_seq = seq;
        }
        let head = self.timed(self.coll::<Document>("audit_head").find_one(doc! { "_id": "head" })).await?;
        let highest = head.as_ref().map(|h| int(h, "seq")).transpose()?.unwrap_or(0);
        if highest > last_seq {
            return Ok(broken(last_seq + 1, entries, &format!("entries {} to {highest} are missing", last_seq + 1)));
        }
        Ok(AuditVerification { entries, broken_at: None, problem: None })
    }
}
