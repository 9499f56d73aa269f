//! The ballot box in MongoDB: `participation` `{_id: {e, v}}` (who voted) and
//! `sealed_ballots` `{_id: {e, r}, s}` (what was chosen, sealed, with no voter and no
//! time: see `docs`),
//! written together in one transaction with the window and constituency checks (each
//! constituency's voter count is bumped after, like the activity counts); turnout and the
//! box's contents read from one snapshot.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use mongodb::bson::{Document, doc};
use turnout_domain::{ContestId, ElectionId, Receipt};
use turnout_store::rules::{constituencies_at_cast, reads_roll_columns};
use turnout_store::{Activity, BallotBox, BoxContents, BoxReader, CastBallot, CastError, StoreError, Turnout};

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
        // Sealed once, before the transaction (which may run more than once).
        let receipt = Receipt::generate();
        let sealed = self.keys.seal(&cast.election, &receipt, &cast.choices);
        let tag = self.keys.participation_tag(&cast.election, cast.voter.as_str());
        let outcome = self
            .in_transaction(|store, session| {
                let (cast, receipt, sealed, tag) = (cast.clone(), receipt.clone(), sealed.clone(), tag.clone());
                Box::pin(async move {
                    let found = store
                        .coll::<Document>("elections")
                        .find_one(doc! { "_id": cast.election.as_str() })
                        .projection(doc! {
                            "opens_at": 1, "closes_at": 1, "grace_secs": 1, "time_zone": 1,
                            "contests.id": 1, "contests.rules": 1,
                        })
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
                    let contests = match decode::constituencies(&found) {
                        Ok(c) => c,
                        Err(e) => return Ok(Err(CastError::Store(e))),
                    };
                    let columns = if reads_roll_columns(&contests) {
                        let row = store
                            .coll::<Document>("voter_roll")
                            .find_one(docs::roll_id(&cast.election, &cast.voter))
                            .session(&mut *session)
                            .await?;
                        match row.as_ref().map(decode::columns).transpose() {
                            Ok(c) => c,
                            Err(e) => return Ok(Err(CastError::Store(e))),
                        }
                    } else {
                        None
                    };
                    let voters_contests = match constituencies_at_cast(&contests, &cast, columns.as_ref()) {
                        Ok(c) => c,
                        Err(refusal) => return Ok(Err(CastError::Choice(refusal))),
                    };
                    let joined = store
                        .coll::<Document>("participation")
                        .insert_one(docs::tagged_participation(&cast.election, &cast.voter, tag))
                        .session(&mut *session)
                        .await;
                    match joined {
                        Err(e) if errors::is_duplicate_key(&e) => return Ok(Err(CastError::AlreadyVoted)),
                        other => other?,
                    };
                    store
                        .coll::<Document>(docs::SEALED_BALLOTS)
                        .insert_one(docs::ballot(&cast.election, &receipt, sealed))
                        .session(&mut *session)
                        .await?;
                    Ok(Ok((receipt, voters_contests)))
                })
            })
            .await;
        let (receipt, voters_contests) = outcome.map_err(CastError::Store)??;
        // Counted once the ballot is durable (see `activity.rs` on activity counts): a
        // counter every constituency voter bumps would make every cast's transaction
        // conflict with every other. A crash between the two undercounts the dashboard by
        // one; the ballot box itself is exact.
        self.bump_activity(cast.election.as_str(), Activity::Ballot, 1, cast.now.as_second().div_euclid(60)).await?;
        for contest in voters_contests {
            self.timed(
                self.coll::<Document>("contest_turnout")
                    .update_one(
                        doc! { "_id": { "e": cast.election.as_str(), "c": contest.as_str() } },
                        doc! { "$inc": { "n": 1_i64 } },
                    )
                    .upsert(true),
            )
            .await?;
        }
        Ok(receipt)
    }

    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError> {
        let found = self
            .timed(self.coll::<Document>(docs::SEALED_BALLOTS).find_one(docs::ballot_id(election, receipt)))
            .await?;
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

    /// Every ballot opened, every receipt and the participation count, from one snapshot.
    async fn box_contents(&self, election: &ElectionId) -> Result<BoxContents, StoreError> {
        let election = election.clone();
        self.in_transaction(|store, session| {
            let election = election.clone();
            Box::pin(async move {
                let mut reader = BoxReader::new(&store.keys, &election);
                let mut voters = store
                    .coll::<Document>("participation")
                    .find(docs::of_election(&election))
                    .session(&mut *session)
                    .await?;
                while let Some(d) = voters.next(&mut *session).await.transpose()? {
                    let (voter, tag) = decode::participation_row(&d);
                    reader.push_participation(&voter, tag);
                }
                let mut cursor = store
                    .coll::<Document>(docs::SEALED_BALLOTS)
                    .find(docs::of_election(&election))
                    .session(&mut *session)
                    .await?;
                while let Some(d) = cursor.next(&mut *session).await.transpose()? {
                    let (receipt, sealed) = decode::sealed_ballot(&d);
                    reader.push(&receipt, sealed);
                }
                Ok(Ok(reader.finish()))
            })
        })
        .await?
    }

    async fn constituency_turnout(&self, election: &ElectionId) -> Result<Vec<(ContestId, u64)>, StoreError> {
        let cursor = self
            .timed(self.coll::<Document>("contest_turnout").find(docs::of_election(election)).sort(doc! { "_id.c": 1 }))
            .await?;
        let found: Vec<Document> = self.timed(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                let id = d.get_document("_id").and_then(|id| id.get_str("c")).map_err(decode::bad)?;
                Ok((ContestId::parse(id).map_err(decode::bad)?, int(d, "n")?.max(0) as u64))
            })
            .collect()
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
    let ballots = store
        .coll::<Document>(docs::SEALED_BALLOTS)
        .count_documents(docs::of_election(election))
        .session(&mut *session)
        .await?;
    Ok((participation, ballots))
}
