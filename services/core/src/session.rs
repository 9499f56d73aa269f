//! The session token every service checks without a store lookup.
//!
//! `base64url(payload JSON) . base64url(HMAC-SHA256(key, payload))`. The key is derived
//! from the root secret, so all services on a host agree. The payload carries the stage:
//! `authenticated` after LDAP, `verified` for exactly one election after the emailed code.
//! A token verified for one election is refused by every other election.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::{ContestId, ElectionId, Username, VoterEmail};

pub const COOKIE_NAME: &str = "turnout_session";
/// Tokens are small; anything longer is refused before decoding.
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Officer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stage {
    Authenticated,
    /// Verified by emailed code for `election` at `at` (unix seconds): `at` decides the
    /// grace period after close.
    Verified {
        election: ElectionId,
        at: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sub: Username,
    pub email: VoterEmail,
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Elections this voter may vote in, decided at login.
    #[serde(default)]
    pub eligible: Vec<ElectionId>,
    /// The contests with a constituency (a roll column, an LDAP group or filter) that
    /// sign-in found this voter in, per election. Other such contests are not theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constituencies: Vec<(ElectionId, ContestId)>,
    pub stage: Stage,
    pub iat: i64,
    pub exp: i64,
    /// When the account signed in (unix ms), kept through verification: a sign-out of
    /// the account at or after it ends this session everywhere (`sign_outs`). Tokens
    /// from before this field read 0, so any sign-out ends them.
    #[serde(default)]
    pub signed_in_ms: i64,
}

impl Session {
    pub fn new(sub: Username, email: VoterEmail, roles: Vec<Role>, now: Timestamp, ttl: std::time::Duration) -> Self {
        let iat = now.as_second();
        Self {
            sub,
            email,
            roles,
            eligible: Vec::new(),
            constituencies: Vec::new(),
            stage: Stage::Authenticated,
            iat,
            exp: iat + ttl.as_secs() as i64,
            signed_in_ms: now.as_millisecond(),
        }
    }

    pub fn with_eligible(mut self, eligible: Vec<ElectionId>) -> Self {
        self.eligible = eligible;
        self
    }

    pub fn with_constituencies(mut self, constituencies: Vec<(ElectionId, ContestId)>) -> Self {
        self.constituencies = constituencies;
        self
    }

    pub fn may_vote_in(&self, election: &ElectionId) -> bool {
        self.eligible.contains(election)
    }

    /// The constituency contests of `election` this voter is in.
    pub fn constituencies_in(&self, election: &ElectionId) -> Vec<ContestId> {
        self.constituencies.iter().filter(|(e, _)| e == election).map(|(_, c)| c.clone()).collect()
    }

    /// The same voter, now verified for `election`; the expiry is renewed.
    pub fn verified_for(&self, election: &ElectionId, now: Timestamp, ttl: std::time::Duration) -> Self {
        let mut next = Self::new(self.sub.clone(), self.email.clone(), self.roles.clone(), now, ttl)
            .with_eligible(self.eligible.clone())
            .with_constituencies(self.constituencies.clone());
        next.stage = Stage::Verified { election: election.clone(), at: now.as_second() };
        next.signed_in_ms = self.signed_in_ms;
        next
    }

    /// When this session verified a code for `election`, if it did.
    pub fn verified_at(&self, election: &ElectionId) -> Option<Timestamp> {
        match &self.stage {
            Stage::Verified { election: e, at } if e == election => Timestamp::from_second(*at).ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed session token")]
    Malformed,
    #[error("session token signature does not match")]
    BadSignature,
    #[error("session expired")]
    Expired,
}

/// Signs and checks tokens. Cheap to clone; holds only the derived key.
#[derive(Clone)]
pub struct SessionKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self { key: crate::keys::derive(settings.root_secret(), "session-token-v1") }
    }

    pub fn sign(&self, session: &Session) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).expect("session serializes"));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Session, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        // `verify_slice` compares in constant time.
        self.mac(payload.as_bytes()).verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let session: Session = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if now.as_second() >= session.exp {
            return Err(TokenError::Expired);
        }
        Ok(session)
    }

    /// The anti-CSRF token for forms of this session: bound to the user and the moment the
    /// session was issued, so it dies with the session and can't be guessed from outside.
    pub fn csrf_token(&self, session: &Session) -> String {
        URL_SAFE_NO_PAD.encode(self.csrf_mac(session).finalize().into_bytes())
    }

    /// Whether `presented` is this session's anti-CSRF token (compared in constant time).
    pub fn csrf_matches(&self, session: &Session, presented: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(presented) {
            Ok(tag) => self.csrf_mac(session).verify_slice(&tag).is_ok(),
            Err(_) => false,
        }
    }

    fn csrf_mac(&self, session: &Session) -> Hmac<Sha256> {
        let mut mac = self.mac(b"csrf-v1\0");
        mac.update(session.sub.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(session.iat.to_string().as_bytes());
        mac
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use std::time::Duration;

    fn keys() -> SessionKeys {
        SessionKeys::from_settings(&Settings::for_tests(&[]))
    }

    fn session(now: Timestamp) -> Session {
        Session::new(
            Username::parse("student00001").unwrap(),
            VoterEmail::parse("student00001@students.turnout.test").unwrap(),
            vec![],
            now,
            Duration::from_secs(600),
        )
    }

    #[test]
    fn round_trips_and_expires() {
        let now = Timestamp::now();
        let token = keys().sign(&session(now));
        assert_eq!(keys().verify(&token, now).unwrap(), session(now));
        let later = now + Duration::from_secs(601);
        assert_eq!(keys().verify(&token, later), Err(TokenError::Expired));
    }

    #[test]
    fn any_tampering_is_detected() {
        let now = Timestamp::now();
        let token = keys().sign(&session(now));
        let (payload, tag) = token.split_once('.').unwrap();

        // A forged payload claiming verification, with the old tag.
        let mut forged = session(now);
        forged.stage = Stage::Verified { election: ElectionId::parse("demo").unwrap(), at: now.as_second() };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(keys().verify(&format!("{forged_payload}.{tag}"), now), Err(TokenError::BadSignature));

        // A token signed with another secret.
        let other = SessionKeys::from_settings(&Settings::for_tests(&[(
            "TURNOUT_SECRET",
            "84302acac606be39ceeaed4dcaca031f59d52626eae130bc988ec9d2a1766f7e",
        )]));
        assert_eq!(keys().verify(&other.sign(&session(now)), now), Err(TokenError::BadSignature));

        for garbage in ["", ".", "abc", &format!("{payload}."), &"x".repeat(5000)] {
            assert!(keys().verify(garbage, now).is_err(), "{garbage:?} accepted");
        }
    }

    #[test]
    fn verification_is_for_one_election_only() {
        let now = Timestamp::now();
        let demo = ElectionId::parse("demo").unwrap();
        let other = ElectionId::parse("other").unwrap();
        let verified = session(now).verified_for(&demo, now, Duration::from_secs(600));
        assert_eq!(verified.verified_at(&demo).map(|t| t.as_second()), Some(now.as_second()));
        assert_eq!(verified.verified_at(&other), None);
        assert_eq!(session(now).verified_at(&demo), None);
    }
}
