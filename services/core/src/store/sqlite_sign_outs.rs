//! The SQLite side of sign-outs (see `crate::sign_outs`): `sign_outs(uid, at_ms)`, one
//! row per account, indexed by time for the services' reads every 250 ms.

use deadpool_sqlite::rusqlite::{Connection, params};
use jiff::Timestamp;

use super::StoreError;
use super::shared::ts_ms;
use super::sqlite::parsed;
use crate::domain::Username;

pub(super) fn record(conn: &mut Connection, account: &Username, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sign_outs (uid, at_ms) VALUES (?1, ?2)
         ON CONFLICT (uid) DO UPDATE SET at_ms = max(at_ms, ?2)",
    )?
    .execute(params![account.as_str(), at.as_millisecond()])?;
    Ok(())
}

pub(super) fn since(conn: &Connection, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT uid, at_ms FROM sign_outs WHERE at_ms >= ?1 ORDER BY at_ms LIMIT ?2")?;
    let rows = stmt.query_map(params![since.as_millisecond(), limit], |r| {
        Ok((parsed(0, r.get(0)?, Username::parse)?, ts_ms(r.get(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn purge(conn: &mut Connection, before: Timestamp) -> Result<u64, StoreError> {
    let n = conn.prepare_cached("DELETE FROM sign_outs WHERE at_ms < ?1")?.execute([before.as_millisecond()])?;
    Ok(n as u64)
}
