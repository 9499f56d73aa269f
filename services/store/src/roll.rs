//! The voter roll: who may vote in a roll election, with the email the roll gives them.

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
}

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

    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError>;

    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError>;
}
