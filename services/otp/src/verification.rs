//! Issuing and verifying codes: the rules, free of HTTP. A failed or expired verification
//! only ever returns an error; it never sends mail. Mail goes out only from `request`.

use std::sync::Arc;

use jiff::Timestamp;
use turnout_core::domain::{OtpCode, Username, VoterEmail};
use turnout_core::store::{AttemptError, Codes, Election, IssueError, LockPolicy, OtpIssue, OtpPolicy};
use turnout_core::{ApiError, ErrorCode, Settings};

use crate::codes::CodeMaker;

pub struct Verifier {
    store: Arc<dyn Codes>,
    codes: Arc<CodeMaker>,
    policy: OtpPolicy,
    lock: LockPolicy,
}

fn locked(election: &Election, until: Timestamp) -> ApiError {
    let secs = until.duration_since(Timestamp::now()).as_secs().max(1) as u64;
    ApiError::new(
        ErrorCode::VoterLocked,
        format!(
            "Too many wrong codes. For your protection, codes are paused for you until {}. If you need help, contact the election office.",
            election.schedule.local_time(until)
        ),
    )
    .retry_after(secs)
    .with("locked_until", until.to_string())
}

impl Verifier {
    pub fn new(settings: &Settings, store: Arc<dyn Codes>, codes: Arc<CodeMaker>) -> Self {
        let otp = &settings.otp;
        let policy = OtpPolicy {
            validity: otp.validity,
            cooldown: otp.resend_cooldown,
            max_sends: otp.max_sends,
            max_attempts: otp.max_attempts,
        };
        let lock = LockPolicy { after_voids: otp.lock_after_voids.max(1), period: otp.lock_period };
        Self { store, codes, policy, lock }
    }

    /// The rules for this election: its own code validity when it sets one.
    pub fn policy(&self, election: &Election) -> OtpPolicy {
        OtpPolicy { validity: election.otp_validity.unwrap_or(self.policy.validity), ..self.policy }
    }

    /// Queues the code mail (the same code while it is still fresh). Explicit requests only.
    pub async fn request(
        &self,
        election: &Election,
        voter: &Username,
        to: &VoterEmail,
        now: Timestamp,
    ) -> Result<OtpIssue, ApiError> {
        self.store.issue_otp(&election.id, voter, to, self.policy(election), now).await.map_err(|e| match e {
            IssueError::Cooldown { retry_after_secs } => ApiError::new(
                ErrorCode::ResendCooldown,
                format!("A code was sent moments ago. You can ask again in {retry_after_secs} seconds; check your spam folder meanwhile."),
            )
            .retry_after(retry_after_secs),
            IssueError::SendLimit => ApiError::new(
                ErrorCode::ResendLimit,
                format!(
                    "You have asked for {} codes already. Check your inbox and spam folder, or contact the election office.",
                    self.policy.max_sends
                ),
            ),
            IssueError::Locked { until } => locked(election, until),
            IssueError::Store(e) => e.into(),
        })
    }

    /// Checks a typed code. Every attempt counts against the code's limit before the
    /// comparison, so concurrent guesses can't exceed it. Acceptance is the configured
    /// validity plus whatever officers added for this election.
    pub async fn verify(
        &self,
        election: &Election,
        voter: &Username,
        typed: &OtpCode,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let max = self.policy.max_attempts;
        let attempt = self.store.begin_otp_attempt(&election.id, voter, max, now).await.map_err(|e| match e {
            AttemptError::NoActiveCode => {
                ApiError::new(ErrorCode::NoActiveCode, "There is no active code for you. Ask for a code first.")
            }
            AttemptError::TooManyAttempts => ApiError::new(
                ErrorCode::TooManyAttempts,
                format!("That code was entered wrongly {max} times and no longer works. Ask for a new code."),
            ),
            AttemptError::Locked { until } => locked(election, until),
            AttemptError::Store(e) => e.into(),
        })?;
        if now > attempt.issued_at + election.code_acceptance(self.policy.validity) {
            return Err(ApiError::new(ErrorCode::CodeExpired, "This code has expired. Ask for a new code."));
        }
        if self.codes.matches(&election.id, voter, attempt.generation, attempt.issued_at, typed) {
            self.store.consume_otp(&election.id, voter, attempt.generation).await?;
            return Ok(());
        }
        let left = max.saturating_sub(attempt.attempts_used);
        if left > 0 {
            let tries = if left == 1 { "try" } else { "tries" };
            return Err(ApiError::new(
                ErrorCode::WrongCode,
                format!("That code is not right. You have {left} more {tries}."),
            )
            .with("attempts_left", left));
        }
        // This wrong try voided the code; enough voided codes lock the voter for a while.
        if let Some(until) = self.store.record_otp_void(&election.id, voter, self.lock, now).await? {
            tracing::warn!(event = "voter_locked", election = %election.id, until = %until);
            return Err(locked(election, until).with("attempts_left", 0));
        }
        Err(ApiError::new(ErrorCode::WrongCode, "That code is not right, and it no longer works. Ask for a new code.")
            .with("attempts_left", 0))
    }
}
