//! The live dashboard's counts (per election, kind and minute) and each service's
//! last report; `ping` for readiness.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use turnout_domain::ElectionId;

use crate::StoreError;

/// Counted events, per minute, for the live dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Login,
    CodeRequested,
    CodeSent,
    CodeFailed,
    CodeVerified,
    Ballot,
}

impl Activity {
    pub const ALL: [Activity; 6] = [
        Activity::Login,
        Activity::CodeRequested,
        Activity::CodeSent,
        Activity::CodeFailed,
        Activity::CodeVerified,
        Activity::Ballot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Login => "login",
            Activity::CodeRequested => "code_requested",
            Activity::CodeSent => "code_sent",
            Activity::CodeFailed => "code_failed",
            Activity::CodeVerified => "code_verified",
            Activity::Ballot => "ballot",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// Events not tied to one election (sign-ins) are counted under this key.
pub const ALL_ELECTIONS: &str = "";

/// `n` events of `kind` in the minute starting at `minute` (unix seconds / 60).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityCount {
    pub election: String,
    pub kind: Activity,
    pub minute: i64,
    pub n: u64,
}

/// What a service last reported about itself (e.g. auth: directory and breaker).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub ok: bool,
    pub detail: serde_json::Value,
    pub at: Timestamp,
}

/// What the live dashboard and readiness read: activity per minute, each service's
/// last report, and a round trip to the store.
#[async_trait]
pub trait ActivityLog: Send + Sync {
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Adds counts (merged per election, kind and minute).
    async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError>;

    /// Counts for `election` (and the all-elections key) from `since_minute` on.
    async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError>;

    async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError>;
}
