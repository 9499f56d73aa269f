//! Notices in MongoDB: `_id` is `{k: key, r: recipient}`, so a notice is queued once
//! however many processes queue it; claims and outcomes work as in the outbox, by the
//! notice's own `id`.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use turnout_domain::VoterEmail;
use turnout_store::{
    MAX_PAGE, MailOutcome, MailResult, MailState, NOTICE_ATTEMPTS, Notice, NoticeMail, NoticeRow, Notices, StoreError,
    check_notice,
};

use crate::MongoStore;
use crate::decode::{self, bad, int};
use crate::outbox::{due, lease};

const NOTICES: &str = "notices";

fn held_by(id: &uuid::Uuid, worker: &str) -> Document {
    doc! { "id": id.to_string(), "lease_owner": worker, "state": "sending" }
}

/// What an outcome writes, as an update pipeline (a deferral past the last attempt is a
/// failure); `None`: released.
fn settle(result: &MailResult, now_s: i64) -> Option<Vec<Document>> {
    let (state, account, sent_at, error, retry_at): (Bson, _, _, _, _) = match result {
        MailResult::Sent { account, .. } => ("sent".into(), account, Some(now_s), None, None),
        MailResult::Deferred { account, error, retry_at } => (
            doc! { "$cond": [{ "$gte": [{ "$add": ["$attempts", 1] }, i64::from(NOTICE_ATTEMPTS)] }, "failed", "deferred"] }
                .into(),
            account,
            None,
            Some(error),
            Some(retry_at.as_second()),
        ),
        MailResult::Failed { account, error } => ("failed".into(), account, None, Some(error), None),
        MailResult::Released => return None,
    };
    let mut set = doc! {
        "state": state, "account": account.as_str(), "sent_at": sent_at, "last_error": error.map(String::as_str),
        "lease_owner": Bson::Null, "lease_until": Bson::Null, "attempts": { "$add": ["$attempts", 1_i64] },
    };
    if let Some(at) = retry_at {
        set.insert("next_attempt_at", at);
    }
    Some(vec![doc! { "$set": set }])
}

fn released() -> Document {
    doc! { "$set": {
        "state": { "$cond": [{ "$eq": ["$attempts", 0] }, "queued", "deferred"] },
        "lease_owner": Bson::Null, "lease_until": Bson::Null,
    } }
}

fn mail(d: &Document) -> Result<NoticeMail, StoreError> {
    let key = d.get_document("_id").map_err(bad)?;
    Ok(NoticeMail {
        id: uuid::Uuid::parse_str(d.get_str("id").map_err(bad)?).map_err(bad)?,
        key: key.get_str("k").map_err(bad)?.to_owned(),
        to: VoterEmail::parse(key.get_str("r").map_err(bad)?).map_err(bad)?,
        subject: d.get_str("subject").map_err(bad)?.to_owned(),
        body: d.get_str("body").map_err(bad)?.to_owned(),
        attempts: int(d, "attempts")? as u32,
        last_account: d.get_str("account").ok().map(str::to_owned),
        queued_at: decode::ts(int(d, "created_at")?),
    })
}

#[async_trait]
impl Notices for MongoStore {
    async fn queue_notices(&self, notices: &[Notice], now: Timestamp) -> Result<u32, StoreError> {
        for n in notices {
            check_notice(n).map_err(|e| StoreError::Other(e.into()))?;
        }
        let notices = notices.to_vec();
        self.in_transaction(|store, session| {
            let notices = notices.clone();
            Box::pin(async move {
                let coll = store.coll::<Document>(NOTICES);
                let mut added = 0;
                for n in &notices {
                    let insert = doc! { "$setOnInsert": {
                        "id": uuid::Uuid::new_v4().to_string(), "subject": &n.subject, "body": &n.body,
                        "state": "queued", "attempts": 0_i64, "next_attempt_at": now.as_second(),
                        "created_at": now.as_second(),
                    } };
                    let done = coll
                        .update_one(doc! { "_id": { "k": &n.key, "r": n.to.as_str() } }, insert)
                        .upsert(true)
                        .session(&mut *session)
                        .await?;
                    added += u32::from(done.upserted_id.is_some());
                }
                Ok(Ok::<_, StoreError>(added))
            })
        })
        .await?
    }

    async fn claim_notices(
        &self,
        worker: &str,
        limit: u32,
        lease_for: Duration,
        now: Timestamp,
    ) -> Result<Vec<NoticeMail>, StoreError> {
        let now_s = now.as_second();
        let coll = self.coll::<Document>(NOTICES);
        let mut claimed = Vec::new();
        for _ in 0..limit.clamp(1, 100) {
            let next = self
                .timed(
                    coll.find_one_and_update(due(now_s), lease(worker, now_s + lease_for.as_secs() as i64, now_s))
                        .sort(doc! { "next_attempt_at": 1, "created_at": 1 })
                        .return_document(ReturnDocument::After),
                )
                .await?;
            let Some(d) = next else { break };
            claimed.push(mail(&d)?);
        }
        Ok(claimed)
    }

    async fn record_notice_outcomes(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (worker, outcomes) = (worker.to_owned(), outcomes.to_vec());
        self.in_transaction(|store, session| {
            let (worker, outcomes) = (worker.clone(), outcomes.clone());
            Box::pin(async move {
                let coll = store.coll::<Document>(NOTICES);
                for o in &outcomes {
                    let update = settle(&o.result, now.as_second()).unwrap_or_else(|| vec![released()]);
                    coll.update_one(held_by(&o.id, &worker), update).session(&mut *session).await?;
                }
                Ok(Ok::<_, StoreError>(()))
            })
        })
        .await?
    }

    async fn notices(&self, key_prefix: &str, limit: u32) -> Result<Vec<NoticeRow>, StoreError> {
        let prefix = format!("^{}", regex_escape(key_prefix));
        let cursor = self
            .timed(
                self.coll::<Document>(NOTICES)
                    .find(doc! { "_id.k": { "$regex": prefix } })
                    .sort(doc! { "created_at": 1, "_id.k": 1, "_id.r": 1 })
                    .limit(i64::from(limit.clamp(1, MAX_PAGE))),
            )
            .await?;
        let docs: Vec<Document> = self.timed(cursor.try_collect()).await?;
        docs.iter()
            .map(|d| {
                let key = d.get_document("_id").map_err(bad)?;
                let state = d.get_str("state").map_err(bad)?;
                Ok(NoticeRow {
                    key: key.get_str("k").map_err(bad)?.to_owned(),
                    recipient: key.get_str("r").map_err(bad)?.to_owned(),
                    subject: d.get_str("subject").map_err(bad)?.to_owned(),
                    body: d.get_str("body").map_err(bad)?.to_owned(),
                    state: MailState::parse(state).ok_or_else(|| bad(format!("mail state {state}")))?,
                    attempts: int(d, "attempts")? as u32,
                    created_at: decode::ts(int(d, "created_at")?),
                    sent_at: int(d, "sent_at").ok().map(decode::ts),
                    last_error: d.get_str("last_error").ok().map(str::to_owned),
                })
            })
            .collect()
    }
}

/// A literal for a regular expression (the prefix may hold `.` and other specials).
fn regex_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if !c.is_ascii_alphanumeric() && c != ':' && c != '-' && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
