//! The SQLite side of the sign-in throttle (rules in `turnout_store::sign_in`), with group
//! commit.
//!
//! One writer thread per process owns a connection and takes every throttle operation
//! that queued while the previous commit ran; one `BEGIN IMMEDIATE` transaction applies
//! them one after another (each reads what the one before it wrote, so parallel attempts
//! are counted one by one, never past a limit), then every caller gets its answer. A
//! failed commit fails every operation in the batch, none of which was stored.
//!
//! Measured with `login-bench` (c=50, side by side with the commit before the throttle
//! moved into the store's writes): a transaction per operation on the shared pool gave
//! 2,957 sign-ins/s against 11,073/s before, because parallel write transactions meet
//! SQLite's busy handler, which sleeps whole milliseconds; one connection taken in turn
//! gave 4,315/s against 9,054/s; group commit is in BENCHMARKS.md.
//!
//! The connection skips the fsync (`synchronous=NORMAL`; WAL mode keeps each commit
//! atomic and crash-safe, and the next vote's `FULL` commit syncs it too). A power cut
//! may forget the last few failures, which costs an attacker's few guesses at most.
//!
//! The queue is bounded: when it is full an operation is refused at once as unavailable
//! (503) rather than waiting without limit.

use std::path::Path;
use std::sync::mpsc;

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;
use tokio::sync::oneshot;

use turnout_store::StoreError;
use turnout_store::sign_in::{AddressCount, Admission, AttemptOutcome, PairCount, SignInKeys, ThrottleRules};

use crate::error::copied_store_error;
use crate::metrics;

/// Operations waiting for the writer, at most.
const QUEUE: usize = 8192;
/// Operations in one transaction, at most.
const MAX_BATCH: usize = 512;

pub(crate) enum Op {
    Attempt { keys: SignInKeys, rules: ThrottleRules, now: Timestamp },
    Settle { keys: SignInKeys, outcome: AttemptOutcome, rules: ThrottleRules, now: Timestamp },
    Purge { rules: ThrottleRules, now: Timestamp, limit: u32 },
}

pub(crate) enum Done {
    Admission(Admission),
    Settled,
    Purged(u64),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

pub(crate) struct ThrottleWriter {
    queue: mpsc::SyncSender<Job>,
}

impl ThrottleWriter {
    pub(crate) fn start(path: &Path) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel(QUEUE);
        let path = path.to_path_buf();
        std::thread::Builder::new().name("throttle-writer".into()).spawn(move || run(&path, &jobs))?;
        Ok(Self { queue })
    }

    pub(crate) async fn apply(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.try_send(Job { op, reply }).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => StoreError::Unavailable(format!("{QUEUE} sign-ins already waiting")),
            mpsc::TrySendError::Disconnected(_) => StoreError::Unavailable("the throttle writer stopped".into()),
        })?;
        answer.await.map_err(|_| StoreError::Unavailable("the throttle writer stopped".into()))?
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
        let started = std::time::Instant::now();
        let applied = conn.as_mut().map(|c| apply_all(c, &batch));
        metrics::store_operation("sign_in_throttle", started.elapsed().as_secs_f64());
        match applied {
            Some(Ok(outcomes)) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Some(Err(e)) => {
                if !matches!(copied_store_error(&e), StoreError::Unavailable(_)) {
                    conn = None;
                }
                fail_all(batch, &e);
            }
            None => {}
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = crate::ballot_writer::open(path)?;
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    Ok(conn)
}

fn fail_all(batch: Vec<Job>, e: &rusqlite::Error) {
    tracing::warn!(event = "throttle_batch_failed", operations = batch.len(), error = %e);
    for job in batch {
        let _ = job.reply.send(Err(copied_store_error(e)));
    }
}

/// One transaction for the whole batch, the operations in their order.
fn apply_all(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<Done>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        outcomes.push(match &job.op {
            Op::Attempt { keys, rules, now } => Done::Admission(attempt(&tx, keys, rules, *now)?),
            Op::Settle { keys, outcome, rules, now } => {
                settle(&tx, keys, *outcome, rules, *now)?;
                Done::Settled
            }
            Op::Purge { rules, now, limit } => Done::Purged(purge(&tx, rules, *now, *limit)?),
        });
    }
    tx.commit()?;
    Ok(outcomes)
}

fn read_pair(tx: &rusqlite::Transaction<'_>, key: &str) -> rusqlite::Result<Option<PairCount>> {
    tx.prepare_cached("SELECT failures, next_allowed_ms, last_ms FROM login_failures WHERE key = ?1")?
        .query_row([key], |r| Ok(PairCount { failures: r.get(0)?, next_allowed_ms: r.get(1)?, last_ms: r.get(2)? }))
        .optional()
}

fn read_address(tx: &rusqlite::Transaction<'_>, key: &str) -> rusqlite::Result<Option<AddressCount>> {
    tx.prepare_cached("SELECT failures, window_start_ms FROM login_address_failures WHERE key = ?1")?
        .query_row([key], |r| Ok(AddressCount { failures: r.get(0)?, window_start_ms: r.get(1)? }))
        .optional()
}

fn write_pair(tx: &rusqlite::Transaction<'_>, key: &str, p: &PairCount) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO login_failures (key, failures, next_allowed_ms, last_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (key) DO UPDATE SET failures = ?2, next_allowed_ms = ?3, last_ms = ?4",
    )?
    .execute(params![key, p.failures, p.next_allowed_ms, p.last_ms])?;
    Ok(())
}

fn write_address(tx: &rusqlite::Transaction<'_>, key: &str, a: &AddressCount) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO login_address_failures (key, failures, window_start_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET failures = ?2, window_start_ms = ?3",
    )?
    .execute(params![key, a.failures, a.window_start_ms])?;
    Ok(())
}

fn attempt(
    tx: &rusqlite::Transaction<'_>,
    keys: &SignInKeys,
    rules: &ThrottleRules,
    now: Timestamp,
) -> rusqlite::Result<Admission> {
    let now_ms = now.as_millisecond();
    Ok(match rules.admit(read_pair(tx, &keys.pair)?, read_address(tx, &keys.address)?, now_ms) {
        Err(refused) => refused,
        Ok((pair, address)) => {
            write_pair(tx, &keys.pair, &pair)?;
            write_address(tx, &keys.address, &address)?;
            Admission::Allowed
        }
    })
}

fn settle(
    tx: &rusqlite::Transaction<'_>,
    keys: &SignInKeys,
    outcome: AttemptOutcome,
    rules: &ThrottleRules,
    now: Timestamp,
) -> rusqlite::Result<()> {
    match outcome {
        AttemptOutcome::Succeeded => {
            tx.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?.execute([&keys.pair])?;
        }
        AttemptOutcome::NotCounted => {
            if let Some(pair) = read_pair(tx, &keys.pair)? {
                write_pair(tx, &keys.pair, &rules.give_back(pair, now.as_millisecond()))?;
            }
        }
    }
    // Never below zero (a new window may have begun since the attempt was counted).
    tx.prepare_cached("UPDATE login_address_failures SET failures = failures - 1 WHERE key = ?1 AND failures > 0")?
        .execute([&keys.address])?;
    Ok(())
}

fn purge(tx: &rusqlite::Transaction<'_>, rules: &ThrottleRules, now: Timestamp, limit: u32) -> rusqlite::Result<u64> {
    let now_ms = now.as_millisecond();
    let pairs_before = now_ms - rules.decay.as_millis() as i64;
    let windows_before = now_ms - rules.address_window.as_millis() as i64;
    let pairs = tx.execute(
        "DELETE FROM login_failures WHERE key IN
           (SELECT key FROM login_failures WHERE last_ms <= ?1 AND next_allowed_ms <= ?2 LIMIT ?3)",
        params![pairs_before, now_ms, limit],
    )?;
    let addresses = tx.execute(
        "DELETE FROM login_address_failures WHERE key IN
           (SELECT key FROM login_address_failures WHERE window_start_ms <= ?1 LIMIT ?2)",
        params![windows_before, limit],
    )?;
    Ok((pairs + addresses) as u64)
}
