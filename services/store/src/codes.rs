//! One-time codes: the policies that bound them and what an issue or an attempt did.
//! Codes themselves are never stored: they are derived again at send and check time.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use turnout_domain::{ElectionId, Username, VoterEmail};

use crate::{AuditEntry, MailStatus, StoreError};

/// Rules for issuing a code, from configuration (and later, officer overrides).
#[derive(Debug, Clone, Copy)]
pub struct OtpPolicy {
    pub validity: Duration,
    pub cooldown: Duration,
    pub max_sends: u32,
    pub max_attempts: u32,
}

/// When repeated voided codes lock a voter out for a while.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    pub after_voids: u32,
    pub period: Duration,
}

/// What an issue did: the code's identity (never the code itself) and the queued mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpIssue {
    pub generation: u32,
    pub issued_at: Timestamp,
    /// True when the still-valid current code was queued again rather than a new one.
    pub resent: bool,
    pub mail_id: Uuid,
}

/// One verification attempt, already counted against the code's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpAttempt {
    pub generation: u32,
    pub issued_at: Timestamp,
    pub attempts_used: u32,
}

/// The voter's code state as the OTP page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OtpStatus {
    pub mail: Option<MailStatus>,
    pub last_request_at: Timestamp,
    pub sends: u32,
    pub locked_until: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("a code was sent moments ago")]
    Cooldown { retry_after_secs: u64 },
    #[error("the most codes one voter may request has been reached")]
    SendLimit,
    #[error("locked after repeated wrong codes")]
    Locked { until: Timestamp },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("no active code")]
    NoActiveCode,
    #[error("too many wrong codes")]
    TooManyAttempts,
    #[error("locked after repeated wrong codes")]
    Locked { until: Timestamp },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One-time codes: issue, attempt, consume, lock; never the code itself.
#[async_trait]
pub trait Codes: Send + Sync {
    /// Issues (or re-issues the still-valid) code and queues its mail, atomically.
    async fn issue_otp(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        policy: OtpPolicy,
        now: Timestamp,
    ) -> Result<OtpIssue, IssueError>;

    /// Counts one verification attempt against the current code, refusing past the limit.
    async fn begin_otp_attempt(
        &self,
        election: &ElectionId,
        voter: &Username,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<OtpAttempt, AttemptError>;

    /// Marks the code used so it can't verify a second session.
    async fn consume_otp(&self, election: &ElectionId, voter: &Username, generation: u32) -> Result<(), StoreError>;

    /// Counts a code voided by wrong tries; enough of them lock the voter. Returns the
    /// lock's end when this void locked them.
    async fn record_otp_void(
        &self,
        election: &ElectionId,
        voter: &Username,
        policy: LockPolicy,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;

    async fn otp_status(&self, election: &ElectionId, voter: &Username) -> Result<Option<OtpStatus>, StoreError>;

    /// Officers widen code acceptance for an election (never narrower than configured);
    /// audited in the same step.
    async fn set_otp_extra(
        &self,
        election: &ElectionId,
        extra: Duration,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}
