//! Sign-outs in MongoDB (see `crate::sign_outs`): `sign_outs` `{_id: uid, at_ms}`, one
//! document per account, indexed by `at_ms` for the services' reads every 250 ms.

use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};

use super::MongoStore;
use super::decode::{self, int};
use crate::domain::Username;
use crate::store::StoreError;

impl MongoStore {
    pub async fn record_sign_out(&self, account: &Username, at: jiff::Timestamp) -> Result<(), StoreError> {
        let update = doc! { "$max": { "at_ms": at.as_millisecond() } };
        self.timed(self.coll::<Document>("sign_outs").update_one(doc! { "_id": account.as_str() }, update).upsert(true))
            .await
            .map(|_| ())
    }

    pub async fn sign_outs_since(
        &self,
        since: jiff::Timestamp,
        limit: u32,
    ) -> Result<Vec<(Username, jiff::Timestamp)>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("sign_outs")
                    .find(doc! { "at_ms": { "$gte": since.as_millisecond() } })
                    .sort(doc! { "at_ms": 1 })
                    .limit(i64::from(limit)),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let uid = Username::parse(d.get_str("_id").map_err(decode::bad)?).map_err(decode::bad)?;
                Ok((uid, decode::ts_ms(int(d, "at_ms")?)))
            })
            .collect()
    }

    pub async fn purge_sign_outs(&self, before: jiff::Timestamp) -> Result<u64, StoreError> {
        let old = doc! { "at_ms": { "$lt": before.as_millisecond() } };
        Ok(self.timed(self.coll::<Document>("sign_outs").delete_many(old)).await?.deleted_count)
    }
}
