//! The mail outbox in MongoDB. A worker claims due messages one `find_one_and_update`
//! at a time: each claim sets `state: sending` with the worker's lease on exactly one
//! document, atomically, so two workers never hold the same message, and a lease that
//! runs out makes the message claimable again. Outcomes only land while the worker
//! still holds the lease.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use turnout_domain::{ElectionId, Username, VoterEmail};
use turnout_store::rules::{self, OutboxCut};
use turnout_store::{
    Activity, MAX_PAGE, MailOutcome, MailResult, Outbox, OutboxMail, OutboxPage, OutboxRow, OutboxSummary, StoreError,
};

use crate::MongoStore;
use crate::decode::{self, bad, int};

/// Each process numbers its outbox rows within a millisecond (console paging cursor).
static OUTBOX_SEQ: AtomicI64 = AtomicI64::new(0);

/// A cursor for the console's outbox list: newest highest.
pub(crate) fn outbox_seq(now_ms: i64) -> i64 {
    (now_ms << 12) | (OUTBOX_SEQ.fetch_add(1, Ordering::Relaxed) & 0xfff)
}

/// Due: queued or deferred and its time has come, or sending with an expired lease.
pub(crate) fn due(now_s: i64) -> Document {
    doc! { "$or": [
        { "state": { "$in": ["queued", "deferred"] }, "next_attempt_at": { "$lte": now_s } },
        { "state": "sending", "lease_until": { "$lte": now_s } },
    ] }
}

pub(crate) fn lease(worker: &str, until_s: i64, now_s: i64) -> Document {
    doc! { "$set": { "state": "sending", "lease_owner": worker, "lease_until": until_s, "updated_at": now_s } }
}

/// Still this worker's to settle.
pub(crate) fn held_by(id: &uuid::Uuid, worker: &str) -> Document {
    doc! { "_id": id.to_string(), "lease_owner": worker, "state": "sending" }
}

/// Not tried: back to the queue without counting an attempt (an update pipeline, so the
/// new state can depend on the attempts so far).
pub(crate) fn released(now_s: i64) -> Document {
    doc! { "$set": {
        "state": { "$cond": [{ "$eq": ["$attempts", 0] }, "queued", "deferred"] },
        "lease_owner": Bson::Null, "lease_until": Bson::Null, "updated_at": now_s,
    } }
}

/// What an outcome writes (`None`: released, handled apart).
fn settle(result: &MailResult, now_s: i64) -> Option<Document> {
    let (state, account, from, sent_at, error, retry_at) = match result {
        MailResult::Sent { account, from } => ("sent", account, Some(from), Some(now_s), None, None),
        MailResult::Deferred { account, error, retry_at } => {
            ("deferred", account, None, None, Some(error), Some(retry_at.as_second()))
        }
        MailResult::Failed { account, error } => ("failed", account, None, None, Some(error), None),
        MailResult::Released => return None,
    };
    let mut set = doc! {
        "state": state, "account": account.as_str(), "sent_at": sent_at, "last_error": error.map(String::as_str),
        "lease_owner": Bson::Null, "lease_until": Bson::Null, "updated_at": now_s,
    };
    if let Some(from) = from {
        set.insert("sender", from.as_str());
    }
    if let Some(at) = retry_at {
        set.insert("next_attempt_at", at);
    }
    Some(doc! { "$set": set, "$inc": { "attempts": 1_i64 } })
}

#[async_trait]
impl Outbox for MongoStore {
    async fn claim_mail(
        &self,
        worker: &str,
        limit: u32,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let now_s = now.as_second();
        let outbox = self.coll::<Document>("outbox");
        let mut claimed = Vec::new();
        for _ in 0..limit.clamp(1, 500) {
            let next = self
                .timed(
                    outbox
                        .find_one_and_update(due(now_s), lease(worker, now_s + lease_for.as_secs() as i64, now_s))
                        .sort(doc! { "next_attempt_at": 1 })
                        .return_document(ReturnDocument::After),
                )
                .await?;
            let Some(m) = next else { break };
            claimed.push(OutboxMail {
                id: uuid::Uuid::parse_str(m.get_str("_id").map_err(bad)?).map_err(bad)?,
                election: ElectionId::parse(m.get_str("e").map_err(bad)?).map_err(bad)?,
                voter: Username::parse(m.get_str("v").map_err(bad)?).map_err(bad)?,
                to: VoterEmail::parse(m.get_str("recipient").map_err(bad)?).map_err(bad)?,
                generation: int(&m, "generation")? as u32,
                issued_at: decode::ts(int(&m, "issued_at")?),
                attempts: int(&m, "attempts")? as u32,
                last_account: m.get_str("account").ok().map(str::to_owned),
                queued_at: decode::ts(int(&m, "created_at")?),
            });
        }
        Ok(claimed)
    }

    /// Records outcomes (ignoring messages whose lease was lost) in one transaction.
    async fn record_outcomes(&self, worker: &str, outcomes: &[MailOutcome], now: Timestamp) -> Result<(), StoreError> {
        let (worker, outcomes) = (worker.to_owned(), outcomes.to_vec());
        let counted = self
            .in_transaction(|store, session| {
                let (worker, outcomes) = (worker.clone(), outcomes.clone());
                Box::pin(async move {
                    Ok(Ok::<_, StoreError>(write_outcomes(store, session, &worker, &outcomes, now).await?))
                })
            })
            .await??;
        self.count_mail(&counted, now).await
    }

    /// Counts by state and the oldest waiting message from the database; the delivery
    /// percentiles from the last 10 minutes' sent mail, grouped by whole seconds in the database.
    async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError> {
        let outbox = self.coll::<Document>("outbox");
        let mut summary = OutboxSummary::default();
        let by_state = vec![
            doc! { "$match": { "e": election.as_str() } },
            doc! { "$group": { "_id": "$state", "n": { "$sum": 1 } } },
        ];
        let cursor = self.timed(outbox.aggregate(by_state)).await?;
        let rows: Vec<Document> = self.timed(cursor.try_collect()).await?;
        for row in rows {
            let n = int(&row, "n")?.max(0) as u64;
            match row.get_str("_id").unwrap_or("") {
                "queued" => summary.queued = n,
                "sending" => summary.sending = n,
                "deferred" => summary.deferred = n,
                "sent" => summary.sent = n,
                "failed" => summary.failed = n,
                _ => {}
            }
        }
        let oldest = self
            .timed(
                outbox
                    .find_one(doc! { "e": election.as_str(), "state": { "$in": ["queued", "sending", "deferred"] } })
                    .sort(doc! { "created_at": 1 })
                    .projection(doc! { "created_at": 1 }),
            )
            .await?;
        summary.oldest_waiting_secs =
            oldest.map(|d| int(&d, "created_at")).transpose()?.map(|at| (now.as_second() - at).max(0));
        let by_latency = vec![
            doc! { "$match": { "e": election.as_str(), "state": "sent", "sent_at": { "$gte": now.as_second() - 600 } } },
            doc! { "$group": { "_id": { "$subtract": ["$sent_at", "$created_at"] }, "n": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
        ];
        let cursor = self.timed(outbox.aggregate(by_latency)).await?;
        let rows: Vec<Document> = self.timed(cursor.try_collect()).await?;
        let histogram = rows
            .iter()
            .map(|r| Ok((int(r, "_id")?, int(r, "n")?.max(0) as u64)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        (summary.latency_p50_secs, summary.latency_p95_secs) = rules::delivery_percentiles(&histogram);
        Ok(summary)
    }

    async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut rows = self.outbox_rows(election, doc! { "$lt": before.unwrap_or(i64::MAX) }, limit + 1).await?;
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        // Two processes can number rows alike (see `outbox_seq`): never split them.
        match rules::cut_outbox_page(&seqs, limit as usize) {
            OutboxCut::Page { rows: n, next_before } => {
                rows.truncate(n);
                Ok(OutboxPage { rows, next_before })
            }
            OutboxCut::Group { seq } => {
                let rows = self.outbox_rows(election, Bson::Int64(seq), MAX_PAGE).await?;
                Ok(OutboxPage { rows, next_before: Some(seq) })
            }
        }
    }
}

impl MongoStore {
    /// Counts sent and failed mail on the dashboard, once their outcomes committed.
    pub(crate) async fn count_mail(&self, counted: &[(String, Activity)], now: Timestamp) -> Result<(), StoreError> {
        for (election, kind) in counted {
            self.bump_activity(election, *kind, 1, now.as_second().div_euclid(60)).await?;
        }
        Ok(())
    }

    /// Up to `take` rows whose `seq` matches `seq`, newest first.
    async fn outbox_rows(
        &self,
        election: &ElectionId,
        seq: impl Into<Bson>,
        take: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let cursor = self
            .timed(
                self.coll::<Document>("outbox")
                    .find(doc! { "e": election.as_str(), "seq": seq.into() })
                    .sort(doc! { "seq": -1 })
                    .limit(i64::from(take)),
            )
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                Ok(OutboxRow {
                    seq: int(d, "seq")?,
                    id: d.get_str("_id").map_err(bad)?.to_owned(),
                    voter: d.get_str("v").map_err(bad)?.to_owned(),
                    recipient: d.get_str("recipient").map_err(bad)?.to_owned(),
                    state: d.get_str("state").map_err(bad)?.to_owned(),
                    attempts: int(d, "attempts")? as u32,
                    account: d.get_str("account").ok().map(str::to_owned),
                    created_at: decode::ts(int(d, "created_at")?),
                    sent_at: int(d, "sent_at").ok().map(decode::ts),
                    last_error: d.get_str("last_error").ok().map(str::to_owned),
                })
            })
            .collect()
    }
}

/// Writes outcomes inside the caller's transaction; returns what to count on the
/// dashboard (sent or failed, per election) once it commits.
pub(crate) async fn write_outcomes(
    store: &MongoStore,
    session: &mut ClientSession,
    worker: &str,
    outcomes: &[MailOutcome],
    now: Timestamp,
) -> mongodb::error::Result<Vec<(String, Activity)>> {
    let outbox = store.coll::<Document>("outbox");
    let now_s = now.as_second();
    let mut counted = Vec::new();
    for o in outcomes {
        let filter = held_by(&o.id, worker);
        match settle(&o.result, now_s) {
            Some(update) => {
                let landed = outbox.find_one_and_update(filter, update).session(&mut *session).await?;
                let kind = match o.result {
                    MailResult::Sent { .. } => Some(Activity::CodeSent),
                    MailResult::Failed { .. } => Some(Activity::CodeFailed),
                    _ => None,
                };
                if let (Some(d), Some(kind)) = (landed, kind)
                    && let Ok(e) = d.get_str("e")
                {
                    counted.push((e.to_owned(), kind));
                }
            }
            None => {
                outbox.update_one(filter, vec![released(now_s)]).session(&mut *session).await?;
            }
        }
    }
    Ok(counted)
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;
    use turnout_store::MailResult;

    use super::{due, held_by, lease, settle};
    use crate::decode;

    #[test]
    fn a_claim_takes_due_or_abandoned_messages_and_leases_them() {
        assert_eq!(
            due(100),
            doc! { "$or": [
                { "state": { "$in": ["queued", "deferred"] }, "next_attempt_at": { "$lte": 100_i64 } },
                { "state": "sending", "lease_until": { "$lte": 100_i64 } },
            ] }
        );
        assert_eq!(
            lease("w1", 130, 100),
            doc! { "$set": { "state": "sending", "lease_owner": "w1", "lease_until": 130_i64, "updated_at": 100_i64 } }
        );
    }

    #[test]
    fn outcomes_land_only_under_the_lease_and_count_an_attempt() {
        let id = uuid::Uuid::nil();
        assert_eq!(held_by(&id, "w1"), doc! { "_id": id.to_string(), "lease_owner": "w1", "state": "sending" });
        let sent = settle(&MailResult::Sent { account: "a".into(), from: "a@x".into() }, 5).unwrap();
        assert_eq!(sent.get_document("$inc").unwrap(), &doc! { "attempts": 1_i64 });
        let set = sent.get_document("$set").unwrap();
        assert_eq!((set.get_str("state").unwrap(), set.get_str("sender").unwrap()), ("sent", "a@x"));
        let deferred =
            settle(&MailResult::Deferred { account: "a".into(), error: "421".into(), retry_at: decode::ts(50) }, 5)
                .unwrap();
        assert_eq!(deferred.get_document("$set").unwrap().get_i64("next_attempt_at").unwrap(), 50);
        assert!(settle(&MailResult::Released, 5).is_none());
    }
}
