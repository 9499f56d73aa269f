//! Sign-in on SQLite: the throttle goes through its group-committing writer
//! (`sign_in_writer`); sign-outs are `sign_outs(uid, at_ms)`, one row per account,
//! indexed by time for the services' reads every 250 ms.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{Connection, params};
use jiff::Timestamp;

use turnout_domain::Username;
use turnout_store::rules::ts_ms;
use turnout_store::{Admission, AttemptOutcome, SignIn, SignInKeys, StoreError, ThrottleRules};

use crate::SqliteStore;
use crate::error::{SqlResult, parsed};

#[async_trait]
impl SignIn for SqliteStore {
    async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let op = crate::sign_in_writer::Op::Attempt { keys: keys.clone(), rules: *rules, now };
        match self.throttle.apply(op).await? {
            crate::sign_in_writer::Done::Admission(admission) => Ok(admission),
            _ => Err(StoreError::Other(anyhow::anyhow!("the throttle writer answered another operation"))),
        }
    }

    async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let op = crate::sign_in_writer::Op::Settle { keys: keys.clone(), outcome, rules: *rules, now };
        self.throttle.apply(op).await.map(|_| ())
    }

    async fn purge_sign_in_throttles(
        &self,
        rules: &ThrottleRules,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        match self.throttle.apply(crate::sign_in_writer::Op::Purge { rules: *rules, now, limit }).await? {
            crate::sign_in_writer::Done::Purged(n) => Ok(n),
            _ => Err(StoreError::Other(anyhow::anyhow!("the throttle writer answered another operation"))),
        }
    }

    async fn record_sign_out(&self, account: &Username, at: Timestamp) -> Result<(), StoreError> {
        let account = account.clone();
        self.run(move |conn| write_sign_out(conn, &account, at)).await
    }

    async fn sign_outs_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError> {
        self.read_here(|conn| read_sign_outs(conn, since, limit))
    }

    async fn purge_sign_outs(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.run(move |conn| delete_sign_outs(conn, before)).await
    }
}

pub(crate) fn write_sign_out(conn: &mut Connection, account: &Username, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sign_outs (uid, at_ms) VALUES (?1, ?2)
         ON CONFLICT (uid) DO UPDATE SET at_ms = max(at_ms, ?2)",
    )
    .sql()?
    .execute(params![account.as_str(), at.as_millisecond()])
    .sql()?;
    Ok(())
}

pub(crate) fn read_sign_outs(
    conn: &Connection,
    since: Timestamp,
    limit: u32,
) -> Result<Vec<(Username, Timestamp)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT uid, at_ms FROM sign_outs WHERE at_ms >= ?1 ORDER BY at_ms LIMIT ?2").sql()?;
    let rows = stmt
        .query_map(params![since.as_millisecond(), limit], |r| {
            Ok((parsed(0, r.get(0)?, Username::parse)?, ts_ms(r.get(1)?)))
        })
        .sql()?;
    rows.collect::<Result<_, _>>().sql()
}

pub(crate) fn delete_sign_outs(conn: &mut Connection, before: Timestamp) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM sign_outs WHERE at_ms < ?1")
        .sql()?
        .execute([before.as_millisecond()])
        .sql()?;
    Ok(n as u64)
}
