//! Codes: TOTP (totp-rs) with a long step, keyed per voter, election and generation by a
//! key derived from the server secret. Codes are never stored: the outbox keeps
//! (generation, issued_at) and the code is derived again when the mail is sent and when
//! the voter types it. A new generation (after a void or expiry) gives a new code even
//! inside the same step.

use std::time::Duration;

use jiff::Timestamp;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use turnout_core::Settings;
use turnout_core::domain::{ElectionId, OtpCode, Username};

pub struct CodeMaker {
    /// Key for deriving per-voter TOTP secrets; itself derived from the root secret.
    key: [u8; 32],
    step: Duration,
}

impl CodeMaker {
    pub fn new(settings: &Settings) -> Self {
        Self { key: settings.derive_key("otp-v1", &[]), step: settings.otp.step }
    }

    fn totp(&self, election: &ElectionId, voter: &Username, generation: u32) -> TOTP {
        let secret = turnout_core::keys::derive_with(
            &self.key,
            "voter-code",
            &[election.as_str().as_bytes(), voter.as_str().as_bytes(), &generation.to_be_bytes()],
        );
        TOTP::new(Algorithm::SHA1, turnout_core::domain::OTP_DIGITS, 0, self.step.as_secs(), secret.to_vec())
            .expect("6 digits and a 256-bit secret are valid TOTP parameters")
    }

    /// The code for the step that contains `issued_at`.
    pub fn code(&self, election: &ElectionId, voter: &Username, generation: u32, issued_at: Timestamp) -> String {
        self.totp(election, voter, generation).generate(issued_at.as_second().max(0) as u64)
    }

    /// Constant-time comparison with what the voter typed.
    pub fn matches(
        &self,
        election: &ElectionId,
        voter: &Username,
        generation: u32,
        issued_at: Timestamp,
        typed: &OtpCode,
    ) -> bool {
        let expected = self.code(election, voter, generation, issued_at);
        expected.as_bytes().ct_eq(typed.as_str().as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maker(step: &str) -> CodeMaker {
        CodeMaker::new(&Settings::for_tests(&[("TURNOUT_OTP_STEP_SECS", step)]))
    }

    #[test]
    fn codes_differ_by_voter_election_and_generation_and_are_stable_within_a_step() {
        let m = maker("300");
        let e = ElectionId::parse("demo").unwrap();
        let a = Username::parse("student00001").unwrap();
        let b = Username::parse("student00002").unwrap();
        let t: Timestamp = "2026-11-22T12:00:10Z".parse().unwrap();
        let code = m.code(&e, &a, 1, t);
        assert_eq!(code.len(), 6);
        assert_eq!(code, m.code(&e, &a, 1, t + Duration::from_secs(60)), "same 5-minute step");
        assert_ne!(code, m.code(&e, &b, 1, t));
        assert_ne!(code, m.code(&e, &a, 2, t));
        assert_ne!(code, m.code(&ElectionId::parse("other").unwrap(), &a, 1, t));
        assert!(m.matches(&e, &a, 1, t, &OtpCode::parse(&code).unwrap()));
    }

    #[test]
    fn the_code_depends_on_the_server_secret() {
        let e = ElectionId::parse("demo").unwrap();
        let a = Username::parse("student00001").unwrap();
        let t = Timestamp::now();
        let other = CodeMaker::new(&Settings::for_tests(&[(
            "TURNOUT_SECRET",
            "50e679abcfdb3878e44537b5d369ebea59daa9ed9b009c004e138ae8b39a9b6b",
        )]));
        assert_ne!(maker("300").code(&e, &a, 1, t), other.code(&e, &a, 1, t));
    }
}
