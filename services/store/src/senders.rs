//! Sender accounts: each one's limits, the sends a reservation grants, what a batch
//! reports back, and their health.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use crate::{MailOutcome, StoreError};

/// A sender account's limits, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLimits {
    pub name: String,
    pub per_minute: u32,
    pub max_concurrent: u32,
    pub daily_cap: u32,
}

impl AccountLimits {
    /// Seconds between two sends: 2% slower than the rate, so jitter on the wire never
    /// puts more than `per_minute` messages in any minute at the provider.
    pub fn interval_secs(&self) -> f64 {
        60.0 / f64::from(self.per_minute.max(1)) * 1.02
    }
}

/// Sends granted on one account: start each at its time, at most `slots` at once.
#[derive(Debug, Clone, PartialEq)]
pub struct SendGrant {
    pub account: String,
    pub slots: u32,
    pub send_at: Vec<Timestamp>,
    /// The account's schedule after this grant, to hand unused sends back.
    pub tat_after: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub grants: Vec<SendGrant>,
    /// When no account had capacity: the earliest moment one will.
    pub next_capacity_at: Option<Timestamp>,
}

/// What one batch did to one account.
#[derive(Debug, Clone, Default)]
pub struct AccountReport {
    pub account: String,
    /// Granted sends that were not used (handed back to the schedule and the daily cap).
    pub unused: Vec<Timestamp>,
    pub tat_after: f64,
    pub interval_secs: f64,
    pub sent: u32,
    pub failed: u32,
    /// `421 4.7.0`-style answers: too many in a row quarantine the account.
    pub strikes: u32,
    /// A quota or block answer: quarantine now, for this reason.
    pub quarantine: Option<String>,
    pub last_error: Option<String>,
}

impl AccountReport {
    pub fn for_grant(grant: &SendGrant, limits: &AccountLimits) -> Self {
        Self {
            account: grant.account.clone(),
            tat_after: grant.tat_after,
            interval_secs: limits.interval_secs(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QuarantinePolicy {
    pub period: Duration,
    /// Consecutive strikes that quarantine an account.
    pub strike_limit: u32,
}

/// One account's health, for officers and readiness.
#[derive(Debug, Clone, Serialize)]
pub struct SenderHealth {
    pub account: String,
    pub quarantined_until: Option<Timestamp>,
    pub quarantine_reason: Option<String>,
    pub sent_today: u32,
    pub sent_total: u64,
    pub failed_total: u64,
    pub last_error: Option<String>,
    pub last_sent_at: Option<Timestamp>,
}

/// The pool of sender accounts: rate, daily cap, session slots and quarantine.
#[async_trait]
pub trait Senders: Send + Sync {
    /// Grants up to `wanted` sends across healthy accounts (in the given order of
    /// preference), spaced by each account's rate, inside its daily cap, with session
    /// slots leased to `holder` for `lease`. Shared by every OTP instance.
    async fn reserve_sends(
        &self,
        holder: &str,
        accounts: &[AccountLimits],
        wanted: u32,
        horizon: Duration,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;

    async fn sender_health(&self) -> Result<Vec<SenderHealth>, StoreError>;

    /// Ends a round in one transaction: the last outcomes, account health, unused sends
    /// handed back, and `worker`'s session slots released.
    async fn finish_batch(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        reports: &[AccountReport],
        policy: QuarantinePolicy,
        now: Timestamp,
    ) -> Result<(), StoreError>;
}
