//! Roll import jobs: held by a lease, applied chunk by chunk, resumable after a crash.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use turnout_domain::ElectionId;

use crate::{AuditEntry, StoreError};

/// Per-row errors kept for one roll import; beyond it only the count grows.
pub const MAX_IMPORT_ERRORS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportState {
    Running,
    Done,
    Failed,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A roll import: its progress survives a restart, so the import resumes where the last
/// committed chunk ended.
#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    pub id: String,
    pub election: ElectionId,
    pub actor: String,
    pub file_name: String,
    pub state: ImportState,
    /// Data rows in the file (known once it is uploaded).
    pub rows_total: u64,
    /// Data rows handled so far (imported or rejected), in whole chunks.
    pub rows_done: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ImportJob {
    /// A new job for an uploaded file of `rows_total` data rows, nothing imported yet.
    pub fn started(
        id: &str,
        election: &ElectionId,
        actor: &str,
        file_name: &str,
        rows_total: u64,
        now: Timestamp,
    ) -> Self {
        Self {
            id: id.to_owned(),
            election: election.clone(),
            actor: actor.to_owned(),
            file_name: file_name.to_owned(),
            state: ImportState::Running,
            rows_total,
            rows_done: 0,
            added: 0,
            updated: 0,
            unchanged: 0,
            rejected: 0,
            message: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Which run of an import may write to it, and until when. Every chunk renews it; once
/// `until` has passed without one (the process stopped), another process may take the
/// import over, and the old run's writes are refused from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLease {
    /// One per run of the import (not per process), so two runs never share it.
    pub owner: String,
    pub until: Timestamp,
}

/// A row the import refused: its line in the file and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// One committed chunk of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportChunk {
    pub entries: Vec<super::RollEntry>,
    pub errors: Vec<RowError>,
    /// Data rows this chunk covered (entries + errors).
    pub rows: u64,
}

/// Roll imports, resumable chunk by chunk.
#[async_trait]
pub trait Imports: Send + Sync {
    /// A new running import, held by `lease` from the start.
    async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Takes over a running import whose lease has passed (its process stopped): `None`
    /// when it is finished, unknown, or still held.
    async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError>;

    /// Applies one chunk (entries, row errors, progress) and renews the lease, in one
    /// transaction; a conflict, changing nothing, once `lease.owner` no longer holds it.
    async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError>;

    /// Ends the import; a conflict, changing nothing, unless `owner` holds it.
    async fn finish_import(
        &self,
        job: &str,
        owner: &str,
        state: ImportState,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError>;

    async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError>;

    async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError>;

    /// Imports still running (by this or another process, or left by one that stopped).
    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError>;
}
