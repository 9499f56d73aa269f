//! The live dashboard's counts, each service's last report, and `ping`, in MongoDB.
//!
//! `activity` `{_id: {e, m, k}, n}`: counts per minute, bumped with `$inc` after the
//! change they count commits (one document per minute would make every concurrent
//! transaction conflict). A crash between the two loses one count on the dashboard, never
//! a vote or a code. `service_status` `{_id: service, ok, detail, at}`: one document per
//! service, replaced by each report.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Document, doc};
use turnout_domain::ElectionId;
use turnout_store::{ALL_ELECTIONS, Activity, ActivityCount, ActivityLog, ServiceStatus, StoreError};

use crate::MongoStore;
use crate::decode::{self, bad, int};

impl MongoStore {
    /// Adds `n` events of `kind` to their minute (outside any transaction, see above).
    pub(crate) async fn bump_activity(
        &self,
        election: &str,
        kind: Activity,
        n: u64,
        minute: i64,
    ) -> Result<(), StoreError> {
        self.timed(
            self.coll::<Document>("activity")
                .update_one(
                    doc! { "_id": { "e": election, "m": minute, "k": kind.as_str() } },
                    doc! { "$inc": { "n": n as i64 } },
                )
                .upsert(true),
        )
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl ActivityLog for MongoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed(self.db.run_command(doc! { "ping": 1 })).await.map(|_| ())
    }

    async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError> {
        for c in counts {
            self.bump_activity(&c.election, c.kind, c.n, c.minute).await?;
        }
        Ok(())
    }

    async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("activity")
                    .find(doc! { "_id.e": { "$in": [election.as_str(), ALL_ELECTIONS] }, "_id.m": { "$gte": since_minute } })
                    .sort(doc! { "_id.m": 1, "_id.k": 1 }),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let mut out = Vec::new();
        for d in found {
            let id = d.get_document("_id").map_err(bad)?;
            if let Some(kind) = Activity::parse(id.get_str("k").map_err(bad)?) {
                out.push(ActivityCount {
                    election: id.get_str("e").map_err(bad)?.to_owned(),
                    kind,
                    minute: int(id, "m")?,
                    n: int(&d, "n")?.max(0) as u64,
                });
            }
        }
        Ok(out)
    }

    async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.timed(
            self.coll::<Document>("service_status")
                .update_one(
                    doc! { "_id": service },
                    doc! { "$set": { "ok": ok, "detail": detail.to_string(), "at": now.as_second() } },
                )
                .upsert(true),
        )
        .await
        .map(|_| ())
    }

    async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError> {
        let cursor = self.timed(self.coll::<Document>("service_status").find(doc! {}).sort(doc! { "_id": 1 })).await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                Ok(ServiceStatus {
                    service: d.get_str("_id").map_err(bad)?.to_owned(),
                    ok: d.get_bool("ok").map_err(bad)?,
                    detail: serde_json::from_str(d.get_str("detail").unwrap_or("null"))
                        .unwrap_or(serde_json::Value::Null),
                    at: decode::ts(int(d, "at")?),
                })
            })
            .collect()
    }
}
