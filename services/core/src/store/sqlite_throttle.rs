//! The SQLite side of the sign-in throttle (rules in `throttle`): each attempt reads and
//! writes both of its counters inside one `BEGIN IMMEDIATE` transaction, so parallel
//! attempts are counted one after another, never past the limit.
//!
//! These writes skip the fsync (`synchronous=NORMAL` for their commit only; WAL mode
//! keeps them atomic and crash-safe, and the next vote's `FULL` commit syncs them too).
//! A power cut may forget the last few failures, which costs an attacker's few guesses
//! at most; an fsync per sign-in would cost every voter about 0.2 ms of the one writer
//! (measured on the 2-core host: ~200 µs per fsync).

use deadpool_sqlite::rusqlite::{self, Connection, OptionalExtension, TransactionBehavior, params};
use jiff::Timestamp;

use super::StoreError;
use super::throttle::{AddressCount, Admission, AttemptOutcome, PairCount, SignInKeys, ThrottleRules};

/// Runs `f` with this connection's commits unsynced, then restores `FULL`.
fn unsynced<R>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    conn.execute_batch("PRAGMA synchronous=NORMAL")?;
    let result = f(conn);
    conn.execute_batch("PRAGMA synchronous=FULL")?;
    result
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

pub(super) fn attempt(
    conn: &mut Connection,
    keys: &SignInKeys,
    rules: &ThrottleRules,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    unsynced(conn, |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now_ms = now.as_millisecond();
        let admission = match rules.admit(read_pair(&tx, &keys.pair)?, read_address(&tx, &keys.address)?, now_ms) {
            Err(refused) => refused,
            Ok((pair, address)) => {
                write_pair(&tx, &keys.pair, &pair)?;
                write_address(&tx, &keys.address, &address)?;
                Admission::Allowed
            }
        };
        tx.commit()?;
        Ok(admission)
    })
}

pub(super) fn settled(
    conn: &mut Connection,
    keys: &SignInKeys,
    outcome: AttemptOutcome,
    rules: &ThrottleRules,
    now: Timestamp,
) -> Result<(), StoreError> {
    unsynced(conn, |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now_ms = now.as_millisecond();
        match outcome {
            AttemptOutcome::Succeeded => {
                tx.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?.execute([&keys.pair])?;
            }
            AttemptOutcome::NotCounted => {
                if let Some(pair) = read_pair(&tx, &keys.pair)? {
                    write_pair(&tx, &keys.pair, &rules.give_back(pair, now_ms))?;
                }
            }
        }
        // Never below zero (a new window may have begun since the attempt was counted).
        tx.prepare_cached("UPDATE login_address_failures SET failures = failures - 1 WHERE key = ?1 AND failures > 0")?
            .execute([&keys.address])?;
        tx.commit()?;
        Ok(())
    })
}

pub(super) fn purge(
    conn: &mut Connection,
    rules: &ThrottleRules,
    now: Timestamp,
    limit: u32,
) -> Result<u64, StoreError> {
    let now_ms = now.as_millisecond();
    let pairs_before = now_ms - rules.decay.as_millis() as i64;
    let windows_before = now_ms - rules.address_window.as_millis() as i64;
    unsynced(conn, |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        tx.commit()?;
        Ok((pairs + addresses) as u64)
    })
}
