//! The embedded SQLite adapter: one file shared by every service process on the host.
//!
//! WAL mode lets readers run beside the single writer; every writing operation runs in a
//! `BEGIN IMMEDIATE` transaction, so the write lock is taken up front and two processes
//! never interleave half-done steps. `busy_timeout` turns lock contention into a short
//! wait; past it, the caller gets `StoreError::Unavailable` (a 503), never a corrupt state.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use deadpool_sqlite::rusqlite::{
    self, Connection, ErrorCode as SqliteCode, OptionalExtension, TransactionBehavior, params,
};
use deadpool_sqlite::{Config, Hook, HookError, Pool, PoolError, Runtime};
use jiff::Timestamp;
use uuid::Uuid;

use super::shared::{audit_hash, ts};
use super::sqlite_ballots::BallotWriter;
use super::sqlite_console;
use super::sqlite_sign_outs;
use super::sqlite_throttle;
use super::*;

/// Each migration runs once, in order, tracked by `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE elections (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    opens_at    INTEGER NOT NULL,
    closes_at   INTEGER NOT NULL,
    time_zone   TEXT NOT NULL,
    grace_secs  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE contests (
    election_id TEXT NOT NULL REFERENCES elections(id),
    id          TEXT NOT NULL,
    title       TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (election_id, id)
) WITHOUT ROWID;

CREATE TABLE candidates (
    election_id TEXT NOT NULL,
    contest_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    statement   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    position    INTEGER NOT NULL,
    PRIMARY KEY (election_id, contest_id, id),
    FOREIGN KEY (election_id, contest_id) REFERENCES contests(election_id, id)
) WITHOUT ROWID;

-- Who has voted. The primary key is the one-ballot rule. Deliberately no time and no
-- link to the ballot.
CREATE TABLE participation (
    election_id TEXT NOT NULL,
    voter       TEXT NOT NULL,
    PRIMARY KEY (election_id, voter)
) WITHOUT ROWID;

-- The ballot box: a random id, the receipt and the choices. No voter, no address, no
-- time. WITHOUT ROWID, so rows are kept in random-id order, not insertion order, and
-- can't be lined up with participation by position.
CREATE TABLE ballots (
    id          TEXT PRIMARY KEY,
    election_id TEXT NOT NULL,
    receipt     TEXT NOT NULL UNIQUE,
    choices     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX ballots_by_election ON ballots(election_id);

-- The current code per voter and election. The code itself is never stored: it is
-- derived from the server secret, the generation and issued_at.
CREATE TABLE otp_codes (
    election_id     TEXT NOT NULL,
    voter           TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    consumed        INTEGER NOT NULL DEFAULT 0,
    sends           INTEGER NOT NULL,
    last_request_at INTEGER NOT NULL,
    PRIMARY KEY (election_id, voter)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    election_id     TEXT NOT NULL,
    voter           TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    generation      INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    account         TEXT,
    sender          TEXT,
    lease_owner     TEXT,
    lease_until     INTEGER,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_by_voter ON outbox(election_id, voter, created_at);

-- Append-only; each row's hash covers the previous row's, so an edit breaks the chain.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    election_id TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
"#,
    r#"
-- Sender accounts as every OTP instance sees them: the rate schedule (GCRA: the
-- theoretical time of the next send), today's count, quarantine and health.
CREATE TABLE sender_accounts (
    name              TEXT PRIMARY KEY,
    tat               REAL NOT NULL DEFAULT 0,
    day               TEXT NOT NULL DEFAULT '',
    sent_today        INTEGER NOT NULL DEFAULT 0,
    quarantined_until INTEGER NOT NULL DEFAULT 0,
    quarantine_reason TEXT,
    strikes           INTEGER NOT NULL DEFAULT 0,
    sent_total        INTEGER NOT NULL DEFAULT 0,
    failed_total      INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT,
    last_sent_at      INTEGER
) WITHOUT ROWID;

-- Concurrent SMTP sessions per account, leased to an OTP instance for one batch.
CREATE TABLE sender_slots (
    account     TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    holder      TEXT NOT NULL,
    lease_until INTEGER NOT NULL,
    PRIMARY KEY (account, slot)
) WITHOUT ROWID;

ALTER TABLE otp_codes ADD COLUMN voids INTEGER NOT NULL DEFAULT 0;
ALTER TABLE otp_codes ADD COLUMN locked_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE elections ADD COLUMN otp_extra_secs INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
ALTER TABLE elections ADD COLUMN eligibility TEXT NOT NULL DEFAULT '{"kind":"everyone"}';

CREATE TABLE voter_roll (
    election_id TEXT NOT NULL,
    uid         TEXT NOT NULL,
    email       TEXT,
    name        TEXT,
    PRIMARY KEY (election_id, uid)
) WITHOUT ROWID;
CREATE INDEX voter_roll_by_uid ON voter_roll(uid);

-- Failed logins per submitted username (hashed: any string can be submitted).
-- Milliseconds: a one-second wait must not round down to nothing.
CREATE TABLE login_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    next_allowed_ms INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- The console: quorum and code validity per election, decision reasons, resumable roll
-- imports, per-minute activity for the dashboard, and each service's last status.
ALTER TABLE elections ADD COLUMN quorum_pct REAL NOT NULL DEFAULT 0;
ALTER TABLE elections ADD COLUMN otp_validity_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE candidates ADD COLUMN reason TEXT;

CREATE TABLE roll_imports (
    id          TEXT PRIMARY KEY,
    election_id TEXT NOT NULL,
    actor       TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    rows_total  INTEGER NOT NULL,
    rows_done   INTEGER NOT NULL DEFAULT 0,
    added       INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL DEFAULT 0,
    unchanged   INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    message     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE roll_import_errors (
    import_id TEXT NOT NULL,
    line      INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
) WITHOUT ROWID;

-- Counts only: no voter, and a minute is far coarser than a ballot's moment.
CREATE TABLE activity (
    election_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (election_id, minute, kind)
) WITHOUT ROWID;

CREATE TABLE service_status (
    service TEXT PRIMARY KEY,
    ok      INTEGER NOT NULL,
    detail  TEXT NOT NULL,
    at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX outbox_by_election ON outbox(election_id, state);
"#,
    r#"
-- The ballot box keyed by (election, receipt): one B-tree per ballot instead of three
-- (random id, unique receipt, per-election index), so a cast dirties a third of the
-- pages. The receipt is 100 random bits: the ballot's only id, never time-ordered.
CREATE TABLE ballot_box (
    election_id TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    choices     TEXT NOT NULL,
    PRIMARY KEY (election_id, receipt)
) WITHOUT ROWID;
INSERT INTO ballot_box (election_id, receipt, choices) SELECT election_id, receipt, choices FROM ballots;
DROP TABLE ballots;
ALTER TABLE ballot_box RENAME TO ballots;
"#,
    r#"
-- Who runs a roll import, and until when (see ImportLease): a restarted or second
-- process takes over only an import whose lease has passed.
ALTER TABLE roll_imports ADD COLUMN owner TEXT;
ALTER TABLE roll_imports ADD COLUMN lease_until INTEGER;
"#,
    r#"
-- The sign-in throttle per (username, address) and per address (see store::throttle);
-- the old per-username counts are dropped (they only ever delayed an attempt). Keys are
-- keyed hashes; `last_ms` and `window_start_ms` decide when a row is purged.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    next_allowed_ms INTEGER NOT NULL,
    last_ms         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_failures_by_last ON login_failures(last_ms);
CREATE TABLE login_address_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    window_start_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_address_failures_by_window ON login_address_failures(window_start_ms);
-- The last sign-out per account (see sign_outs): every service ends older sessions.
CREATE TABLE sign_outs (
    uid   TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sign_outs_by_time ON sign_outs(at_ms);
-- Voters are canonical usernames now (trimmed, ASCII lower case: see Username). Rows
-- written under another spelling are folded; where the folded row already exists, the
-- other spelling's row stays as it is (it was a second ballot's participation, or a
-- duplicate roll row), so participation = ballots still holds.
UPDATE OR IGNORE participation SET voter = lower(trim(voter)) WHERE voter <> lower(trim(voter));
UPDATE OR IGNORE voter_roll SET uid = lower(trim(uid)) WHERE uid <> lower(trim(uid));
UPDATE OR IGNORE otp_codes SET voter = lower(trim(voter)) WHERE voter <> lower(trim(voter));
UPDATE outbox SET voter = lower(trim(voter)) WHERE voter <> lower(trim(voter));
"#,
];

/// Per-connection settings. `synchronous=FULL`: an acknowledged vote survives power loss,
/// not just a process crash.
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidQuery);
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for migration in MIGRATIONS.iter().skip(version.max(0) as usize) {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(
                SqliteCode::DatabaseBusy
                | SqliteCode::DatabaseLocked
                | SqliteCode::DiskFull
                | SqliteCode::SystemIoFailure
                | SqliteCode::CannotOpen
                | SqliteCode::ReadOnly
                | SqliteCode::OutOfMemory,
            ) => StoreError::Unavailable(e.to_string()),
            Some(SqliteCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
            _ => StoreError::Other(anyhow::Error::new(e).context("sqlite")),
        }
    }
}

macro_rules! from_sqlite_for {
    ($($t:ty),*) => {$(
        impl From<rusqlite::Error> for $t {
            fn from(e: rusqlite::Error) -> Self {
                Self::Store(e.into())
            }
        }
    )*};
}
from_sqlite_for!(CastError, IssueError, AttemptError, ChangeError);

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Decodes a column that went in through a domain type; a failure means the file was
/// edited by hand, reported as a conversion error rather than a panic.
pub(super) fn parsed<T, E: std::error::Error + Send + Sync + 'static>(
    idx: usize,
    raw: String,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    parse(&raw).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

pub struct SqliteStore {
    pool: Pool,
    /// Casts go through one group-committing writer (see `sqlite_ballots`).
    ballots: BallotWriter,
    /// Sign-in throttle writes, one at a time on their own connection (see `sqlite_throttle`).
    throttle: sqlite_throttle::ThrottleWriter,
    /// For the per-request point reads that run on the caller's thread (`read_here`).
    path: std::path::PathBuf,
    id: u64,
}

static NEXT_STORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
/// Stores a thread keeps a reading connection for (tests open many; a service, one).
const READERS_PER_THREAD: usize = 4;
/// How long a read on the caller's thread waits on a busy database. In WAL mode readers
/// do not wait for writers; only a rare recovery or checkpoint makes one wait at all.
const READ_HERE_BUSY: Duration = Duration::from_millis(500);

thread_local! {
    /// Each thread's reading connections, by store id.
    static READERS: std::cell::RefCell<Vec<(u64, Connection)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// Safe to call from several processes at once.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database directory {}", dir.display()))?;
        }
        let pool = Config::new(path)
            .builder(Runtime::Tokio1)
            .context("sqlite pool config")?
            .max_size(8)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .post_create(Hook::sync_fn(|conn, _| {
                let guard = conn.lock().map_err(|_| HookError::message("connection mutex poisoned"))?;
                configure(&guard).map_err(HookError::Backend)
            }))
            .build()
            .context("building the sqlite pool")?;
        let ballots = BallotWriter::start(path).context("starting the ballot writer")?;
        let throttle = sqlite_throttle::ThrottleWriter::start(path).context("starting the throttle writer")?;
        let id = NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = Self { pool, ballots, throttle, path: path.to_path_buf(), id };
        store.run(|conn| migrate(conn).map_err(StoreError::from)).await?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection in the blocking thread pool.
    async fn run<R, E>(&self, f: impl FnOnce(&mut Connection) -> Result<R, E> + Send + 'static) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = self.pool.get().await.map_err(|e| {
            E::from(match e {
                PoolError::Backend(e) => StoreError::from(e),
                other => StoreError::Unavailable(format!("no database connection free: {other}")),
            })
        })?;
        let op = crate::metrics::op_name(std::any::type_name_of_val(&f));
        let started = std::time::Instant::now();
        let result = conn
            .interact(f)
            .await
            .map_err(|e| E::from(StoreError::Other(anyhow::anyhow!("database task failed: {e}"))))?;
        crate::metrics::store_operation(op, started.elapsed().as_secs_f64());
        result
    }

    /// Runs a short read (one or two indexed lookups) right here, on the calling thread's
    /// own connection, with cached statements. The blocking pool costs two thread
    /// switches per call, more than such a read itself: a sign-in makes two of them.
    /// Only for reads: a write here would hold the database lock on an async thread.
    fn read_here<R, E>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let op = crate::metrics::op_name(std::any::type_name_of_val(&f));
        let started = std::time::Instant::now();
        let result = READERS.with(|cell| {
            let mut readers = cell.borrow_mut();
            let at = match readers.iter().position(|(id, _)| *id == self.id) {
                Some(at) => at,
                None => {
                    let conn = open_reader(&self.path).map_err(|e| E::from(StoreError::from(e)))?;
                    if readers.len() >= READERS_PER_THREAD {
                        readers.remove(0);
                    }
                    readers.push((self.id, conn));
                    readers.len() - 1
                }
            };
            f(&readers[at].1)
        });
        crate::metrics::store_operation(op, started.elapsed().as_secs_f64());
        result
    }
}

fn read_roll_memberships(
    conn: &Connection,
    uid: &Username,
    elections: &[ElectionId],
) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT election_id, email FROM voter_roll WHERE uid = ?1")?;
    let rows = stmt.query_map([uid.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
    let mut found = Vec::new();
    for row in rows {
        let (election, email) = row?;
        if let Some(id) = elections.iter().find(|w| w.as_str() == election) {
            found.push((id.clone(), email.and_then(|m| VoterEmail::parse(&m).ok())));
        }
    }
    Ok(found)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    conn.busy_timeout(READ_HERE_BUSY)?;
    conn.execute_batch("PRAGMA query_only=ON;")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(StoreError::from)).await
    }

    #[tracing::instrument(skip_all, fields(election = %election.id))]
    async fn create_election(&self, election: &NewElection, now: Timestamp) -> Result<(), StoreError> {
        let e = election.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_election(&tx, &e, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn create_election_audited(
        &self,
        election: &NewElection,
        entry: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (e, entry) = (election.clone(), entry.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_election(&tx, &e, now)?;
            append_audit_in(&tx, &entry, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn election(&self, id: &ElectionId) -> Result<Option<Election>, StoreError> {
        let id = id.clone();
        self.read_here(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let head = tx
                .query_row(
                    "SELECT title, opens_at, closes_at, time_zone, grace_secs, otp_extra_secs, eligibility,
                            quorum_pct, otp_validity_secs
                     FROM elections WHERE id = ?1",
                    [id.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, f64>(7)?,
                            r.get::<_, i64>(8)?,
                        ))
                    },
                )
                .optional()?;
            let Some((
                title,
                opens_at,
                closes_at,
                time_zone,
                grace_secs,
                otp_extra_secs,
                eligibility,
                quorum_pct,
                validity,
            )) = head
            else {
                return Ok(None);
            };
            let mut contests: Vec<Contest> = tx
                .prepare_cached("SELECT id, title FROM contests WHERE election_id = ?1 ORDER BY position")?
                .query_map([id.as_str()], |r| {
                    Ok(Contest {
                        id: parsed(0, r.get(0)?, ContestId::parse)?,
                        title: r.get(1)?,
                        candidates: Vec::new(),
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut stmt = tx.prepare_cached(
                "SELECT contest_id, id, name, statement, status FROM candidates
                 WHERE election_id = ?1 ORDER BY contest_id, position",
            )?;
            let rows = stmt.query_map([id.as_str()], |r| {
                let status: String = r.get(4)?;
                Ok((
                    r.get::<_, String>(0)?,
                    Candidate {
                        id: parsed(1, r.get(1)?, CandidateId::parse)?,
                        name: r.get(2)?,
                        statement: r.get(3)?,
                        status: CandidateStatus::parse(&status).unwrap_or(CandidateStatus::Pending),
                    },
                ))
            })?;
            for row in rows {
                let (contest_id, candidate) = row?;
                if let Some(contest) = contests.iter_mut().find(|c| c.id.as_str() == contest_id) {
                    contest.candidates.push(candidate);
                }
            }
            Ok(Some(Election {
                id,
                title,
                schedule: Schedule {
                    opens_at: ts(opens_at),
                    closes_at: ts(closes_at),
                    grace: Duration::from_secs(grace_secs.max(0) as u64),
                    time_zone,
                },
                contests,
                otp_extra: Duration::from_secs(otp_extra_secs.max(0) as u64),
                eligibility: parsed(6, eligibility, |raw| serde_json::from_str::<Eligibility>(raw))?,
                quorum_pct,
                otp_validity: (validity > 0).then(|| Duration::from_secs(validity as u64)),
            }))
        })
    }

    async fn list_elections(&self, after: Option<&ElectionId>, limit: u32) -> Result<Vec<ElectionSummary>, StoreError> {
        let after = after.map(|a| a.as_str().to_owned()).unwrap_or_default();
        let limit = limit.clamp(1, 100);
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, title, opens_at, closes_at, time_zone, grace_secs, eligibility FROM elections
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok(ElectionSummary {
                    id: parsed(0, r.get(0)?, ElectionId::parse)?,
                    title: r.get(1)?,
                    opens_at: ts(r.get(2)?),
                    closes_at: ts(r.get(3)?),
                    time_zone: r.get(4)?,
                    grace_secs: r.get::<_, i64>(5)?.max(0) as u64,
                    eligibility: parsed(6, r.get(6)?, |raw| serde_json::from_str::<Eligibility>(raw))?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError> {
        let election = election.clone();
        let entries = entries.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stats = upsert_roll(&tx, &election, &entries)?;
            tx.commit()?;
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

    async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let op = sqlite_throttle::Op::Attempt { keys: keys.clone(), rules: *rules, now };
        match self.throttle.apply(op).await? {
            sqlite_throttle::Done::Admission(admission) => Ok(admission),
            _ => Err(StoreError::Other(anyhow::anyhow!("the throttle writer answered another operation"))),
        }
    }

    async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let op = sqlite_throttle::Op::Settle { keys: keys.clone(), outcome, rules: *rules, now };
        self.throttle.apply(op).await.map(|_| ())
    }

    async fn purge_sign_in_throttles(
        &self,
        rules: &ThrottleRules,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        match self.throttle.apply(sqlite_throttle::Op::Purge { rules: *rules, now, limit }).await? {
            sqlite_throttle::Done::Purged(n) => Ok(n),
            _ => Err(StoreError::Other(anyhow::anyhow!("the throttle writer answered another operation"))),
        }
    }

    async fn record_sign_out(&self, account: &Username, at: Timestamp) -> Result<(), StoreError> {
        let account = account.clone();
        self.run(move |conn| sqlite_sign_outs::record(conn, &account, at)).await
    }

    async fn sign_outs_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError> {
        self.read_here(|conn| sqlite_sign_outs::since(conn, since, limit))
    }

    async fn purge_sign_outs(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.run(move |conn| sqlite_sign_outs::purge(conn, before)).await
    }

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
                .optional()?
                .is_some())
        })
        .await
    }

    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError> {
        let election = election.clone();
        self.run(move |conn| {
            // One read transaction, so the two counts come from the same snapshot.
            let tx = conn.transaction()?;
            let count = |table: &str| -> rusqlite::Result<u64> {
                tx.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE election_id = ?1"),
                    [election.as_str()],
                    |r| r.get::<_, i64>(0).map(|n| n.max(0) as u64),
                )
            };
            Ok(Turnout { participation: count("participation")?, ballots: count("ballots")? })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(election = %election))]
    async fn issue_otp(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        policy: OtpPolicy,
        now: Timestamp,
    ) -> Result<OtpIssue, IssueError> {
        let (election, voter, to) = (election.clone(), voter.clone(), to.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_s = now.as_second();
            let current = tx
                .query_row(
                    "SELECT generation, issued_at, attempts, consumed, sends, last_request_at, locked_until
                     FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, u32>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, u32>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, u32>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    },
                )
                .optional()?;
            let (generation, issued_at, resent) = match current {
                None => {
                    tx.execute(
                        "INSERT INTO otp_codes (election_id, voter, generation, issued_at, sends, last_request_at)
                         VALUES (?1, ?2, 1, ?3, 1, ?3)",
                        params![election.as_str(), voter.as_str(), now_s],
                    )?;
                    (1, now_s, false)
                }
                Some((generation, issued_at, attempts, consumed, sends, last_request_at, locked_until)) => {
                    if locked_until > now_s {
                        return Err(IssueError::Locked { until: ts(locked_until) });
                    }
                    let ready_at = last_request_at + policy.cooldown.as_secs() as i64;
                    if now_s < ready_at {
                        return Err(IssueError::Cooldown { retry_after_secs: (ready_at - now_s) as u64 });
                    }
                    if sends >= policy.max_sends {
                        return Err(IssueError::SendLimit);
                    }
                    // Re-send the same code while it stays usable for at least half its
                    // validity; otherwise start a new generation (a new code).
                    let half_left = issued_at + (policy.validity.as_secs() as i64) / 2 > now_s;
                    let usable = !consumed && attempts < policy.max_attempts;
                    if half_left && usable {
                        tx.execute(
                            "UPDATE otp_codes SET sends = sends + 1, last_request_at = ?3
                             WHERE election_id = ?1 AND voter = ?2",
                            params![election.as_str(), voter.as_str(), now_s],
                        )?;
                        (generation, issued_at, true)
                    } else {
                        tx.execute(
                            "UPDATE otp_codes SET generation = generation + 1, issued_at = ?3, attempts = 0,
                                 consumed = 0, sends = sends + 1, last_request_at = ?3
                             WHERE election_id = ?1 AND voter = ?2",
                            params![election.as_str(), voter.as_str(), now_s],
                        )?;
                        (generation + 1, now_s, false)
                    }
                }
            };
            let mail_id = Uuid::new_v4();
            tx.execute(
                "INSERT INTO outbox (id, election_id, voter, recipient, generation, issued_at, state,
                                     next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?7, ?7)",
                params![
                    mail_id.to_string(),
                    election.as_str(),
                    voter.as_str(),
                    to.as_str(),
                    generation,
                    issued_at,
                    now_s
                ],
            )?;
            sqlite_console::bump_activity(&tx, election.as_str(), Activity::CodeRequested, 1, now)?;
            tx.commit()?;
            Ok(OtpIssue { generation, issued_at: ts(issued_at), resent, mail_id })
        })
        .await
    }

    async fn begin_otp_attempt(
        &self,
        election: &ElectionId,
        voter: &Username,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<OtpAttempt, AttemptError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let locked_until: Option<i64> = tx
                .query_row(
                    "SELECT locked_until FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(until) = locked_until.filter(|u| *u > now.as_second()) {
                return Err(AttemptError::Locked { until: ts(until) });
            }
            let counted = tx
                .query_row(
                    "UPDATE otp_codes SET attempts = attempts + 1
                     WHERE election_id = ?1 AND voter = ?2 AND consumed = 0 AND attempts < ?3
                     RETURNING generation, issued_at, attempts",
                    params![election.as_str(), voter.as_str(), max_attempts],
                    |r| Ok(OtpAttempt { generation: r.get(0)?, issued_at: ts(r.get(1)?), attempts_used: r.get(2)? }),
                )
                .optional()?;
            if let Some(attempt) = counted {
                tx.commit()?;
                return Ok(attempt);
            }
            let state = tx
                .query_row(
                    "SELECT consumed FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| r.get::<_, bool>(0),
                )
                .optional()?;
            match state {
                Some(false) => Err(AttemptError::TooManyAttempts),
                _ => Err(AttemptError::NoActiveCode),
            }
        })
        .await
    }

    async fn consume_otp(&self, election: &ElectionId, voter: &Username, generation: u32) -> Result<(), StoreError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let consumed = tx.execute(
                "UPDATE otp_codes SET consumed = 1
                 WHERE election_id = ?1 AND voter = ?2 AND generation = ?3 AND consumed = 0",
                params![election.as_str(), voter.as_str(), generation],
            )?;
            if consumed > 0 {
                sqlite_console::bump_activity(&tx, election.as_str(), Activity::CodeVerified, 1, Timestamp::now())?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn claim_mail(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let worker = worker.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_s = now.as_second();
            let mut stmt = tx.prepare(
                "UPDATE outbox SET state = 'sending', lease_owner = ?1, lease_until = ?2, updated_at = ?3
                 WHERE id IN (
                     SELECT id FROM outbox
                     WHERE (state IN ('queued', 'deferred') AND next_attempt_at <= ?3)
                        OR (state = 'sending' AND lease_until <= ?3)
                     ORDER BY next_attempt_at LIMIT ?4)
                 RETURNING id, election_id, voter, recipient, generation, issued_at, attempts, account, created_at",
            )?;
            let rows =
                stmt.query_map(params![worker, now_s + lease.as_secs() as i64, now_s, limit.clamp(1, 500)], |r| {
                    Ok(OutboxMail {
                        id: parsed(0, r.get(0)?, Uuid::parse_str)?,
                        election: parsed(1, r.get(1)?, ElectionId::parse)?,
                        voter: parsed(2, r.get(2)?, Username::parse)?,
                        to: parsed(3, r.get(3)?, VoterEmail::parse)?,
                        generation: r.get(4)?,
                        issued_at: ts(r.get(5)?),
                        attempts: r.get(6)?,
                        last_account: r.get(7)?,
                        queued_at: ts(r.get(8)?),
                    })
                })?;
            let claimed = rows.collect::<Result<Vec<_>, _>>()?;
            drop(stmt);
            tx.commit()?;
            Ok(claimed)
        })
        .await
    }

    async fn finish_batch(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        reports: &[AccountReport],
        policy: QuarantinePolicy,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        let outcomes = outcomes.to_vec();
        let reports = reports.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_s = now.as_second();
            write_outcomes(&tx, &worker, &outcomes, now)?;
            for r in &reports {
                // Unused sends go back to the schedule, but only if nobody reserved after us.
                let unused = r.unused.len() as i64;
                if unused > 0 {
                    tx.execute(
                        "UPDATE sender_accounts SET tat = MAX(?3, tat - ?4 * ?5) WHERE name = ?1 AND tat = ?2",
                        params![r.account, r.tat_after, now.as_duration().as_secs_f64(), unused, r.interval_secs],
                    )?;
                    tx.execute(
                        "UPDATE sender_accounts SET sent_today = MAX(0, sent_today - ?2) WHERE name = ?1",
                        params![r.account, unused],
                    )?;
                }
                tx.execute(
                    "UPDATE sender_accounts SET sent_total = sent_total + ?2, failed_total = failed_total + ?3,
                         last_error = COALESCE(?4, last_error),
                         last_sent_at = CASE WHEN ?2 > 0 THEN ?5 ELSE last_sent_at END,
                         strikes = CASE WHEN ?6 > 0 THEN strikes + ?6 WHEN ?2 > 0 THEN 0 ELSE strikes END
                     WHERE name = ?1",
                    params![r.account, r.sent, r.failed, r.last_error, now_s, r.strikes],
                )?;
                let strikes: u32 =
                    tx.query_row("SELECT strikes FROM sender_accounts WHERE name = ?1", [&r.account], |row| {
                        row.get(0)
                    })?;
                let reason = r.quarantine.clone().or_else(|| {
                    (strikes >= policy.strike_limit).then(|| format!("{strikes} throttling answers in a row"))
                });
                if let Some(reason) = reason {
                    tx.execute(
                        "UPDATE sender_accounts SET quarantined_until = ?2, quarantine_reason = ?3, strikes = 0
                         WHERE name = ?1",
                        params![r.account, now_s + policy.period.as_secs() as i64, reason],
                    )?;
                }
            }
            tx.execute("DELETE FROM sender_slots WHERE holder = ?1", [&worker])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn record_outcomes(&self, worker: &str, outcomes: &[MailOutcome], now: Timestamp) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        let outcomes = outcomes.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            write_outcomes(&tx, &worker, &outcomes, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn reserve_sends(
        &self,
        holder: &str,
        accounts: &[AccountLimits],
        wanted: u32,
        horizon: Duration,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Reservation, StoreError> {
        let holder = holder.to_owned();
        let accounts = accounts.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now_s = now.as_second();
            let today = now.strftime("%Y-%m-%d").to_string();
            let mut planner = SendPlanner::new(now, horizon);
            tx.execute("DELETE FROM sender_slots WHERE lease_until <= ?1", [now_s])?;
            for limits in &accounts {
                tx.execute("INSERT OR IGNORE INTO sender_accounts (name) VALUES (?1)", [&limits.name])?;
                let (tat, day, sent_today, quarantined_until): (f64, String, u32, i64) = tx.query_row(
                    "SELECT tat, day, sent_today, quarantined_until FROM sender_accounts WHERE name = ?1",
                    [&limits.name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
                let held_slots: u32 =
                    tx.query_row("SELECT COUNT(*) FROM sender_slots WHERE account = ?1", [&limits.name], |r| r.get(0))?;
                let sent_today = if day == today { sent_today } else { 0 };
                planner.consider(limits, AccountState { tat, sent_today, quarantined_until, held_slots });
            }
            let candidates = planner.plan(wanted);

            let mut grants = Vec::new();
            for c in candidates {
                let slots = c.free_slots.min(c.times.len() as u32);
                let mut taken = 0;
                let mut slot_no = 0;
                while taken < slots && slot_no < c.limits.max_concurrent {
                    taken += tx.execute(
                        "INSERT OR IGNORE INTO sender_slots (account, slot, holder, lease_until) VALUES (?1, ?2, ?3, ?4)",
                        params![c.limits.name, slot_no, holder, now_s + lease.as_secs() as i64],
                    )? as u32;
                    slot_no += 1;
                }
                tx.execute(
                    "UPDATE sender_accounts SET tat = ?2, day = ?3, sent_today = ?4 WHERE name = ?1",
                    params![c.limits.name, c.next, today, c.sent_today + c.times.len() as u32],
                )?;
                grants.push(SendGrant {
                    account: c.limits.name.clone(),
                    slots: taken,
                    send_at: c.times.iter().map(|f| secs_to_timestamp(*f, now)).collect(),
                    tat_after: c.next,
                });
            }
            tx.commit()?;
            let next_capacity_at = if grants.is_empty() { planner.next_capacity_at(now) } else { None };
            Ok(Reservation { grants, next_capacity_at })
        })
        .await
    }

    async fn sender_health(&self) -> Result<Vec<SenderHealth>, StoreError> {
        self.run(|conn| {
            let today = Timestamp::now().strftime("%Y-%m-%d").to_string();
            let mut stmt = conn.prepare(
                "SELECT name, quarantined_until, quarantine_reason, day, sent_today, sent_total, failed_total,
                        last_error, last_sent_at
                 FROM sender_accounts ORDER BY name",
            )?;
            let now_s = Timestamp::now().as_second();
            let rows = stmt.query_map([], |r| {
                let quarantined_until: i64 = r.get(1)?;
                let day: String = r.get(3)?;
                Ok(SenderHealth {
                    account: r.get(0)?,
                    quarantined_until: (quarantined_until > now_s).then(|| ts(quarantined_until)),
                    quarantine_reason: r.get(2)?,
                    sent_today: if day == today { r.get(4)? } else { 0 },
                    sent_total: r.get::<_, i64>(5)?.max(0) as u64,
                    failed_total: r.get::<_, i64>(6)?.max(0) as u64,
                    last_error: r.get(7)?,
                    last_sent_at: r.get::<_, Option<i64>>(8)?.map(ts),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn record_otp_void(
        &self,
        election: &ElectionId,
        voter: &Username,
        policy: LockPolicy,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let voids: Option<u32> = tx
                .query_row(
                    "UPDATE otp_codes SET voids = voids + 1 WHERE election_id = ?1 AND voter = ?2 RETURNING voids",
                    params![election.as_str(), voter.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let locked = match voids {
                Some(v) if v >= policy.after_voids => {
                    let until = now.as_second() + policy.period.as_secs() as i64;
                    tx.execute(
                        "UPDATE otp_codes SET locked_until = ?3, voids = 0 WHERE election_id = ?1 AND voter = ?2",
                        params![election.as_str(), voter.as_str(), until],
                    )?;
                    Some(ts(until))
                }
                _ => None,
            };
            tx.commit()?;
            Ok(locked)
        })
        .await
    }

    async fn set_otp_extra(
        &self,
        election: &ElectionId,
        extra: Duration,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let election = election.clone();
        let audit = audit.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx.execute(
                "UPDATE elections SET otp_extra_secs = ?2 WHERE id = ?1",
                params![election.as_str(), extra.as_secs() as i64],
            )?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!("no election {election}")));
            }
            append_audit_in(&tx, &audit, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn otp_status(&self, election: &ElectionId, voter: &Username) -> Result<Option<OtpStatus>, StoreError> {
        let (election, voter) = (election.clone(), voter.clone());
        self.read_here(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let code = tx
                .query_row(
                    "SELECT last_request_at, sends, locked_until FROM otp_codes WHERE election_id = ?1 AND voter = ?2",
                    params![election.as_str(), voter.as_str()],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u32>(1)?, r.get::<_, i64>(2)?)),
                )
                .optional()?;
            let Some((last_request_at, sends, locked_until)) = code else {
                return Ok(None);
            };
            let mail = tx
                .query_row(
                    "SELECT state, created_at, sent_at, sender, attempts, last_error, next_attempt_at FROM outbox
                     WHERE election_id = ?1 AND voter = ?2 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    params![election.as_str(), voter.as_str()],
                    |r| {
                        let state: String = r.get(0)?;
                        Ok(MailStatus {
                            state: MailState::parse(&state).unwrap_or(MailState::Queued),
                            queued_at: ts(r.get(1)?),
                            sent_at: r.get::<_, Option<i64>>(2)?.map(ts),
                            from: r.get(3)?,
                            attempts: r.get(4)?,
                            last_error: r.get(5)?,
                            next_attempt_at: ts(r.get(6)?),
                        })
                    },
                )
                .optional()?;
            Ok(Some(OtpStatus {
                mail,
                last_request_at: ts(last_request_at),
                sends,
                locked_until: (locked_until > Timestamp::now().as_second()).then(|| ts(locked_until)),
            }))
        })
    }

    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            append_audit_in(&tx, &entry, now)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        self.run(move |c| sqlite_console::list_audit(c, after, limit)).await
    }

    async fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        self.run(sqlite_console::verify_audit).await
    }

    #[tracing::instrument(skip_all, fields(election = %id))]
    async fn edit_election(
        &self,
        id: &ElectionId,
        edit: &ElectionEdit,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (id, edit, audit) = (id.clone(), edit.clone(), audit.clone());
        self.run(move |c| sqlite_console::edit_election(c, &id, &edit, &audit, now)).await
    }

    async fn nominate_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &NewCandidate,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (e, k, c, a) = (election.clone(), contest.clone(), candidate.clone(), audit.clone());
        self.run(move |conn| sqlite_console::nominate_candidate(conn, &e, &k, &c, &a, now)).await
    }

    async fn decide_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &CandidateId,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (e, k, c, r, a) = (election.clone(), contest.clone(), candidate.clone(), reason.to_owned(), audit.clone());
        self.run(move |conn| sqlite_console::decide_candidate(conn, &e, &k, &c, decision, &r, &a, now)).await
    }

    async fn list_candidates(
        &self,
        election: &ElectionId,
        after: Option<(&ContestId, &CandidateId)>,
        limit: u32,
    ) -> Result<Vec<CandidateRow>, StoreError> {
        let election = election.clone();
        let after = after.map(|(k, c)| (k.to_string(), c.to_string()));
        self.run(move |conn| sqlite_console::list_candidates(conn, &election, after, limit)).await
    }

    async fn extend_close(
        &self,
        election: &ElectionId,
        new_close: Timestamp,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        let (election, audit) = (election.clone(), audit.clone());
        self.run(move |conn| sqlite_console::extend_close(conn, &election, new_close, &audit, now)).await
    }

    async fn close_now(
        &self,
        election: &ElectionId,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Timestamp, ChangeError> {
        let (election, audit) = (election.clone(), audit.clone());
        self.run(move |conn| sqlite_console::close_now(conn, &election, &audit, now)).await
    }

    async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError> {
        let election = election.clone();
        self.run(move |conn| sqlite_console::tally(conn, &election)).await
    }

    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError> {
        let (election, after) = (election.clone(), after.map(|u| u.to_string()));
        self.run(move |conn| sqlite_console::list_roll(conn, &election, after, limit)).await
    }

    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError> {
        let election = election.clone();
        self.run(move |conn| sqlite_console::roll_size(conn, &election)).await
    }

    async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (job, lease, audit) = (job.clone(), lease.clone(), audit.clone());
        self.run(move |conn| sqlite_console::create_import(conn, &job, &lease, &audit, now)).await
    }

    async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError> {
        let (job, lease) = (job.to_owned(), lease.clone());
        self.run(move |conn| sqlite_console::claim_import(conn, &job, &lease, now)).await
    }

    async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, lease, chunk) = (job.to_owned(), lease.clone(), chunk.clone());
        self.run(move |conn| sqlite_console::import_chunk(conn, &job, &lease, &chunk, now)).await
    }

    async fn finish_import(
        &self,
        job: &str,
        owner: &str,
        state: ImportState,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError> {
        let (job, owner, message) = (job.to_owned(), owner.to_owned(), message.map(str::to_owned));
        self.run(move |conn| sqlite_console::finish_import(conn, &job, &owner, state, message.as_deref(), now)).await
    }

    async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError> {
        let job = job.to_owned();
        self.run(move |conn| sqlite_console::import_job(conn, &job)).await
    }

    async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError> {
        let job = job.to_owned();
        self.run(move |conn| sqlite_console::import_errors(conn, &job, after_line, limit)).await
    }

    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        self.run(sqlite_console::running_imports).await
    }

    async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError> {
        let counts = counts.to_vec();
        self.run(move |conn| sqlite_console::record_activity(conn, &counts)).await
    }

    async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError> {
        let election = election.clone();
        self.run(move |conn| sqlite_console::activity(conn, &election, since_minute)).await
    }

    async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError> {
        let election = election.clone();
        self.run(move |conn| sqlite_console::outbox_summary(conn, &election, now)).await
    }

    async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError> {
        let election = election.clone();
        self.run(move |conn| sqlite_console::list_outbox(conn, &election, before, limit)).await
    }

    async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (service, detail) = (service.to_owned(), detail.clone());
        self.run(move |conn| sqlite_console::report_status(conn, &service, ok, &detail, now)).await
    }

    async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError> {
        self.run(sqlite_console::service_status).await
    }
}

/// Message outcomes, for `record_outcomes` and `finish_batch`. A message whose lease
/// passed to another worker is left alone.
fn write_outcomes(
    tx: &rusqlite::Transaction<'_>,
    worker: &str,
    outcomes: &[MailOutcome],
    now: Timestamp,
) -> Result<(), StoreError> {
    let now_s = now.as_second();
    {
        let mut tried = tx.prepare(
            "UPDATE outbox SET state = ?3, account = ?4, sender = COALESCE(?5, sender),
                         sent_at = ?6, last_error = ?7, next_attempt_at = COALESCE(?8, next_attempt_at),
                         attempts = attempts + 1, lease_owner = NULL, lease_until = NULL, updated_at = ?9
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'
                     RETURNING election_id",
        )?;
        let mut released = tx.prepare(
            "UPDATE outbox SET state = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END,
                         lease_owner = NULL, lease_until = NULL, updated_at = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'sending'",
        )?;
        for o in outcomes {
            let (state, account, from, sent_at, error, retry_at) = match &o.result {
                MailResult::Sent { account, from } => ("sent", account, Some(from), Some(now_s), None, None),
                MailResult::Deferred { account, error, retry_at } => {
                    ("deferred", account, None, None, Some(error), Some(retry_at.as_second()))
                }
                MailResult::Failed { account, error } => ("failed", account, None, None, Some(error), None),
                MailResult::Released => {
                    released.execute(params![o.id.to_string(), worker, now_s])?;
                    continue;
                }
            };
            let election: Option<String> = tried
                .query_row(
                    params![o.id.to_string(), worker, state, account, from, sent_at, error, retry_at, now_s],
                    |r| r.get(0),
                )
                .optional()?;
            let counted = match state {
                "sent" => Some(Activity::CodeSent),
                "failed" => Some(Activity::CodeFailed),
                _ => None,
            };
            if let (Some(election), Some(kind)) = (election, counted) {
                sqlite_console::bump_activity(tx, &election, kind, 1, now)?;
            }
        }
    }
    Ok(())
}

/// The election, its contests and candidates, inside the caller's transaction.
fn insert_election(tx: &rusqlite::Transaction<'_>, e: &NewElection, now: Timestamp) -> Result<(), StoreError> {
    let inserted = tx.execute(
        "INSERT INTO elections (id, title, opens_at, closes_at, time_zone, grace_secs, created_at, eligibility,
                                quorum_pct, otp_validity_secs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            e.id.as_str(),
            e.title,
            e.opens_at.as_second(),
            e.closes_at.as_second(),
            e.time_zone,
            e.grace_secs as i64,
            now.as_second(),
            serde_json::to_string(&e.eligibility).map_err(|e| StoreError::Other(e.into()))?,
            e.quorum_pct,
            e.otp_validity_secs as i64
        ],
    );
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(StoreError::Conflict(format!("election {} already exists", e.id)));
        }
        other => other?,
    };
    for (i, contest) in e.contests.iter().enumerate() {
        tx.execute(
            "INSERT INTO contests (election_id, id, title, position) VALUES (?1, ?2, ?3, ?4)",
            params![e.id.as_str(), contest.id.as_str(), contest.title, i as i64],
        )?;
        for (j, c) in contest.candidates.iter().enumerate() {
            tx.execute(
                "INSERT INTO candidates (election_id, contest_id, id, name, statement, status, position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    e.id.as_str(),
                    contest.id.as_str(),
                    c.id.as_str(),
                    c.name,
                    c.statement,
                    c.status.as_str(),
                    j as i64
                ],
            )?;
        }
    }
    Ok(())
}

/// Appends to the hash-chained audit log inside the caller's transaction, so an audited
/// change and its audit line commit together.
pub(super) fn append_audit_in(
    tx: &rusqlite::Transaction<'_>,
    entry: &AuditEntry,
    now: Timestamp,
) -> Result<(), StoreError> {
    let prev: String = tx
        .query_row("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let detail = entry.detail.to_string();
    let election = entry.election.as_ref().map(|e| e.as_str().to_owned());
    let hash =
        audit_hash(&prev, now.as_second(), &entry.actor, &entry.action, election.as_deref().unwrap_or(""), &detail);
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, election_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![now.as_second(), entry.actor, entry.action, election, detail, prev, hash],
    )?;
    Ok(())
}

/// Adds or updates roll entries inside the caller's transaction, counting what changed.
pub(super) fn upsert_roll(
    tx: &rusqlite::Transaction<'_>,
    election: &ElectionId,
    entries: &[RollEntry],
) -> Result<RollImport, StoreError> {
    let mut stats = RollImport::default();
    let mut current = tx.prepare_cached("SELECT email, name FROM voter_roll WHERE election_id = ?1 AND uid = ?2")?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO voter_roll (election_id, uid, email, name) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (election_id, uid) DO UPDATE SET email = excluded.email, name = excluded.name",
    )?;
    for e in entries {
        let email = e.email.as_ref().map(|m| m.as_str().to_owned());
        let before: Option<(Option<String>, Option<String>)> =
            current.query_row(params![election.as_str(), e.uid.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        match before {
            Some((m, n)) if m == email && n == e.name => stats.unchanged += 1,
            Some(_) => {
                upsert.execute(params![election.as_str(), e.uid.as_str(), email, e.name])?;
                stats.updated += 1;
            }
            None => {
                upsert.execute(params![election.as_str(), e.uid.as_str(), email, e.name])?;
                stats.added += 1;
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_cast_before_the_ballot_box_rekey_survive_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        // A database as version 4 left it, with two ballots in it.
        let tx = conn.transaction().unwrap();
        for m in &MIGRATIONS[..4] {
            tx.execute_batch(m).unwrap();
        }
        tx.pragma_update(None, "user_version", 4).unwrap();
        tx.execute_batch(
            "INSERT INTO ballots (id, election_id, receipt, choices) VALUES
               ('b1', 'demo', 'R1', '{\"pres\":\"ada\"}'), ('b2', 'demo', 'R2', '{}');",
        )
        .unwrap();
        tx.commit().unwrap();

        migrate(&mut conn).unwrap();
        let rows: Vec<(String, String, String)> = conn
            .prepare("SELECT election_id, receipt, choices FROM ballots ORDER BY receipt")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [("demo".into(), "R1".into(), "{\"pres\":\"ada\"}".into()), ("demo".into(), "R2".into(), "{}".into())]
        );
    }

    #[test]
    fn voters_stored_under_other_spellings_are_folded_and_duplicates_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        let before = MIGRATIONS.len() - 1;
        let tx = conn.transaction().unwrap();
        for m in &MIGRATIONS[..before] {
            tx.execute_batch(m).unwrap();
        }
        tx.pragma_update(None, "user_version", before as i64).unwrap();
        tx.execute_batch(
            "INSERT INTO participation (election_id, voter) VALUES
               ('demo', 'ST000001'), ('demo', 'st000002'), ('demo', 'St000002');
             INSERT INTO voter_roll (election_id, uid) VALUES ('demo', 'Jane.Doe');",
        )
        .unwrap();
        tx.commit().unwrap();

        migrate(&mut conn).unwrap();
        let list = |sql: &str| -> Vec<String> {
            conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        // The one that collides stays: it was a second ballot, and participation = ballots.
        assert_eq!(list("SELECT voter FROM participation ORDER BY voter"), ["St000002", "st000001", "st000002"]);
        assert_eq!(list("SELECT uid FROM voter_roll"), ["jane.doe"]);
    }

    /// The delivery percentiles once counted only the 100,000 fastest messages, so past
    /// that they read low. 150,000 sent in the last 10 minutes, 100,000 of them in 1 s
    /// and 50,000 in 30 s: the 95th percentile is 30 s (it read 1 s).
    #[test]
    fn delivery_percentiles_count_every_message_past_a_hundred_thousand() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("turnout.db")).unwrap();
        migrate(&mut conn).unwrap();
        let now = Timestamp::now();
        let sent_at = now.as_second() - 60;
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
             INSERT INTO outbox (id, election_id, voter, recipient, generation, issued_at, state,
                                 next_attempt_at, created_at, updated_at, sent_at)
             SELECT 'm' || i, 'demo', 'v' || i, 'v@students.turnout.test', 1, ?1, 'sent',
                    ?1, ?1 - CASE WHEN i <= 100000 THEN 1 ELSE 30 END, ?1, ?1 FROM n",
            [sent_at],
        )
        .unwrap();
        let summary = sqlite_console::outbox_summary(&mut conn, &ElectionId::parse("demo").unwrap(), now).unwrap();
        assert_eq!(summary.sent, 150_000);
        assert_eq!((summary.latency_p50_secs, summary.latency_p95_secs), (Some(1), Some(30)));
    }
}
