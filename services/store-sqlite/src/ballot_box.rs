//! The ballot box on SQLite: casts go through the group-committing writer
//! (`ballot_writer`); receipts, turnout and the tally are reads.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, params};

use turnout_domain::{ElectionId, Receipt};
use turnout_store::{BallotBox, CastBallot, CastError, ContestTally, StoreError, Tally, Turnout};

use crate::SqliteStore;
use crate::error::SqlResult;

#[async_trait]
impl BallotBox for SqliteStore {
    #[tracing::instrument(skip_all, fields(election = %cast.election))]
    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError> {
        self.ballots.cast(cast).await
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

    async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError> {
        let election = election.clone();
        self.run(move |conn| tally(conn, &election)).await
    }
}

pub(crate) fn tally(conn: &mut Connection, election: &ElectionId) -> Result<Tally, StoreError> {
    let tx = conn.transaction().sql()?;
    let count = |table: &str| -> rusqlite::Result<u64> {
        tx.query_row(&format!("SELECT COUNT(*) FROM {table} WHERE election_id = ?1"), [election.as_str()], |r| {
            r.get::<_, i64>(0).map(|n| n.max(0) as u64)
        })
    };
    let (participation, ballots) = (count("participation").sql()?, count("ballots").sql()?);
    let mut contests: BTreeMap<String, ContestTally> = BTreeMap::new();
    {
        let mut names = tx.prepare("SELECT id FROM contests WHERE election_id = ?1 ORDER BY position").sql()?;
        for id in names.query_map([election.as_str()], |r| r.get::<_, String>(0)).sql()? {
            contests.insert(id.sql()?, ContestTally::default());
        }
        let mut candidates =
            tx.prepare("SELECT contest_id, id FROM candidates WHERE election_id = ?1 AND status = 'approved'").sql()?;
        for row in
            candidates.query_map([election.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).sql()?
        {
            let (contest, candidate) = row.sql()?;
            contests.entry(contest).or_default().votes.insert(candidate, 0);
        }
        let mut votes = tx
            .prepare(
                "SELECT j.key, j.value, COUNT(*) FROM ballots b, json_each(b.choices) j
             WHERE b.election_id = ?1 GROUP BY j.key, j.value",
            )
            .sql()?;
        let rows = votes
            .query_map([election.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })
            .sql()?;
        for row in rows {
            let (contest, candidate, n) = row.sql()?;
            *contests.entry(contest).or_default().votes.entry(candidate).or_default() += n.max(0) as u64;
        }
    }
    for c in contests.values_mut() {
        c.blank = ballots.saturating_sub(c.votes.values().sum());
    }
    Ok(Tally { participation, ballots, contests })
}
