//! Staff contacts in MongoDB: one document per account, `_id` the canonical username.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Document, doc};
use turnout_domain::{Username, VoterEmail};
use turnout_store::{MAX_STAFF_CONTACTS, StaffContact, StaffContacts, StoreError};

use crate::MongoStore;
use crate::decode::{self, bad, int};

const STAFF: &str = "staff_contacts";

#[async_trait]
impl StaffContacts for MongoStore {
    async fn record_staff_contact(&self, c: &StaffContact) -> Result<(), StoreError> {
        let coll = self.coll::<Document>(STAFF);
        let id = doc! { "_id": c.username.as_str() };
        if c.admin || c.officer {
            let set = doc! { "$set": {
                "email": c.email.as_str(), "admin": c.admin, "officer": c.officer, "seen_at": c.seen_at.as_second(),
            } };
            self.timed(coll.update_one(id, set).upsert(true)).await?;
        } else {
            self.timed(coll.delete_one(id)).await?;
        }
        Ok(())
    }

    async fn officer_contacts(&self, since: Timestamp) -> Result<Vec<StaffContact>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>(STAFF)
                    .find(doc! { "officer": true, "seen_at": { "$gte": since.as_second() } })
                    .sort(doc! { "seen_at": -1, "_id": 1 })
                    .limit(i64::from(MAX_STAFF_CONTACTS)),
            )
            .await?;
        let docs: Vec<Document> = self.timed(cursor.try_collect()).await?;
        docs.iter()
            .map(|d| {
                Ok(StaffContact {
                    username: Username::parse(d.get_str("_id").map_err(bad)?).map_err(bad)?,
                    email: VoterEmail::parse(d.get_str("email").map_err(bad)?).map_err(bad)?,
                    admin: d.get_bool("admin").map_err(bad)?,
                    officer: d.get_bool("officer").map_err(bad)?,
                    seen_at: decode::ts(int(d, "seen_at")?),
                })
            })
            .collect()
    }
}
