//! Casting with group commit (`group_commit`): the casts that queued while the previous
//! commit ran are recorded in one `BEGIN IMMEDIATE` transaction and made durable by one
//! fsync, then every caller gets its answer. Nobody is answered before the commit that
//! holds their ballot.
//!
//! Per cast, inside that transaction: the window as the store has it now (so an officer's
//! extension or early close counts from the moment it commits), the constituency rule
//! (`rules::constituencies_at_cast`, with the roll as it is now), the one-ballot rule
//! (participation's primary key), the ballot row (no voter, no time; its choices sealed
//! before the cast was queued, under the receipt made then), the activity count
//! and the count of each constituency's voters. A refused cast writes nothing; the others
//! in the batch are unaffected. A failed commit fails every cast in the batch, none of
//! which were stored.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};

use jiff::Timestamp;
use turnout_domain::schedule::Schedule;
use turnout_domain::{ContestId, ElectionId, Receipt};
use turnout_store::rules::{constituencies_at_cast, reads_roll_columns, ts};
use turnout_store::{Activity, CastBallot, CastError, Constituency, ContestRules, StoreError, StoreKeys};

use crate::activity::bump_activity;
use crate::error::parsed;
use crate::group_commit::{self, Batch, Writer};

/// Casting's batches: the window, the one-ballot rule, the ballot row, the count.
pub(crate) struct Casts;

/// A cast with its receipt and its sealed choices, made on the caller's thread (sealing
/// is the costliest step and needs no lock).
pub(crate) struct SealedCast {
    cast: CastBallot,
    receipt: Receipt,
    sealed: Vec<u8>,
    /// The participation row's tag (`StoreKeys::participation_tag`).
    tag: Vec<u8>,
}

pub(crate) type BallotWriter = Writer<Casts>;

impl Batch for Casts {
    type Op = SealedCast;
    type Out = Result<Receipt, CastError>;
    const THREAD: &'static str = "ballot-writer";
    const METRIC: &'static str = "cast_ballot";
    const FULL: &'static str = "ballots already waiting for the writer";
    const STOPPED: &'static str = "the ballot writer stopped";

    fn open(path: &Path) -> rusqlite::Result<Connection> {
        group_commit::open(path)
    }

    fn apply(conn: &mut Connection, casts: &[&SealedCast]) -> rusqlite::Result<Vec<Self::Out>> {
        record(conn, casts)
    }

    fn failed(e: StoreError) -> Self::Out {
        Err(CastError::Store(e))
    }

    fn log_failed(casts: usize, e: &rusqlite::Error) {
        tracing::warn!(event = "ballot_batch_failed", casts, error = %e);
    }
}

impl BallotWriter {
    pub(crate) async fn cast(&self, keys: &StoreKeys, cast: CastBallot) -> Result<Receipt, CastError> {
        let receipt = Receipt::generate();
        let sealed = keys.seal(&cast.election, &receipt, &cast.choices);
        let tag = keys.participation_tag(&cast.election, cast.voter.as_str());
        self.submit(SealedCast { cast, receipt, sealed, tag }).await?
    }
}

/// One transaction for the whole batch; per cast an outcome, or the error that aborted
/// the transaction (then nothing in it was stored).
fn record(conn: &mut Connection, casts: &[&SealedCast]) -> rusqlite::Result<Vec<Result<Receipt, CastError>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut elections: HashMap<&ElectionId, Option<AtCast>> = HashMap::new();
    let mut counted: HashMap<&ElectionId, u64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(casts.len());
    for SealedCast { cast, receipt, sealed, tag } in casts.iter().copied() {
        if !elections.contains_key(&cast.election) {
            elections.insert(&cast.election, election(&tx, &cast.election)?);
        }
        let Some((schedule, contests)) = &elections[&cast.election] else {
            outcomes.push(Err(CastError::UnknownElection));
            continue;
        };
        if let Err(refusal) = schedule.check_ballot(cast.now, cast.verified_at) {
            outcomes.push(Err(CastError::OutsideWindow(refusal)));
            continue;
        }
        let columns = if reads_roll_columns(contests) { roll_columns(&tx, cast)? } else { None };
        let voters_contests = match constituencies_at_cast(contests, cast, columns.as_ref()) {
            Ok(c) => c,
            Err(refusal) => {
                outcomes.push(Err(CastError::Choice(refusal)));
                continue;
            }
        };
        let joined = tx
            .prepare_cached(
                "INSERT INTO participation (election_id, voter, tag) VALUES (?1, ?2, ?3)
                 ON CONFLICT (election_id, voter) DO NOTHING",
            )?
            .execute(params![cast.election.as_str(), cast.voter.as_str(), tag])?;
        if joined == 0 {
            outcomes.push(Err(CastError::AlreadyVoted));
            continue;
        }
        tx.prepare_cached("INSERT INTO ballots (election_id, receipt, sealed) VALUES (?1, ?2, ?3)")?
            .execute(params![cast.election.as_str(), receipt.as_str(), sealed])?;
        for contest in voters_contests {
            tx.prepare_cached(
                "INSERT INTO contest_turnout (election_id, contest_id, n) VALUES (?1, ?2, 1)
                 ON CONFLICT (election_id, contest_id) DO UPDATE SET n = n + 1",
            )?
            .execute(params![cast.election.as_str(), contest.as_str()])?;
        }
        *counted.entry(&cast.election).or_default() += 1;
        outcomes.push(Ok(receipt.clone()));
    }
    let now = Timestamp::now();
    for (election, n) in counted {
        bump_activity(&tx, election.as_str(), Activity::Ballot, n, now)?;
    }
    tx.commit()?;
    Ok(outcomes)
}

/// What a cast is checked against: the window and each contest's constituency.
type AtCast = (Schedule, Vec<(ContestId, Constituency)>);

/// The election's window and each contest's constituency, as stored now.
fn election(tx: &rusqlite::Transaction<'_>, election: &ElectionId) -> rusqlite::Result<Option<AtCast>> {
    let Some(schedule) = schedule(tx, election)? else { return Ok(None) };
    let mut stmt = tx.prepare_cached("SELECT id, rules FROM contests WHERE election_id = ?1")?;
    let contests = stmt
        .query_map([election.as_str()], |r| {
            let id = parsed(0, r.get(0)?, ContestId::parse)?;
            let rules = parsed(1, r.get(1)?, |raw: &str| serde_json::from_str::<ContestRules>(raw))?;
            Ok((id, rules.voters))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some((schedule, contests)))
}

/// The voter's roll row's named columns in this election, if they are on its roll.
fn roll_columns(
    tx: &rusqlite::Transaction<'_>,
    cast: &CastBallot,
) -> rusqlite::Result<Option<BTreeMap<String, String>>> {
    tx.prepare_cached("SELECT columns FROM voter_roll WHERE election_id = ?1 AND uid = ?2")?
        .query_row(params![cast.election.as_str(), cast.voter.as_str()], |r| {
            parsed(0, r.get(0)?, |raw: &str| serde_json::from_str::<BTreeMap<String, String>>(raw))
        })
        .optional()
}

fn schedule(tx: &rusqlite::Transaction<'_>, election: &ElectionId) -> rusqlite::Result<Option<Schedule>> {
    tx.prepare_cached("SELECT opens_at, closes_at, grace_secs, time_zone FROM elections WHERE id = ?1")?
        .query_row([election.as_str()], |r| {
            Ok(Schedule {
                opens_at: ts(r.get(0)?),
                closes_at: ts(r.get(1)?),
                grace: std::time::Duration::from_secs(r.get::<_, i64>(2)?.max(0) as u64),
                time_zone: r.get(3)?,
            })
        })
        .optional()
}
