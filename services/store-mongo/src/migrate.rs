//! One-time data migrations, run as a store opens and recorded in `migrations`
//! `{_id: name, at}` so each runs once (concurrent openers may both run one: each step is
//! idempotent).
//!
//! `fold-usernames-v1`: voters are canonical usernames (trimmed, ASCII lower case: see
//! `Username`). Documents keyed by another spelling are re-keyed under the folded one,
//! each in a transaction (insert the folded copy, delete the original). Where the folded
//! key already exists, the other spelling's document stays as it is: it was a second
//! ballot's participation or a duplicate roll row, so participation = ballots still holds.
//!
//! `seal-ballots-v1`: ballots cast before sealing (the old `ballots` collection, choices
//! in the clear) are sealed into `sealed_ballots`, each in a transaction with its removal
//! from `ballots`; then `ballots` is dropped. (The oplog of a replica set that took
//! plaintext ballots keeps them until it rolls over: docs/operations.md says how to make
//! sure it has.)
//!
//! `keyed-audit-chain-v1`: audit entries hashed before the key existed are re-hashed with
//! it in one transaction, after checking their unkeyed chain (`rekey_chain`); the verdict
//! is the upgrade's own audit entry.

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use turnout_store::{KEYED_AUDIT_UPGRADE, StoreError, StoredEntry, chain_keyed_entry, rekey_chain};

use crate::audit::append_audit_in;
use crate::decode::{self, bad, int};
use crate::{MongoStore, docs, errors};

const FOLD_USERNAMES: &str = "fold-usernames-v1";
const SEAL_BALLOTS: &str = "seal-ballots-v1";
/// Matches a name with a capital letter or surrounding blanks.
const NOT_CANONICAL: &str = "[A-Z]|^\\s|\\s$";

fn folded(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

impl MongoStore {
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let done = self.coll::<Document>("migrations");
        if self.timed(done.find_one(doc! { "_id": FOLD_USERNAMES })).await?.is_none() {
            self.fold_usernames().await?;
        }
        if self.timed(done.find_one(doc! { "_id": SEAL_BALLOTS })).await?.is_none() {
            self.seal_ballots().await?;
        }
        if self.timed(done.find_one(doc! { "_id": KEYED_AUDIT_UPGRADE })).await?.is_none() {
            self.key_audit_chain().await?;
        }
        Ok(())
    }

    /// Records a migration as done (a second recorder, running at once, is fine).
    async fn mark_done(&self, name: &str, detail: Document) -> Result<(), StoreError> {
        let mut record = doc! { "_id": name, "at": jiff::Timestamp::now().as_second() };
        record.extend(detail);
        match self.timed(self.coll::<Document>("migrations").insert_one(record)).await {
            Err(StoreError::Conflict(_)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn seal_ballots(&self) -> Result<(), StoreError> {
        let old = self.coll::<Document>("ballots");
        let found: Vec<Document> = self.timed(self.timed(old.find(doc! {})).await?.try_collect()).await?;
        let mut sealed = 0i64;
        for d in found {
            let (election, receipt, choices) = decode::plaintext_ballot(&d)?;
            let doc = docs::ballot(&election, &receipt, self.keys.seal(&election, &receipt, &choices));
            let old_id = d.get("_id").cloned().ok_or_else(|| bad("a ballot has no _id"))?;
            self.in_transaction(|store, session| {
                let (doc, old_id) = (doc.clone(), old_id.clone());
                Box::pin(async move {
                    let sealed_box = store.coll::<Document>(docs::SEALED_BALLOTS);
                    match sealed_box.insert_one(doc).session(&mut *session).await {
                        Err(e) if errors::is_duplicate_key(&e) => {} // sealed by another opener
                        other => {
                            other?;
                        }
                    }
                    store.coll::<Document>("ballots").delete_one(doc! { "_id": old_id }).session(&mut *session).await?;
                    Ok(Ok::<(), StoreError>(()))
                })
            })
            .await??;
            sealed += 1;
        }
        self.timed(old.drop()).await?;
        if sealed > 0 {
            tracing::info!(event = "ballots_sealed", ballots = sealed);
        }
        self.mark_done(SEAL_BALLOTS, doc! { "ballots": sealed }).await
    }

    async fn key_audit_chain(&self) -> Result<(), StoreError> {
        let outcome = self
            .in_transaction(|store, session| {
                Box::pin(async move {
                    let marker = store
                        .coll::<Document>("migrations")
                        .find_one(doc! { "_id": KEYED_AUDIT_UPGRADE })
                        .session(&mut *session)
                        .await?;
                    if marker.is_some() {
                        return Ok(Ok(None));
                    }
                    let mut cursor = store
                        .coll::<Document>("audit")
                        .find(doc! {})
                        .sort(doc! { "_id": 1 })
                        .session(&mut *session)
                        .await?;
                    let mut found = Vec::new();
                    while let Some(d) = cursor.next(&mut *session).await.transpose()? {
                        found.push(d);
                    }
                    let entries: Result<Vec<StoredEntry<'_>>, StoreError> = found
                        .iter()
                        .map(|d| {
                            Ok(StoredEntry {
                                seq: int(d, "_id")?,
                                at: int(d, "at")?,
                                actor: d.get_str("actor").map_err(bad)?,
                                action: d.get_str("action").map_err(bad)?,
                                election: d.get_str("e").unwrap_or(""),
                                detail: d.get_str("detail").map_err(bad)?,
                                prev_hash: d.get_str("prev_hash").map_err(bad)?,
                                hash: d.get_str("hash").map_err(bad)?,
                            })
                        })
                        .collect();
                    let entries = match entries {
                        Ok(e) => e,
                        Err(e) => return Ok(Err(e)),
                    };
                    let (rewritten, problem) = rekey_chain(&store.keys, &entries);
                    for (seq, prev_hash, hash) in &rewritten {
                        store
                            .coll::<Document>("audit")
                            .update_one(doc! { "_id": seq }, doc! { "$set": { "prev_hash": prev_hash, "hash": hash } })
                            .session(&mut *session)
                            .await?;
                    }
                    if let Some((seq, _, hash)) = rewritten.last() {
                        store
                            .coll::<Document>("audit_head")
                            .update_one(doc! { "_id": "head" }, doc! { "$set": { "seq": seq, "hash": hash } })
                            .upsert(true)
                            .session(&mut *session)
                            .await?;
                    }
                    let finding = problem.clone().unwrap_or_else(|| "intact".to_owned());
                    if !rewritten.is_empty() {
                        let entry = chain_keyed_entry(rewritten.len(), &finding);
                        append_audit_in(store, session, &entry, jiff::Timestamp::now()).await?;
                    }
                    let record = doc! {
                        "_id": KEYED_AUDIT_UPGRADE, "at": jiff::Timestamp::now().as_second(),
                        "entries": rewritten.len() as i64, "unkeyed_chain": &finding,
                    };
                    match store.coll::<Document>("migrations").insert_one(record).session(&mut *session).await {
                        Err(e) if errors::is_duplicate_key(&e) => return Ok(Ok(None)),
                        other => other?,
                    };
                    Ok(Ok(Some((rewritten.len(), problem))))
                })
            })
            .await??;
        match outcome {
            Some((_, Some(problem))) => tracing::warn!(event = "audit_chain_keyed_over_a_break", problem),
            Some((n, None)) if n > 0 => tracing::info!(event = "audit_chain_keyed", entries = n),
            _ => {}
        }
        Ok(())
    }

    async fn fold_usernames(&self) -> Result<(), StoreError> {
        let done = self.coll::<Document>("migrations");
        let mut kept = 0;
        for (collection, field) in [("participation", "v"), ("voter_roll", "u"), ("otp_codes", "v")] {
            kept += self.fold_keys(collection, field).await?;
        }
        // The outbox keeps the voter in a plain field: folded in place.
        let outbox = self.coll::<Document>("outbox");
        let cursor = self.timed(outbox.find(doc! { "v": { "$regex": NOT_CANONICAL } })).await?;
        let mail: Vec<Document> = self.timed(cursor.try_collect()).await?;
        for m in mail {
            let (Some(id), Ok(v)) = (m.get("_id"), m.get_str("v")) else { continue };
            self.timed(outbox.update_one(doc! { "_id": id.clone() }, doc! { "$set": { "v": folded(v) } })).await?;
        }
        if kept > 0 {
            tracing::warn!(event = "usernames_folded_with_duplicates", kept);
        }
        let at = jiff::Timestamp::now().as_second();
        match self
            .timed(done.insert_one(doc! { "_id": FOLD_USERNAMES, "at": at, "duplicates_kept": kept as i64 }))
            .await
        {
            Err(StoreError::Conflict(_)) | Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Re-keys the documents of `collection` whose `_id.{field}` is not canonical;
    /// returns how many stayed because the folded key exists.
    async fn fold_keys(&self, collection: &str, field: &str) -> Result<u64, StoreError> {
        let coll = self.coll::<Document>(collection);
        let path = format!("_id.{field}");
        let cursor = self.timed(coll.find(doc! { path: { "$regex": NOT_CANONICAL } })).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut kept = 0;
        for original in found {
            let Ok(id) = original.get_document("_id") else { continue };
            let Ok(name) = id.get_str(field) else { continue };
            let mut new_id = id.clone();
            new_id.insert(field, folded(name));
            let mut copy = original.clone();
            copy.insert("_id", Bson::Document(new_id));
            let old_id = Bson::Document(id.clone());
            let moved = self
                .in_transaction(|store, session| {
                    let (copy, old_id) = (copy.clone(), old_id.clone());
                    let coll = store.coll::<Document>(collection);
                    Box::pin(async move {
                        match coll.insert_one(copy).session(&mut *session).await {
                            Err(e) if errors::is_duplicate_key(&e) => return Ok(Err(())),
                            other => other?,
                        };
                        coll.delete_one(doc! { "_id": old_id }).session(&mut *session).await?;
                        Ok(Ok(()))
                    })
                })
                .await?;
            if moved.is_err() {
                kept += 1;
            }
        }
        Ok(kept)
    }
}
