//! The voter roll: who may vote in a roll election, with the email the roll gives them
//! and any named columns (`faculty`, `year`, ...) a contest's constituency reads.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;

use turnout_domain::{ElectionId, Username, VoterEmail};

use crate::StoreError;

/// One line of a voter roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollEntry {
    pub uid: Username,
    pub email: Option<VoterEmail>,
    pub name: Option<String>,
    /// Named columns beside username, email and name (at most `MAX_ROLL_COLUMNS`).
    pub columns: BTreeMap<String, String>,
}

/// Most named columns a roll may carry, and the longest value one may hold.
pub const MAX_ROLL_COLUMNS: usize = 10;
pub const MAX_COLUMN_VALUE: usize = 200;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RollImport {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// One line of the voter roll, for the console's paginated view.
#[derive(Debug, Clone, Serialize)]
pub struct RollRow {
    pub uid: Username,
    pub email: Option<String>,
    pub name: Option<String>,
    pub columns: BTreeMap<String, String>,
}

/// The voter roll of an election.
#[async_trait]
pub trait Roll: Send + Sync {
    /// Adds or updates roll entries (callers send chunks of at most 1,000); idempotent.
    async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError>;

    /// Which of `elections` have `uid` on their roll, with the roll's email if it has one.
    async fn roll_memberships(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError>;

    /// The named columns of `uid`'s roll row in each of `elections` that has one.
    async fn roll_columns(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, BTreeMap<String, String>)>, StoreError>;

    /// How many of the election's roll rows have `value` in `column` (trimmed, any case).
    async fn roll_count_where(&self, election: &ElectionId, column: &str, value: &str) -> Result<u64, StoreError>;

    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError>;

    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError>;
}
