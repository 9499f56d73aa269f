//! The ballot box on SQLite: casts go through the group-committing writer
//! (`ballot_writer`); receipts, turnout and the box's contents are reads.

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use turnout_domain::{ContestId, ElectionId, Receipt};
use turnout_store::{BallotBox, BoxContents, BoxReader, CastBallot, CastError, StoreError, StoreKeys, Turnout};

use crate::SqliteStore;
use crate::error::{SqlResult, parsed};

#[async_trait]
impl BallotBox for SqliteStore {
    #[tracing::instrument(skip_all, fields(election = %cast.election))]
    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError> {
        self.ballots.cast(&self.keys, cast).await
    }

    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError> {
        let (election, receipt) = (election.clone(), receipt.clone());
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT 1 FROM ballots WHERE receipt = ?1 AND election_id = ?2",
                    params![receipt.as_str(), election.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .sql()?
                .is_some())
        })
        .await
    }

    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError> {
        let election = election.clone();
        self.run(move |conn| {
            // One read transaction, so the two counts come from the same snapshot.
            let tx = conn.transaction().sql()?;
            let count = |table: &str| -> rusqlite::Result<u64> {
                tx.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE election_id = ?1"),
                    [election.as_str()],
                    |r| r.get::<_, i64>(0).map(|n| n.max(0) as u64),
                )
            };
            Ok(Turnout { participation: count("participation").sql()?, ballots: count("ballots").sql()? })
        })
        .await
    }

    async fn constituency_turnout(&self, election: &ElectionId) -> Result<Vec<(ContestId, u64)>, StoreError> {
        let election = election.clone();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare("SELECT contest_id, n FROM contest_turnout WHERE election_id = ?1 ORDER BY contest_id")
                .sql()?;
            let rows = stmt
                .query_map([election.as_str()], |r| {
                    Ok((parsed(0, r.get(0)?, ContestId::parse)?, r.get::<_, i64>(1)?.max(0) as u64))
                })
                .sql()?;
            rows.collect::<Result<_, _>>().sql()
        })
        .await
    }

    async fn box_contents(&self, election: &ElectionId) -> Result<BoxContents, StoreError> {
        let (election, keys) = (election.clone(), self.keys.clone());
        self.run(move |conn| box_contents(conn, &keys, &election)).await
    }
}

pub(crate) fn box_contents(
    conn: &mut Connection,
    keys: &StoreKeys,
    election: &ElectionId,
) -> Result<BoxContents, StoreError> {
    let tx = conn.transaction().sql()?;
    let mut reader = BoxReader::new(keys, election);
    // Whatever an edit left in a column (text for bytes, a number) is read as bytes: it
    // does not verify, and is reported with its row rather than failing the whole box.
    let text = |v: rusqlite::types::ValueRef<'_>| match v {
        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
            String::from_utf8_lossy(t).into_owned()
        }
        other => format!("{other:?}"),
    };
    {
        let mut stmt = tx.prepare("SELECT voter, tag FROM participation WHERE election_id = ?1").sql()?;
        let mut rows = stmt.query([election.as_str()]).sql()?;
        while let Some(r) = rows.next().sql()? {
            let voter = text(r.get_ref(0).sql()?);
            reader.push_participation(&voter, r.get_ref(1).sql()?.as_bytes().ok());
        }
    }
    let mut stmt = tx.prepare("SELECT receipt, sealed FROM ballots WHERE election_id = ?1").sql()?;
    let mut rows = stmt.query([election.as_str()]).sql()?;
    while let Some(r) = rows.next().sql()? {
        let receipt = text(r.get_ref(0).sql()?);
        reader.push(&receipt, r.get_ref(1).sql()?.as_bytes().unwrap_or_default());
    }
    Ok(reader.finish())
}
