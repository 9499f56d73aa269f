//! Casting with group commit. One writer thread per process owns a connection and takes
//! the casts that queued while the previous commit ran; one `BEGIN IMMEDIATE`
//! transaction records them all and one fsync makes them durable, then every caller
//! gets its answer. Nobody is answered before the commit that holds their ballot.
//!
//! Per cast, inside that transaction: the window as the store has it now (so an officer's
//! extension or early close counts from the moment it commits), the one-ballot rule
//! (participation's primary key), the ballot row (no voter, no time) and the activity
//! count. A refused cast writes nothing; the others in the batch are unaffected. A
//! failed commit fails every cast in the batch, none of which were stored.
//!
//! The queue is bounded: when it is full a cast is refused at once as unavailable (503)
//! rather than waiting without limit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use jiff::Timestamp;
use turnout_domain::schedule::Schedule;
use turnout_domain::{ElectionId, Receipt};
use turnout_store::rules::ts;
use turnout_store::{Activity, CastBallot, CastError, StoreError};

use crate::activity::bump_activity;
use crate::error::copied_store_error;
use crate::metrics;

/// Casts waiting for the writer, at most.
const QUEUE: usize = 8192;
/// Casts in one transaction, at most.
const MAX_BATCH: usize = 512;

struct Job {
    cast: CastBallot,
    reply: oneshot::Sender<Result<Receipt, CastError>>,
}

pub(crate) struct BallotWriter {
    queue: mpsc::SyncSender<Job>,
}

impl BallotWriter {
    pub(crate) fn start(path: &Path) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE);
        let path = path.to_path_buf();
        std::thread::Builder::new().name("ballot-writer".into()).spawn(move || run(&path, &jobs))?;
        Ok(Self { queue })
    }

    pub(crate) async fn cast(&self, cast: CastBallot) -> Result<Receipt, CastError> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { cast, reply }).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => {
                StoreError::Unavailable(format!("{QUEUE} ballots already waiting for the writer"))
            }
            mpsc::TrySendError::Disconnected(_) => StoreError::Unavailable("the ballot writer stopped".into()),
        })?;
        answer.await.map_err(|_| StoreError::Unavailable("the ballot writer stopped".into()))?
    }
}

/// Ends when every sender (the store) is dropped.
fn run(path: &Path, jobs: &mpsc::Receiver<Job>) {
    let mut conn: Option<Connection> = None;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            match open(path) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail_all(batch, &e);
                    continue;
                }
            }
        }
        let casts: Vec<&CastBallot> = batch.iter().map(|j| &j.cast).collect();
        let started = std::time::Instant::now();
        let recorded = conn.as_mut().map(|c| record(c, &casts));
        metrics::store_operation("cast_ballot", started.elapsed().as_secs_f64());
        match recorded {
            Some(Ok(outcomes)) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Some(Err(e)) => {
                // A broken connection is opened afresh for the next batch.
                if !matches!(copied_store_error(&e), StoreError::Unavailable(_)) {
                    conn = None;
                }
                fail_all(batch, &e);
            }
            None => {}
        }
    }
}

/// A writer thread's own connection, set up like every other.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    crate::configure(&conn)?;
    Ok(conn)
}

fn fail_all(batch: Vec<Job>, e: &rusqlite::Error) {
    tracing::warn!(event = "ballot_batch_failed", casts = batch.len(), error = %e);
    for job in batch {
        let _ = job.reply.send(Err(CastError::Store(copied_store_error(e))));
    }
}

/// One transaction for the whole batch; per cast an outcome, or the error that aborted
/// the transaction (then nothing in it was stored).
fn record(conn: &mut Connection, casts: &[&CastBallot]) -> rusqlite::Result<Vec<Result<Receipt, CastError>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut schedules: HashMap<&ElectionId, Option<Schedule>> = HashMap::new();
    let mut counted: HashMap<&ElectionId, u64> = HashMap::new();
    let mut outcomes = Vec::with_capacity(casts.len());
    for cast in casts {
        if !schedules.contains_key(&cast.election) {
            schedules.insert(&cast.election, schedule(&tx, &cast.election)?);
        }
        let Some(schedule) = &schedules[&cast.election] else {
            outcomes.push(Err(CastError::UnknownElection));
            continue;
        };
        if let Err(refusal) = schedule.check_ballot(cast.now, cast.verified_at) {
            outcomes.push(Err(CastError::OutsideWindow(refusal)));
            continue;
        }
        let choices = match serde_json::to_string(&cast.choices) {
            Ok(c) => c,
            Err(e) => {
                outcomes.push(Err(CastError::Store(StoreError::Other(e.into()))));
                continue;
            }
        };
        let joined = tx
            .prepare_cached(
                "INSERT INTO participation (election_id, voter) VALUES (?1, ?2)
                 ON CONFLICT (election_id, voter) DO NOTHING",
            )?
            .execute(params![cast.election.as_str(), cast.voter.as_str()])?;
        if joined == 0 {
            outcomes.push(Err(CastError::AlreadyVoted));
            continue;
        }
        let receipt = Receipt::generate();
        tx.prepare_cached("INSERT INTO ballots (election_id, receipt, choices) VALUES (?1, ?2, ?3)")?
            .execute(params![cast.election.as_str(), receipt.as_str(), choices])?;
        *counted.entry(&cast.election).or_default() += 1;
        outcomes.push(Ok(receipt));
    }
    let now = Timestamp::now();
    for (election, n) in counted {
        bump_activity(&tx, election.as_str(), Activity::Ballot, n, now)?;
    }
    tx.commit()?;
    Ok(outcomes)
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
