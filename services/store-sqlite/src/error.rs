//! SQLite's errors in the port's terms. The port cannot know the driver's error type
//! (and Rust's orphan rule keeps `From<rusqlite::Error> for StoreError` out of this crate),
//! so a driver result becomes a store result through `SqlResult::sql()`, at each `?`.

use deadpool_sqlite::rusqlite::{self, ErrorCode as SqliteCode};
use turnout_store::StoreError;

/// A driver error as the port's `StoreError`: busy, locked, full or unreadable is
/// "unavailable" (a 503, worth retrying), a constraint is a conflict, the rest is a bug.
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    {
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

/// rusqlite errors are not `Clone`: one `StoreError` per caller, classified the usual way.
pub(crate) fn copied_store_error(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => store_error(rusqlite::Error::SqliteFailure(*f, msg.clone())),
        other => StoreError::Other(anyhow::anyhow!("sqlite: {other}")),
    }
}

/// `.sql()?`: a driver result, classified by `store_error`. The `?` then converts the
/// `StoreError` into the operation's own error (`CastError`, `ChangeError`, ...).
pub(crate) trait SqlResult<T> {
    fn sql(self) -> Result<T, StoreError>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Decodes a column that went in through a domain type; a failure means the file was
/// edited by hand, reported as a conversion error rather than a panic.
pub(crate) fn parsed<T, E: std::error::Error + Send + Sync + 'static>(
    idx: usize,
    raw: String,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    parse(&raw).map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}
