//! The mail outbox: messages claimed under a lease, their outcomes, and the views
//! voters and officers get of them.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use turnout_domain::{ElectionId, Username, VoterEmail};

use crate::StoreError;

/// A claimed outbox message. It carries what is needed to derive the code at send time:
/// codes are never stored.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: Uuid,
    pub election: ElectionId,
    pub voter: Username,
    pub to: VoterEmail,
    pub generation: u32,
    pub issued_at: Timestamp,
    /// Sends tried so far (not counting this one).
    pub attempts: u32,
    /// The account the last try went through: a retry prefers another one.
    pub last_account: Option<String>,
    /// When the message entered the outbox (whole seconds).
    pub queued_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailState {
    Queued,
    Sending,
    Sent,
    Deferred,
    Failed,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Sent, Self::Deferred, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone)]
pub enum MailResult {
    Sent {
        account: String,
        from: String,
    },
    /// Try again at `retry_at` (on any account).
    Deferred {
        account: String,
        error: String,
        retry_at: Timestamp,
    },
    Failed {
        account: String,
        error: String,
    },
    /// Not tried (no capacity, or its account was quarantined mid-batch): back to the
    /// queue at once, without counting an attempt.
    Released,
}

#[derive(Debug, Clone)]
pub struct MailOutcome {
    pub id: Uuid,
    pub result: MailResult,
}

/// What a voter is shown about their latest code email.
#[derive(Debug, Clone, Serialize)]
pub struct MailStatus {
    pub state: MailState,
    pub queued_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub from: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Timestamp,
}

/// The outbox as officers see it for one election.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxSummary {
    /// Age of the oldest message not yet sent (queued, sending or deferred), in seconds.
    pub oldest_waiting_secs: Option<i64>,
    pub queued: u64,
    pub sending: u64,
    pub deferred: u64,
    pub sent: u64,
    pub failed: u64,
    /// Queue-to-sent seconds over mail sent in the last 10 minutes.
    pub latency_p50_secs: Option<i64>,
    pub latency_p95_secs: Option<i64>,
}

/// One outbox message, without the code (never stored) and with the address masked by
/// the caller.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    /// Position in the outbox, newest highest: the page cursor.
    pub seq: i64,
    pub id: String,
    pub voter: String,
    pub recipient: String,
    pub state: String,
    pub attempts: u32,
    pub account: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// One page of the console's outbox list, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxPage {
    pub rows: Vec<OutboxRow>,
    /// The `before` of the next (older) page; none on the last page.
    pub next_before: Option<i64>,
}

/// The mail outbox every OTP instance shares.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Leases up to `limit` due messages to `worker` until `now + lease`.
    async fn claim_mail(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<OutboxMail>, StoreError>;

    /// Records message outcomes in one transaction (ignoring messages whose lease was lost).
    async fn record_outcomes(&self, worker: &str, outcomes: &[MailOutcome], now: Timestamp) -> Result<(), StoreError>;

    async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError>;

    /// Newest first, before sequence `before` (exclusive) when given, at most `limit`
    /// rows (a page may hold more only when more rows share one sequence number than
    /// `limit`). Following `next_before` shows every row exactly once.
    async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError>;
}
