//! The voter roll on SQLite: `voter_roll(election_id, uid, email, name, columns)`, the
//! named columns as a JSON object.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};

use turnout_domain::{ElectionId, Username, VoterEmail};
use turnout_store::{MAX_PAGE, Roll, RollEntry, RollImport, RollRow, StoreError};

use crate::SqliteStore;
use crate::error::{SqlResult, parsed};

#[async_trait]
impl Roll for SqliteStore {
    async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError> {
        let election = election.clone();
        let entries = entries.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).sql()?;
            let stats = upsert_roll(&tx, &election, &entries)?;
            tx.commit().sql()?;
            Ok(stats)
        })
        .await
    }

    async fn roll_memberships(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError> {
        self.read_here(|conn| read_roll_memberships(conn, uid, elections))
    }

    async fn roll_columns(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, BTreeMap<String, String>)>, StoreError> {
        self.read_here(|conn| {
            let mut stmt = conn.prepare_cached("SELECT election_id, columns FROM voter_roll WHERE uid = ?1").sql()?;
            let rows =
                stmt.query_map([uid.as_str()], |r| Ok((r.get::<_, String>(0)?, columns(1, r.get(1)?)?))).sql()?;
            let mut found = Vec::new();
            for row in rows {
                let (election, columns) = row.sql()?;
                if let Some(id) = elections.iter().find(|w| w.as_str() == election) {
                    found.push((id.clone(), columns));
                }
            }
            Ok(found)
        })
    }

    async fn roll_count_where(&self, election: &ElectionId, column: &str, value: &str) -> Result<u64, StoreError> {
        // Compared in Rust, as the cast compares (SQLite's lower() folds ASCII only).
        let wanted = turnout_store::Constituency::RollColumn { column: column.to_owned(), value: value.to_owned() };
        let (election, column) = (election.clone(), column.to_owned());
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT columns FROM voter_roll
                     WHERE election_id = ?1 AND json_extract(columns, '$.' || ?2) IS NOT NULL",
                )
                .sql()?;
            let rows = stmt.query_map(params![election.as_str(), column], |r| columns(0, r.get(0)?)).sql()?;
            let mut n = 0;
            for row in rows {
                n += u64::from(wanted.admits_roll_row(&row.sql()?));
            }
            Ok(n)
        })
        .await
    }

    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError> {
        let (election, after) = (election.clone(), after.map(|u| u.to_string()));
        self.run(move |conn| list_roll(conn, &election, after, limit)).await
    }

    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError> {
        let election = election.clone();
        self.run(move |conn| roll_size(conn, &election)).await
    }
}

fn read_roll_memberships(
    conn: &Connection,
    uid: &Username,
    elections: &[ElectionId],
) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT election_id, email FROM voter_roll WHERE uid = ?1").sql()?;
    let rows =
        stmt.query_map([uid.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))).sql()?;
    let mut found = Vec::new();
    for row in rows {
        let (election, email) = row.sql()?;
        if let Some(id) = elections.iter().find(|w| w.as_str() == election) {
            found.push((id.clone(), email.and_then(|m| VoterEmail::parse(&m).ok())));
        }
    }
    Ok(found)
}

/// A roll row's email, name and named columns, as stored.
type StoredRow = (Option<String>, Option<String>, BTreeMap<String, String>);

/// Adds or updates roll entries inside the caller's transaction, counting what changed.
pub(crate) fn upsert_roll(
    tx: &rusqlite::Transaction<'_>,
    election: &ElectionId,
    entries: &[RollEntry],
) -> Result<RollImport, StoreError> {
    let mut stats = RollImport::default();
    let mut current =
        tx.prepare_cached("SELECT email, name, columns FROM voter_roll WHERE election_id = ?1 AND uid = ?2").sql()?;
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO voter_roll (election_id, uid, email, name, columns) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (election_id, uid) DO UPDATE SET email = excluded.email, name = excluded.name,
             columns = excluded.columns",
        )
        .sql()?;
    for e in entries {
        let email = e.email.as_ref().map(|m| m.as_str().to_owned());
        let cols = serde_json::to_string(&e.columns).map_err(|err| StoreError::Other(err.into()))?;
        let before: Option<StoredRow> = current
            .query_row(params![election.as_str(), e.uid.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, columns(2, r.get(2)?)?))
            })
            .optional()
            .sql()?;
        let row = params![election.as_str(), e.uid.as_str(), email, e.name, cols];
        match before {
            Some((m, n, c)) if m == email && n == e.name && c == e.columns => stats.unchanged += 1,
            Some(_) => {
                upsert.execute(row).sql()?;
                stats.updated += 1;
            }
            None => {
                upsert.execute(row).sql()?;
                stats.added += 1;
            }
        }
    }
    Ok(stats)
}

pub(crate) fn list_roll(
    conn: &mut Connection,
    election: &ElectionId,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<RollRow>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT uid, email, name, columns FROM voter_roll WHERE election_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3",
        )
        .sql()?;
    let rows = stmt
        .query_map(params![election.as_str(), after.unwrap_or_default(), limit.clamp(1, MAX_PAGE)], |r| {
            Ok(RollRow {
                uid: parsed(0, r.get(0)?, Username::parse)?,
                email: r.get(1)?,
                name: r.get(2)?,
                columns: columns(3, r.get(3)?)?,
            })
        })
        .sql()?;
    rows.collect::<Result<_, _>>().sql()
}

pub(crate) fn roll_size(conn: &mut Connection, election: &ElectionId) -> Result<u64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM voter_roll WHERE election_id = ?1", [election.as_str()], |r| {
        r.get::<_, i64>(0).map(|n| n.max(0) as u64)
    })
    .sql()
}

fn columns(idx: usize, raw: String) -> rusqlite::Result<BTreeMap<String, String>> {
    parsed(idx, raw, |raw: &str| serde_json::from_str::<BTreeMap<String, String>>(raw))
}
