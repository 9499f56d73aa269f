//! The dashboard on SQLite: per-minute `activity` counts, `service_status`, and ping.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_domain::ElectionId;
use turnout_store::rules::ts;
use turnout_store::{Activity, ActivityCount, ActivityLog, ServiceStatus, StoreError};

use crate::SqliteStore;
use crate::error::SqlResult;

#[async_trait]
impl ActivityLog for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(())).sql()).await
    }

    async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError> {
        let counts = counts.to_vec();
        self.run(move |conn| record_activity(conn, &counts)).await
    }

    async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError> {
        let election = election.clone();
        self.run(move |conn| activity(conn, &election, since_minute)).await
    }

    async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (service, detail) = (service.to_owned(), detail.clone());
        self.run(move |conn| report_status(conn, &service, ok, &detail, now)).await
    }

    async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError> {
        self.run(service_status).await
    }
}

/// Adds one event to its minute's count inside the caller's transaction.
pub(crate) fn bump_activity(
    tx: &rusqlite::Transaction<'_>,
    election: &str,
    kind: Activity,
    n: u64,
    now: Timestamp,
) -> rusqlite::Result<()> {
    add_activity(tx, election, kind, now.as_second().div_euclid(60), n)
}

fn add_activity(
    tx: &rusqlite::Transaction<'_>,
    election: &str,
    kind: Activity,
    minute: i64,
    n: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO activity (election_id, kind, minute, n) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (election_id, minute, kind) DO UPDATE SET n = n + excluded.n",
    )?
    .execute(params![election, kind.as_str(), minute, n as i64])?;
    Ok(())
}

pub(crate) fn record_activity(conn: &mut Connection, counts: &[ActivityCount]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
    for c in counts {
        add_activity(&tx, &c.election, c.kind, c.minute, c.n).sql()?;
    }
    tx.commit().sql()?;
    Ok(())
}

pub(crate) fn activity(
    conn: &mut Connection,
    election: &ElectionId,
    since_minute: i64,
) -> Result<Vec<ActivityCount>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT election_id, kind, minute, n FROM activity
         WHERE election_id IN (?1, '') AND minute >= ?2 ORDER BY minute, kind",
        )
        .sql()?;
    let rows = stmt
        .query_map(params![election.as_str(), since_minute], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })
        .sql()?;
    let mut out = Vec::new();
    for row in rows {
        let (election, kind, minute, n) = row.sql()?;
        if let Some(kind) = Activity::parse(&kind) {
            out.push(ActivityCount { election, kind, minute, n: n.max(0) as u64 });
        }
    }
    Ok(out)
}

pub(crate) fn report_status(
    conn: &mut Connection,
    service: &str,
    ok: bool,
    detail: &serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO service_status (service, ok, detail, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (service) DO UPDATE SET ok = excluded.ok, detail = excluded.detail, at = excluded.at",
        params![service, ok, detail.to_string(), now.as_second()],
    )
    .sql()?;
    Ok(())
}

pub(crate) fn service_status(conn: &mut Connection) -> Result<Vec<ServiceStatus>, StoreError> {
    let mut stmt = conn.prepare("SELECT service, ok, detail, at FROM service_status ORDER BY service").sql()?;
    let rows = stmt
        .query_map([], |r| {
            let detail: String = r.get(2)?;
            Ok(ServiceStatus {
                service: r.get(0)?,
                ok: r.get(1)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                at: ts(r.get(3)?),
            })
        })
        .sql()?;
    rows.collect::<Result<_, _>>().sql()
}
