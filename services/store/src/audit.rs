//! The audit log: entries chained by hash, so any edit, insertion or removal is found.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use turnout_domain::ElectionId;

use crate::StoreError;

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub election: Option<ElectionId>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub election: Option<String>,
    pub detail: serde_json::Value,
    pub hash: String,
}

/// The outcome of re-walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    pub entries: u64,
    /// The first entry whose hash or link does not match, and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// The hash-chained audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError>;

    /// Entries after `after` (a sequence number), oldest first, at most `limit`.
    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// Re-walks the whole chain: any edited, inserted or removed entry is found.
    async fn verify_audit(&self) -> Result<AuditVerification, StoreError>;
}
