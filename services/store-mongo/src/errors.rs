//! What a MongoDB error means for Turnout. The driver's error is reduced to plain facts
//! (`Facts`), and `classify` decides from those alone, so the decision is unit-tested
//! without a server:
//!
//! - 11000 (duplicate key) is a conflict: a second ballot, an existing election;
//! - a write-concern error (the write did not reach a majority, or its journal, in
//!   time), a network error, no reachable primary or a timeout: unavailable, worth
//!   retrying (503 with Retry-After): the write may or may not have happened, and every
//!   Turnout write is safe to repeat or is refused the second time;
//! - `TransientTransactionError` (a write conflict inside a transaction): run the
//!   transaction again;
//! - anything else: an internal error, logged with its cause.

use mongodb::error::{Error, ErrorKind, TRANSIENT_TRANSACTION_ERROR, WriteFailure};

use turnout_store::StoreError;

pub const DUPLICATE_KEY: i32 = 11000;
/// "A collection of this name already exists" (a `create` run twice).
pub const NAMESPACE_EXISTS: i32 = 48;
/// Server codes for "the write concern was not satisfied in time" and friends.
const WRITE_CONCERN_CODES: [i32; 3] = [64, 79, 100];
/// Server codes for "not primary" / "shutting down" / "interrupted" during an election.
const NOT_PRIMARY_CODES: [i32; 9] = [10107, 13435, 11602, 189, 91, 11600, 13436, 262, 50];

/// The parts of a driver error that decide what it means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The server's error code, when the server answered with one.
    pub code: Option<i32>,
    pub transient_transaction: bool,
    pub write_concern: bool,
    /// Network, pool, server selection or DNS trouble: no answer from a usable server.
    pub unreachable: bool,
}

impl Facts {
    pub fn of(e: &Error) -> Self {
        let mut facts =
            Facts { transient_transaction: e.contains_label(TRANSIENT_TRANSACTION_ERROR), ..Self::default() };
        match e.kind.as_ref() {
            ErrorKind::Write(WriteFailure::WriteError(w)) => facts.code = Some(w.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
                facts.code = Some(w.code);
                facts.write_concern = true;
            }
            ErrorKind::InsertMany(m) => {
                facts.code = m.write_errors.as_ref().and_then(|w| w.first()).map(|w| w.code);
                if let Some(w) = &m.write_concern_error {
                    facts.write_concern = true;
                    facts.code.get_or_insert(w.code);
                }
            }
            ErrorKind::Command(c) => facts.code = Some(c.code),
            ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => facts.unreachable = true,
            _ => {}
        }
        facts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    DuplicateKey,
    /// Run the transaction again.
    Retry,
    Unavailable,
    Other,
}

pub fn classify(f: &Facts) -> Class {
    if f.code == Some(DUPLICATE_KEY) {
        Class::DuplicateKey
    } else if f.transient_transaction {
        Class::Retry
    } else if f.write_concern
        || f.unreachable
        || f.code.is_some_and(|c| WRITE_CONCERN_CODES.contains(&c) || NOT_PRIMARY_CODES.contains(&c))
    {
        Class::Unavailable
    } else {
        Class::Other
    }
}

pub fn is_duplicate_key(e: &Error) -> bool {
    classify(&Facts::of(e)) == Class::DuplicateKey
}

pub fn store_error(e: &Error) -> StoreError {
    match classify(&Facts::of(e)) {
        Class::DuplicateKey => StoreError::Conflict("already exists".into()),
        // A conflict that outlasted the retries is still "try again shortly".
        Class::Retry | Class::Unavailable => StoreError::Unavailable(format!("mongodb: {e}")),
        Class::Other => StoreError::Other(anyhow::anyhow!("mongodb: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::error::{Error, ErrorKind};
    use turnout_store::StoreError;

    use super::{Class, Facts, classify, store_error};

    #[test]
    fn duplicate_keys_are_conflicts_even_inside_a_transaction() {
        let f = Facts { code: Some(11000), transient_transaction: true, ..Facts::default() };
        assert_eq!(classify(&f), Class::DuplicateKey);
    }

    #[test]
    fn write_conflicts_in_a_transaction_are_retried() {
        let f = Facts { code: Some(112), transient_transaction: true, ..Facts::default() };
        assert_eq!(classify(&f), Class::Retry);
    }

    #[test]
    fn unconfirmed_writes_and_lost_servers_are_unavailable() {
        for f in [
            Facts { code: Some(64), write_concern: true, ..Facts::default() },
            Facts { code: Some(100), ..Facts::default() },
            Facts { unreachable: true, ..Facts::default() },
            Facts { code: Some(10107), ..Facts::default() },
            Facts { code: Some(50), ..Facts::default() },
        ] {
            assert_eq!(classify(&f), Class::Unavailable, "{f:?}");
        }
    }

    #[test]
    fn anything_else_is_an_internal_error() {
        assert_eq!(classify(&Facts { code: Some(2), ..Facts::default() }), Class::Other);
        assert_eq!(classify(&Facts::default()), Class::Other);
    }

    #[test]
    fn driver_errors_reduce_to_their_facts() {
        let io: Error = ErrorKind::Io(std::sync::Arc::new(std::io::Error::other("reset"))).into();
        assert_eq!(Facts::of(&io), Facts { unreachable: true, ..Facts::default() });
        assert!(matches!(store_error(&io), StoreError::Unavailable(_)));
    }
}
