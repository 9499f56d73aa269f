//! The mail outbox on SQLite: leases, outcomes, and the officers' views.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;
use uuid::Uuid;

use turnout_domain::{ElectionId, Username, VoterEmail};
use turnout_store::rules::{delivery_percentiles, ts};
use turnout_store::{
    Activity, MAX_PAGE, MailOutcome, MailResult, Outbox, OutboxMail, OutboxPage, OutboxRow, OutboxSummary, StoreError,
};

use crate::SqliteStore;
use crate::activity::bump_activity;
use crate::error::{SqlResult, parsed};

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim_mail(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let worker = worker.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let now_s = now.as_second();
            let mut stmt = tx
                .prepare(
                    "UPDATE outbox SET state = 'sending', lease_owner = ?1, lease_until = ?2, updated_at = ?3
                 WHERE id IN (
                     SELECT id FROM outbox
                     WHERE (state IN ('queued', 'deferred') AND next_attempt_at <= ?3)
                        OR (state = 'sending' AND lease_until <= ?3)
                     ORDER BY next_attempt_at LIMIT ?4)
                 RETURNING id, election_id, voter, recipient, generation, issued_at, attempts, account, created_at",
                )
                .sql()?;
            let rows = stmt
                .query_map(params![worker, now_s + lease.as_secs() as i64, now_s, limit.clamp(1, 500)], |r| {
                    Ok(OutboxMail {
                        id: parsed(0, r.get(0)?, Uuid::parse_str)?,
                        election: parsed(1, r.get(1)?, ElectionId::parse)?,
                        voter: parsed(2, r.get(2)?, Username::parse)?,
                        to: parsed(3, r.get(3)?, VoterEmail::parse)?,
                        generation: r.get(4)?,
                        issued_at: ts(r.get(5)?),
                        attempts: r.get(6)?,
                        last_account: r.get(7)?,
                        queued_at: ts(r.get(8)?),
                    })
                })
                .sql()?;
            let claimed = rows.collect::<Result<Vec<_>, _>>().sql()?;
            drop(stmt);
            tx.commit().sql()?;
            Ok(claimed)
        })
        .await
    }

    async fn record_outcomes(&self, worker: &str, outcomes: &[MailOutcome], now: Timestamp) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        let outcomes = outcomes.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            write_outcomes(&tx, &worker, &outcomes, now)?;
            tx.commit().sql()?;
            Ok(())
        })
        .await
    }

    async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError> {
        let election = election.clone();
        self.run(move |conn| outbox_summary(conn, &election, now)).await
    }

    async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError> {
        let election = election.clone();
        self.run(move |conn| list_outbox(conn, &election, before, limit)).await
    }
}

/// Message outcomes, for `record_outcomes` and `finish_batch`. A message whose lease
/// passed to another worker is left alone.
pub(crate) fn write_outcomes(
    tx: &rusqlite::Transaction<'_>,
    worker: &str,
    outcomes: &[MailOutcome],
    now: Timestamp,
) -> Result<(), StoreError> {
    let now_s = now.as_second();
    {
        let mut tried = tx
            .prepare(
                "UPDATE outbox SET state = ?3, account = ?4, sender = COALESCE(?5, sender),
                         sent_at = ?6, last_error = ?7, next_attempt_at = COALESCE(?8, next_attempt_at),
                         attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, updated_at = ?9
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'
                     RETURNING election_id",
            )
            .sql()?;
        let mut released = tx
            .prepare(
                "UPDATE outbox SET state = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END,
                         lease_owner = NULL, lease_until = NULL, updated_at = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'",
            )
            .sql()?;
        for o in outcomes {
            let (state, account, from, sent_at, error, retry_at) = match &o.result {
                MailResult::Sent { account, from } => ("sent", account, Some(from), Some(now_s), None, None),
                MailResult::Deferred { account, error, retry_at } => {
                    ("deferred", account, None, None, Some(error), Some(retry_at.as_second()))
                }
                MailResult::Failed { account, error } => ("failed", account, None, None, Some(error), None),
                MailResult::Released => {
                    released.execute(params![o.id.to_string(), worker, now_s]).sql()?;
                    continue;
                }
            };
            let election: Option<String> = tried
                .query_row(
                    params![o.id.to_string(), worker, state, account, from, sent_at, error, retry_at, now_s],
                    |r| r.get(0),
                )
                .optional()
                .sql()?;
            let counted = match state {
                "sent" => Some(Activity::CodeSent),
                "failed" => Some(Activity::CodeFailed),
                _ => None,
            };
            if let (Some(election), Some(kind)) = (election, counted) {
                bump_activity(tx, &election, kind, 1, now).sql()?;
            }
        }
    }
    Ok(())
}

pub(crate) fn outbox_summary(
    conn: &mut Connection,
    election: &ElectionId,
    now: Timestamp,
) -> Result<OutboxSummary, StoreError> {
    let tx = conn.transaction().sql()?;
    let mut summary = OutboxSummary::default();
    {
        let mut stmt = tx.prepare("SELECT state, COUNT(*) FROM outbox WHERE election_id = ?1 GROUP BY state").sql()?;
        for row in stmt.query_map([election.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).sql()? {
            let (state, n) = row.sql()?;
            let n = n.max(0) as u64;
            match state.as_str() {
                "queued" => summary.queued = n,
                "sending" => summary.sending = n,
                "deferred" => summary.deferred = n,
                "sent" => summary.sent = n,
                "failed" => summary.failed = n,
                _ => {}
            }
        }
        summary.oldest_waiting_secs = tx
            .query_row(
                "SELECT MIN(created_at) FROM outbox WHERE election_id = ?1 AND state IN ('queued', 'sending', 'deferred')",
                [election.as_str()],
                |r| r.get::<_, Option<i64>>(0),
            ).sql()?
            .map(|oldest| (now.as_second() - oldest).max(0));
        let histogram: Vec<(i64, u64)> = tx
            .prepare(
                "SELECT sent_at - created_at AS secs, COUNT(*) FROM outbox
                 WHERE election_id = ?1 AND state = 'sent' AND sent_at >= ?2 GROUP BY secs ORDER BY secs",
            )
            .sql()?
            .query_map(params![election.as_str(), now.as_second() - 600], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .sql()?
            .collect::<Result<_, _>>()
            .sql()?;
        (summary.latency_p50_secs, summary.latency_p95_secs) = delivery_percentiles(&histogram);
    }
    Ok(summary)
}

pub(crate) fn list_outbox(
    conn: &mut Connection,
    election: &ElectionId,
    before: Option<i64>,
    limit: u32,
) -> Result<OutboxPage, StoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    // One row past the page says there is more.
    let mut stmt = conn
        .prepare_cached(
            "SELECT rowid, id, voter, recipient, state, attempts, account, created_at, sent_at, last_error FROM outbox
         WHERE election_id = ?1 AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3",
        )
        .sql()?;
    let rows = stmt
        .query_map(params![election.as_str(), before.unwrap_or(i64::MAX), limit + 1], |r| {
            Ok(OutboxRow {
                seq: r.get(0)?,
                id: r.get(1)?,
                voter: r.get(2)?,
                recipient: r.get(3)?,
                state: r.get(4)?,
                attempts: r.get(5)?,
                account: r.get(6)?,
                created_at: ts(r.get(7)?),
                sent_at: r.get::<_, Option<i64>>(8)?.map(ts),
                last_error: r.get(9)?,
            })
        })
        .sql()?;
    let mut rows: Vec<OutboxRow> = rows.collect::<Result<_, _>>().sql()?;
    // Row ids are unique, so a page simply ends at its last row (MongoDB's numbers are
    // not: see `cut_outbox_page`).
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_before = if more { rows.last().map(|r| r.seq) } else { None };
    Ok(OutboxPage { rows, next_before })
}

#[cfg(test)]
mod tests {
    use deadpool_sqlite::rusqlite::Connection;
    use jiff::Timestamp;
    use turnout_domain::ElectionId;

    use super::outbox_summary;
    use crate::migrate::migrate;

    /// The delivery percentiles once counted only the 100,000 fastest messages, so past
    /// that they read low. 150,000 sent in the last 10 minutes, 100,000 of them in 1 s
    /// and 50,000 in 30 s: the 95th percentile is 30 s (it read 1 s).
    #[test]
    fn delivery_percentiles_count_every_message_past_a_hundred_thousand() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        migrate(&mut conn).unwrap();
        let now = Timestamp::now();
        let sent_at = now.as_second() - 60;
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
             INSERT INTO outbox (id, election_id, voter, recipient, generation, issued_at, state,
                                 next_attempt_at, created_at, updated_at, sent_at)
             SELECT 'm' || i, 'demo', 'v' || i, 'v@students.turnout.test', 1, ?1, 'sent',
                    ?1, ?1 - CASE WHEN i <= 100000 THEN 1 ELSE 30 END, ?1, ?1 FROM n",
            [sent_at],
        )
        .unwrap();
        let summary = outbox_summary(&mut conn, &ElectionId::parse("demo").unwrap(), now).unwrap();
        assert_eq!(summary.sent, 150_000);
        assert_eq!((summary.latency_p50_secs, summary.latency_p95_secs), (Some(1), Some(30)));
    }
}
