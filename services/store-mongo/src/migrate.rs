//! One-time data migrations, run as a store opens and recorded in `migrations`
//! `{_id: name, at}` so each runs once (concurrent openers may both run one: each step is
//! idempotent).
//!
//! `fold-usernames-v1`: voters are canonical usernames (trimmed, ASCII lower case: see
//! `Username`). Documents keyed by another spelling are re-keyed under the folded one,
//! each in a transaction (insert the folded copy, delete the original). Where the folded
//! key already exists, the other spelling's document stays as it is: it was a second
//! ballot's participation or a duplicate roll row, so participation = ballots still holds.

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use turnout_store::StoreError;

use crate::{MongoStore, errors};

const FOLD_USERNAMES: &str = "fold-usernames-v1";
/// Matches a name with a capital letter or surrounding blanks.
const NOT_CANONICAL: &str = "[A-Z]|^\\s|\\s$";

fn folded(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

impl MongoStore {
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let done = self.coll::<Document>("migrations");
        if self.timed(done.find_one(doc! { "_id": FOLD_USERNAMES })).await?.is_some() {
            return Ok(());
        }
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
