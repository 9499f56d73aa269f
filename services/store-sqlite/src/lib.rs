//! The embedded SQLite adapter: one file shared by every service process on the host.
//!
//! WAL mode lets readers run beside the single writer; every writing operation runs in a
//! `BEGIN IMMEDIATE` transaction, so the write lock is taken up front and two processes
//! never interleave half-done steps. `busy_timeout` turns lock contention into a short
//! wait; past it, the caller gets `StoreError::Unavailable` (a 503), never a corrupt state.
//!
//! Layout: one module per aggregate, each implementing its port trait for `SqliteStore`
//! (`elections`, `nominations`, `roll`, `sign_in`, `ballot_box`, `codes`, `outbox`, `notices`,
//! `senders`, `staff`, `audit`, `imports`, `activity`); group commit (`group_commit`) and its two writers
//! (`ballot_writer`, `sign_in_writer`); `migrate` (the numbered `.sql` files in `migrations/`); `upgrade` (the one-time
//! steps that need the keys, run by the operator: sealing old ballots, keying the audit
//! chain); `error`
//! (driver errors in the port's terms); `metrics` (operation latency).

mod activity;
mod audit;
mod ballot_box;
mod ballot_writer;
mod codes;
mod elections;
mod error;
mod group_commit;
mod imports;
pub mod metrics;
mod migrate;
mod nominations;
mod notices;
mod outbox;
mod roll;
mod senders;
mod sign_in;
mod sign_in_writer;
mod staff;
mod upgrade;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use deadpool_sqlite::rusqlite::{self, Connection};
use deadpool_sqlite::{Config, Hook, HookError, Pool, PoolError, Runtime};
use turnout_store::{StoreError, StoreKeys};

use ballot_writer::BallotWriter;
use error::store_error;
use sign_in_writer::ThrottleWriter;

/// Per-connection settings. `synchronous=FULL`: an acknowledged vote survives power loss,
/// not just a process crash.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidQuery);
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
}

pub struct SqliteStore {
    pool: Pool,
    /// The server's keys: ballots are sealed and the audit chain hashed with them.
    keys: StoreKeys,
    /// Casts go through one group-committing writer (see `ballot_writer`).
    ballots: BallotWriter,
    /// Sign-in throttle writes, batched on their own connection (see `sign_in_writer`).
    throttle: ThrottleWriter,
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
    /// Opens (creating if needed) the database file and brings its schema up to date. The
    /// upgrades that need the keys are the operator's (`Upgrades`, `upgrade`). Safe to call
    /// from several processes at once.
    pub async fn open(path: &Path, keys: StoreKeys) -> Result<Self, StoreError> {
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
        let throttle = ThrottleWriter::start(path).context("starting the throttle writer")?;
        let id = NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = Self { pool, keys, ballots, throttle, path: path.to_path_buf(), id };
        store.run(|conn| migrate::migrate(conn).map_err(store_error)).await?;
        store.run(upgrade::prepare).await?;
        Ok(store)
    }

    /// Runs `f` on a pooled connection in the blocking thread pool.
    pub(crate) async fn run<R, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = self.pool.get().await.map_err(|e| {
            E::from(match e {
                PoolError::Backend(e) => store_error(e),
                other => StoreError::Unavailable(format!("no database connection free: {other}")),
            })
        })?;
        let op = metrics::op_name(std::any::type_name_of_val(&f));
        let started = std::time::Instant::now();
        let result = conn
            .interact(f)
            .await
            .map_err(|e| E::from(StoreError::Other(anyhow::anyhow!("database task failed: {e}"))))?;
        metrics::store_operation(op, started.elapsed().as_secs_f64());
        result
    }

    /// Runs a short read (one or two indexed lookups) right here, on the calling thread's
    /// own connection, with cached statements. The blocking pool costs two thread
    /// switches per call, more than such a read itself: a sign-in makes two of them.
    /// Only for reads: a write here would hold the database lock on an async thread.
    pub(crate) fn read_here<R, E>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let op = metrics::op_name(std::any::type_name_of_val(&f));
        let started = std::time::Instant::now();
        let result = READERS.with(|cell| {
            let mut readers = cell.borrow_mut();
            let at = match readers.iter().position(|(id, _)| *id == self.id) {
                Some(at) => at,
                None => {
                    let conn = open_reader(&self.path).map_err(|e| E::from(store_error(e)))?;
                    if readers.len() >= READERS_PER_THREAD {
                        readers.remove(0);
                    }
                    readers.push((self.id, conn));
                    readers.len() - 1
                }
            };
            f(&readers[at].1)
        });
        metrics::store_operation(op, started.elapsed().as_secs_f64());
        result
    }
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
impl turnout_store::Upgrades for SqliteStore {
    async fn pending_upgrades(&self) -> Result<Vec<String>, StoreError> {
        self.run(upgrade::pending).await
    }

    async fn run_upgrades(&self) -> Result<Vec<String>, StoreError> {
        let keys = self.keys.clone();
        self.run(move |conn| upgrade::run(conn, &keys)).await
    }
}
