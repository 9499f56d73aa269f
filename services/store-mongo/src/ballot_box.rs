//! The ballot box in MongoDB: `participation` `{_id: {e, v}}` (who voted) and `ballots`
//! `{_id: {e, r}, choices}` (what was chosen, with no voter and no time: see `docs`),
//! written together in one transaction with the window check; turnout and the tally read
//! both from one snapshot.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};
use turnout_domain::{ElectionId, Receipt};
use turnout_store::{Activity, BallotBox, CastBallot, CastError, ContestTally, StoreError, Tally, Turnout};

use crate::decode::{self, int};
use crate::{MongoStore, docs, errors};

#[async_trait]
impl BallotBox for MongoStore {
    /// The window as stored now, the one-ballot rule and the ballot, in one transaction.
    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError> {
        // A voter who already voted (a double click, a retry after a lost answer) is
        // answered from one read, without a transaction that could only conflict. The
        // transaction below stays the rule: this is only the early answer.
        let voted = self
            .timed(self.coll::<Document>("participation").find_one(docs::participation(&cast.election, &cast.voter)))
            .await?;
        if voted.is_some() {
            return Err(CastError::AlreadyVoted);
        }
        let outcome = self
            .in_transaction(|store, session| {
                let cast = cast.clone();
                Box::pin(async move {
                    let found = store
                        .coll::<Document>("elections")
                        .find_one(doc! { "_id": cast.election.as_str() })
                        .projection(doc! { "opens_at": 1, "closes_at": 1, "grace_secs": 1, "time_zone": 1 })
                        .session(&mut *session)
                        .await?;
                    let Some(found) = found else { return Ok(Err(CastError::UnknownElection)) };
                    let schedule = match decode::schedule(&found) {
                        Ok(s) => s,
                        Err(e) => return Ok(Err(CastError::Store(e))),
                    };
                    if let Err(refusal) = schedule.check_ballot(cast.now, cast.verified_at) {
                        return Ok(Err(CastError::OutsideWindow(refusal)));
                    }
                    let joined = store
                        .coll::<Document>("participation")
                        .insert_one(docs::participation(&cast.election, &cast.voter))
                        .session(&mut *session)
                        .await;
                    match joined {
                        Err(e) if errors::is_duplicate_key(&e) => return Ok(Err(CastError::AlreadyVoted)),
                        other => other?,
                    };
                    let receipt = Receipt::generate();
                    store
                        .coll::<Document>("ballots")
                        .insert_one(docs::ballot(&cast.election, &receipt, &cast.choices))
                        .session(&mut *session)
                        .await?;
                    Ok(Ok(receipt))
                })
            })
            .await;
        let receipt = outcome.map_err(CastError::Store)??;
        // Counted once the ballot is durable (see `activity.rs` on activity counts).
        self.bump_activity(cast.election.as_str(), Activity::Ballot, 1, cast.now.as_second().div_euclid(60)).await?;
        Ok(receipt)
    }

    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError> {
        let found = self.timed(self.coll::<Document>("ballots").find_one(docs::ballot_id(election, receipt))).await?;
        Ok(found.is_some())
    }

    /// Participation and ballots counted from one snapshot (a transaction with snapshot
    /// reads), so the two always agree.
    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError> {
        let election = election.clone();
        self.in_transaction(|store, session| {
            let election = election.clone();
            Box::pin(async move {
                let (participation, ballots) = counts_in(store, session, &election).await?;
                Ok(Ok(Turnout { participation, ballots }))
            })
        })
        .await?
    }

    /// Counts per contest and candidate, with participation and ballots, from one
    /// snapshot (a transaction).
    async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError> {
        let election = election.clone();
        self.in_transaction(|store, session| {
            let election = election.clone();
            Box::pin(async move {
                let (participation, ballots) = counts_in(store, session, &election).await?;
                let mut contests: BTreeMap<String, ContestTally> = BTreeMap::new();
                if let Some(d) = store
                    .coll::<Document>("elections")
                    .find_one(doc! { "_id": election.as_str() })
                    .session(&mut *session)
                    .await?
                {
                    for c in d
                        .get_array("contests")
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Bson::as_document)
                    {
                        let entry = contests.entry(c.get_str("id").unwrap_or("").to_owned()).or_default();
                        for k in c
                            .get_array("candidates")
                            .map(|a| a.as_slice())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(Bson::as_document)
                        {
                            if k.get_str("status").ok() == Some("approved") {
                                entry.votes.insert(k.get_str("id").unwrap_or("").to_owned(), 0);
                            }
                        }
                    }
                }
                // Counted in the database: one row per (contest, candidate).
                let pipeline = vec![
                    doc! { "$match": docs::of_election(&election) },
                    doc! { "$project": { "c": { "$objectToArray": "$choices" } } },
                    doc! { "$unwind": "$c" },
                    doc! { "$group": { "_id": { "k": "$c.k", "v": "$c.v" }, "n": { "$sum": 1 } } },
                ];
                let mut cursor = store.coll::<Document>("ballots").aggregate(pipeline).session(&mut *session).await?;
                while let Some(row) = cursor.next(&mut *session).await.transpose()? {
                    let (Ok(id), Some(n)) = (row.get_document("_id"), int(&row, "n").ok()) else { continue };
                    let (Ok(contest), Ok(candidate)) = (id.get_str("k"), id.get_str("v")) else { continue };
                    *contests.entry(contest.to_owned()).or_default().votes.entry(candidate.to_owned()).or_default() +=
                        n.max(0) as u64;
                }
                for c in contests.values_mut() {
                    c.blank = ballots.saturating_sub(c.votes.values().sum());
                }
                Ok(Ok(Tally { participation, ballots, contests }))
            })
        })
        .await?
    }
}

/// Participation and ballots of one election, inside the caller's transaction (one
/// snapshot, so the two can be compared).
async fn counts_in(
    store: &MongoStore,
    session: &mut ClientSession,
    election: &ElectionId,
) -> mongodb::error::Result<(u64, u64)> {
    let participation = store
        .coll::<Document>("participation")
        .count_documents(docs::of_election(election))
        .session(&mut *session)
        .await?;
    let ballots =
        store.coll::<Document>("ballots").count_documents(docs::of_election(election)).session(&mut *session).await?;
    Ok((participation, ballots))
}
