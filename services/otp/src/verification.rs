//! Issuing and verifying codes: the rules, free of HTTP. A failed or expired verification
//! only ever returns an error; it never sends mail. Mail goes out only from `request`.

use std::sync::Arc;

use jiff::Timestamp;
use turnout_core::domain::{ElectionId, OtpCode, Username, VoterEmail};
use turnout_core::store::{AttemptError, IssueError, OtpIssue, OtpPolicy, Store};
use turnout_core::{ApiError, ErrorCode, Settings};

use crate::codes::CodeMaker;

pub struct Verifier {
    store: Arc<dyn Store>,
    codes: Arc<CodeMaker>,
    policy: OtpPolicy,
}

impl Verifier {
    pub fn new(settings: &Settings, store: Arc<dyn Store>, codes: Arc<CodeMaker>) -> Self {
        let otp = &settings.otp;
        let policy = OtpPolicy {
            validity: otp.validity,
            cooldown: otp.resend_cooldown,
            max_sends: otp.max_sends,
            max_attempts: otp.max_attempts,
        };
        Self { store, codes, policy }
    }

    pub fn policy(&self) -> OtpPolicy {
        self.policy
    }

    /// Queues the code mail (the same code while it is still fresh). Explicit requests only.
    pub async fn request(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        now: Timestamp,
    ) -> Result<OtpIssue, ApiError> {
        self.store.issue_otp(election, voter, to, self.policy, now).await.map_err(|e| match e {
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
            IssueError::Store(e) => e.into(),
        })
    }

    /// Checks a typed code. Every attempt counts against the code's limit before the
    /// comparison, so concurrent guesses can't exceed it.
    pub async fn verify(
        &self,
        election: &ElectionId,
        voter: &Username,
        typed: &OtpCode,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let max = self.policy.max_attempts;
        let attempt = self.store.begin_otp_attempt(election, voter, max).await.map_err(|e| match e {
            AttemptError::NoActiveCode => {
                ApiError::new(ErrorCode::NoActiveCode, "There is no active code for you. Ask for a code first.")
            }
            AttemptError::TooManyAttempts => ApiError::new(
                ErrorCode::TooManyAttempts,
                format!("That code was entered wrongly {max} times and no longer works. Ask for a new code."),
            ),
            AttemptError::Store(e) => e.into(),
        })?;
        if now > attempt.issued_at + self.policy.validity {
            return Err(ApiError::new(ErrorCode::CodeExpired, "This code has expired. Ask for a new code."));
        }
        if !self.codes.matches(election, voter, attempt.generation, attempt.issued_at, typed) {
            let left = max.saturating_sub(attempt.attempts_used);
            let message = if left == 0 {
                "That code is not right, and it no longer works. Ask for a new code.".to_owned()
            } else {
                format!("That code is not right. You have {left} more {}.", if left == 1 { "try" } else { "tries" })
            };
            return Err(ApiError::new(ErrorCode::WrongCode, message).with("attempts_left", left));
        }
        self.store.consume_otp(election, voter, attempt.generation).await?;
        Ok(())
    }
}
