//! Notices: mail to staff that is not a code (the audit chain's head at an election's
//! opening, window changes and close; later, decisions on nominations). They share the
//! sender pool with codes but wait behind them: the OTP mailer claims notices only in a
//! round that found no code due, one at a time.
//!
//! A notice is queued once per `(key, recipient)`: several ballot processes that each
//! see an election open queue one notice between them, and a restart queues nothing new.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use turnout_domain::VoterEmail;

use crate::{InvalidField, MailOutcome, MailState, StoreError};

/// Longest subject and body a notice may carry; longer ones are refused, not cut.
pub const MAX_NOTICE_SUBJECT: usize = 200;
pub const MAX_NOTICE_BODY: usize = 16 * 1024;
/// Sends tried before a notice is given up (each later one waits longer).
pub const NOTICE_ATTEMPTS: u32 = 8;

/// A notice to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What the notice is about, e.g. `anchor:spring-2026:opened`: with the recipient,
    /// it makes the notice unique.
    pub key: String,
    pub to: VoterEmail,
    pub subject: String,
    pub body: String,
}

/// A notice claimed for sending.
#[derive(Debug, Clone)]
pub struct NoticeMail {
    pub id: Uuid,
    pub key: String,
    pub to: VoterEmail,
    pub subject: String,
    pub body: String,
    /// Sends tried so far (not counting this one).
    pub attempts: u32,
    pub last_account: Option<String>,
    pub queued_at: Timestamp,
}

/// One notice as officers (and tests) see it.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRow {
    pub key: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub state: MailState,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// Checks a notice before it is queued.
pub fn check_notice(notice: &Notice) -> Result<(), InvalidField> {
    let bad = |why: &'static str| Err(InvalidField::new("notice", why));
    if notice.key.is_empty() || notice.key.len() > 200 {
        return bad("a notice's key is 1 to 200 characters");
    }
    if notice.subject.len() > MAX_NOTICE_SUBJECT || notice.subject.contains(['\r', '\n']) {
        return bad("a notice's subject is one line of at most 200 bytes");
    }
    if notice.body.len() > MAX_NOTICE_BODY {
        return bad("a notice's body is at most 16 KiB");
    }
    Ok(())
}

/// The notice queue every OTP instance drains and every service may fill.
#[async_trait]
pub trait Notices: Send + Sync {
    /// Queues each notice not already queued for its key and recipient; returns how many
    /// were new. All or none: one invalid notice refuses the lot.
    async fn queue_notices(&self, notices: &[Notice], now: Timestamp) -> Result<u32, StoreError>;

    /// Leases up to `limit` due notices to `worker` until `now + lease`, oldest first.
    async fn claim_notices(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<NoticeMail>, StoreError>;

    /// Records outcomes (ignoring notices whose lease was lost). A deferral past
    /// `NOTICE_ATTEMPTS` tries is recorded as a failure.
    async fn record_notice_outcomes(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The notices whose key starts with `key_prefix`, oldest first, at most `limit`.
    async fn notices(&self, key_prefix: &str, limit: u32) -> Result<Vec<NoticeRow>, StoreError>;
}
