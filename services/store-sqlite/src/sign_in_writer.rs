//! The SQLite side of the sign-in throttle (rules in `turnout_store::sign_in`), with group
//! commit (`group_commit`): the operations of one batch are applied one after another in
//! one transaction, each reading what the one before it wrote, so parallel attempts are
//! counted one by one, never past a limit.
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

use std::path::Path;

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use turnout_store::StoreError;
use turnout_store::sign_in::{AddressCount, Admission, AttemptOutcome, PairCount, SignInKeys, ThrottleRules};

use crate::group_commit::{self, Batch, Writer};

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

/// The throttle's batches.
pub(crate) struct Throttle;

pub(crate) type ThrottleWriter = Writer<Throttle>;

impl Batch for Throttle {
    type Op = Op;
    type Out = Result<Done, StoreError>;
    const THREAD: &'static str = "throttle-writer";
    const METRIC: &'static str = "sign_in_throttle";
    const FULL: &'static str = "sign-ins already waiting";
    const STOPPED: &'static str = "the throttle writer stopped";

    /// Its own connection, without the fsync (see above).
    fn open(path: &Path) -> rusqlite::Result<Connection> {
        let conn = group_commit::open(path)?;
        conn.execute_batch("PRAGMA synchronous=NORMAL")?;
        Ok(conn)
    }

    fn apply(conn: &mut Connection, ops: &[&Op]) -> rusqlite::Result<Vec<Self::Out>> {
        Ok(apply_all(conn, ops)?.into_iter().map(Ok).collect())
    }

    fn failed(e: StoreError) -> Self::Out {
        Err(e)
    }

    fn log_failed(operations: usize, e: &rusqlite::Error) {
        tracing::warn!(event = "throttle_batch_failed", operations, error = %e);
    }
}

impl ThrottleWriter {
    pub(crate) async fn apply(&self, op: Op) -> Result<Done, StoreError> {
        self.submit(op).await?
    }
}

/// One transaction for the whole batch, the operations in their order.
fn apply_all(conn: &mut Connection, ops: &[&Op]) -> rusqlite::Result<Vec<Done>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        outcomes.push(match op {
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
