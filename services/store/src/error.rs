//! The store's errors every aggregate shares: an unavailable or conflicting store, and a
//! refused field. The HTTP edge (core) turns them into the
//! one error body; nothing here knows about HTTP.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Busy, locked, disk full, I/O: worth retrying later; answered as 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A value the port refuses before it reaches an adapter: which field, and the rule it
/// breaks (the HTTP edge answers it as a 422 naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: &'static str,
}

impl InvalidField {
    pub fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}
