//! The audit chain in MongoDB: `audit` `{_id: seq, at, actor, action, e, detail,
//! prev_hash, hash}` (the hash keyed: `StoreKeys::audit_hash`) and one `audit_head`
//! `{_id: "head", seq, hash}`. An append reads the head and moves it in the same
//! transaction, so appends are serialized (two at once conflict and one is run again) and
//! sequence numbers never skip; `verify` (the port's `ChainWalk`) compares the last entry
//! with the head and with an anchored head, so a removed tail is found too.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};
use turnout_store::{
    Audit, AuditEntry, AuditHead, AuditRecord, AuditVerification, ChainWalk, MAX_PAGE, StoreError, StoredEntry,
};

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
    let hash = store.keys.audit_hash(
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

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        let last = self
            .timed(
                self.coll::<Document>("audit")
                    .find_one(doc! {})
                    .sort(doc! { "_id": -1 })
                    .projection(doc! { "hash": 1 }),
            )
            .await?;
        last.map(|d| Ok(AuditHead { seq: int(&d, "_id")?, hash: d.get_str("hash").map_err(bad)?.to_owned() }))
            .transpose()
    }

    /// Walks the whole chain in order (each link and each keyed hash), then checks the
    /// last entry is the head's and reaches `anchor`: an edit, an insertion or a removal
    /// anywhere is found.
    async fn verify_audit(&self, anchor: Option<&AuditHead>) -> Result<AuditVerification, StoreError> {
        let mut cursor = self.timed(self.coll::<Document>("audit").find(doc! {}).sort(doc! { "_id": 1 })).await?;
        let mut walk = ChainWalk::new(&self.keys, anchor);
        while let Some(d) = self.timed(cursor.try_next()).await? {
            let text = |k: &str| d.get_str(k).map_err(bad);
            let entry = StoredEntry {
                seq: int(&d, "_id")?,
                at: int(&d, "at")?,
                actor: text("actor")?,
                action: text("action")?,
                election: d.get_str("e").unwrap_or(""),
                detail: text("detail")?,
                prev_hash: text("prev_hash")?,
                hash: text("hash")?,
            };
            if !walk.step(&entry) {
                break;
            }
        }
        let head = self.timed(self.coll::<Document>("audit_head").find_one(doc! { "_id": "head" })).await?;
        let highest = head.as_ref().map(|h| int(h, "seq")).transpose()?.unwrap_or(0);
        Ok(walk.finish(highest, anchor))
    }
}
