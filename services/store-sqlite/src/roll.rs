//! The voter roll on SQLite: `voter_roll(election_id, uid, email, name)`.

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

/// Adds or updates roll entries inside the caller's transaction, counting what changed.
pub(crate) fn upsert_roll(
    tx: &rusqlite::Transaction<'_>,
    election: &ElectionId,
    entries: &[RollEntry],
) -> Result<RollImport, StoreError> {
    let mut stats = RollImport::default();
    let mut current =
        tx.prepare_cached("SELECT email, name FROM voter_roll WHERE election_id = ?1 AND uid = ?2").sql()?;
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO voter_roll (election_id, uid, email, name) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (election_id, uid) DO UPDATE SET email = excluded.email, name = excluded.name",
        )
        .sql()?;
    for e in entries {
        let email = e.email.as_ref().map(|m| m.as_str().to_owned());
        let before: Option<(Option<String>, Option<String>)> = current
            .query_row(params![election.as_str(), e.uid.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .sql()?;
        match before {
            Some((m, n)) if m == email && n == e.name => stats.unchanged += 1,
            Some(_) => {
                upsert.execute(params![election.as_str(), e.uid.as_str(), email, e.name]).sql()?;
                stats.updated += 1;
            }
            None => {
                upsert.execute(params![election.as_str(), e.uid.as_str(), email, e.name]).sql()?;
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
        .prepare("SELECT uid, email, name FROM voter_roll WHERE election_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3")
        .sql()?;
    let rows = stmt
        .query_map(params![election.as_str(), after.unwrap_or_default(), limit.clamp(1, MAX_PAGE)], |r| {
            Ok(RollRow { uid: parsed(0, r.get(0)?, Username::parse)?, email: r.get(1)?, name: r.get(2)? })
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
