//! Notices on SQLite: queued once per key and recipient, leased like the outbox.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{TransactionBehavior, params};
use jiff::Timestamp;
use uuid::Uuid;

use turnout_domain::VoterEmail;
use turnout_store::rules::ts;
use turnout_store::{
    MAX_PAGE, MailOutcome, MailResult, MailState, NOTICE_ATTEMPTS, Notice, NoticeMail, NoticeRow, Notices, StoreError,
    check_notice,
};

use crate::SqliteStore;
use crate::error::{SqlResult, parsed};

#[async_trait]
impl Notices for SqliteStore {
    async fn queue_notices(&self, notices: &[Notice], now: Timestamp) -> Result<u32, StoreError> {
        for n in notices {
            check_notice(n).map_err(|e| StoreError::Other(e.into()))?;
        }
        let notices = notices.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let mut added = 0;
            {
                let mut insert = tx
                    .prepare(
                        "INSERT INTO notices (id, key, recipient, subject, body, next_attempt_at, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                         ON CONFLICT (key, recipient) DO NOTHING",
                    )
                    .sql()?;
                for n in &notices {
                    let id = Uuid::new_v4().to_string();
                    added += insert
                        .execute(params![id, n.key, n.to.as_str(), n.subject, n.body, now.as_second()])
                        .sql()? as u32;
                }
            }
            tx.commit().sql()?;
            Ok(added)
        })
        .await
    }

    async fn claim_notices(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<NoticeMail>, StoreError> {
        let worker = worker.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let now_s = now.as_second();
            let claimed = {
                let mut stmt = tx
                    .prepare(
                        "UPDATE notices SET state = 'sending', lease_owner = ?1, lease_until = ?2
                         WHERE id IN (
                             SELECT id FROM notices
                             WHERE (state IN ('queued', 'deferred') AND next_attempt_at <= ?3)
                                OR (state = 'sending' AND lease_until <= ?3)
                             ORDER BY next_attempt_at, created_at LIMIT ?4)
                         RETURNING id, key, recipient, subject, body, attempts, account, created_at",
                    )
                    .sql()?;
                let rows = stmt
                    .query_map(params![worker, now_s + lease.as_secs() as i64, now_s, limit.clamp(1, 100)], |r| {
                        Ok(NoticeMail {
                            id: parsed(0, r.get(0)?, Uuid::parse_str)?,
                            key: r.get(1)?,
                            to: parsed(2, r.get(2)?, VoterEmail::parse)?,
                            subject: r.get(3)?,
                            body: r.get(4)?,
                            attempts: r.get(5)?,
                            last_account: r.get(6)?,
                            queued_at: ts(r.get(7)?),
                        })
                    })
                    .sql()?;
                rows.collect::<Result<Vec<_>, _>>().sql()?
            };
            tx.commit().sql()?;
            Ok(claimed)
        })
        .await
    }

    async fn record_notice_outcomes(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (worker, outcomes) = (worker.to_owned(), outcomes.to_vec());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let now_s = now.as_second();
            {
                let mut tried = tx
                    .prepare(
                        "UPDATE notices SET
                             state = CASE WHEN ?3 = 'deferred' AND attempts + 1 >= ?8 THEN 'failed' ELSE ?3 END,
                             account = ?4, sent_at = ?5, last_error = ?6,
                             next_attempt_at = COALESCE(?7, next_attempt_at),
                             attempts = attempts + 1, lease_owner = NULL, lease_until = NULL
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'",
                    )
                    .sql()?;
                let mut released = tx
                    .prepare(
                        "UPDATE notices SET state = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END,
                             lease_owner = NULL, lease_until = NULL
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'",
                    )
                    .sql()?;
                for o in &outcomes {
                    let id = o.id.to_string();
                    let (state, account, sent_at, error, retry_at) = match &o.result {
                        MailResult::Sent { account, .. } => ("sent", account, Some(now_s), None, None),
                        MailResult::Deferred { account, error, retry_at } => {
                            ("deferred", account, None, Some(error), Some(retry_at.as_second()))
                        }
                        MailResult::Failed { account, error } => ("failed", account, None, Some(error), None),
                        MailResult::Released => {
                            released.execute(params![id, worker]).sql()?;
                            continue;
                        }
                    };
                    tried
                        .execute(params![id, worker, state, account, sent_at, error, retry_at, NOTICE_ATTEMPTS])
                        .sql()?;
                }
            }
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn notices(&self, key_prefix: &str, limit: u32) -> Result<Vec<NoticeRow>, StoreError> {
        let prefix = key_prefix.to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT key, recipient, subject, body, state, attempts, created_at, sent_at, last_error
                     FROM notices WHERE substr(key, 1, length(?1)) = ?1
                     ORDER BY created_at, key, recipient LIMIT ?2",
                )
                .sql()?;
            let rows = stmt
                .query_map(params![prefix, limit.clamp(1, MAX_PAGE)], |r| {
                    Ok(NoticeRow {
                        key: r.get(0)?,
                        recipient: r.get(1)?,
                        subject: r.get(2)?,
                        body: r.get(3)?,
                        state: parsed(4, r.get(4)?, |s| {
                            MailState::parse(s).ok_or_else(|| std::io::Error::other(format!("mail state {s}")))
                        })?,
                        attempts: r.get(5)?,
                        created_at: ts(r.get(6)?),
                        sent_at: r.get::<_, Option<i64>>(7)?.map(ts),
                        last_error: r.get(8)?,
                    })
                })
                .sql()?;
            rows.collect::<Result<Vec<_>, _>>().sql()
        })
        .await
    }
}
