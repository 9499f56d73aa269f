//! Device cookies: a browser that has signed in as an account before is known to the
//! throttle, so nobody on the same network can lock that student out.
//!
//! The throttle counts failures per (username, address) and per address. Behind one
//! campus NAT an attacker shares the victim's address: three wrong passwords for the
//! victim's username, or 600 junk sign-ins, would make the victim wait. So a right
//! password also sets `turnout_device`, a signed note "this browser signed in as
//! `st000001`" with a random id. A sign-in for that same account that carries it is
//! counted on its own: (username, device) instead of (username, address), and the device
//! instead of the address. An attacker cannot make one for someone else's account
//! without that account's password, and one for their own account does not apply when
//! they type another name. (The OWASP "device cookie" pattern.)
//!
//! `base64url(JSON {sub, id, iat}) . base64url(HMAC-SHA256)`, with a key of its own
//! derived from the root secret; valid for 180 days. It holds no session: signing out
//! keeps it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use turnout_core::domain::Username;

pub const COOKIE_NAME: &str = "turnout_device";
pub const LIFETIME: Duration = Duration::from_secs(180 * 24 * 3600);
const MAX_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    sub: Username,
    id: String,
    iat: i64,
}

/// Signs and checks device cookies.
pub struct DeviceKeys {
    key: [u8; 32],
}

impl DeviceKeys {
    pub fn from_settings(settings: &turnout_core::Settings) -> Self {
        Self { key: settings.derive_key("device-cookie-v1", &[]) }
    }

    fn mac(&self, payload: &str) -> [u8; 32] {
        turnout_core::keys::derive_with(&self.key, "device", &[payload.as_bytes()])
    }

    /// A new device cookie's value for `account`.
    pub fn issue(&self, account: &Username, now: Timestamp) -> String {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).expect("OS random source");
        let claims = Claims { sub: account.clone(), id: turnout_core::keys::hex(&id), iat: now.as_second() };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(self.mac(&payload)))
    }

    /// The device id, when `value` is a valid, unexpired cookie of `account`.
    pub fn device_of(&self, value: &str, account: &Username, now: Timestamp) -> Option<String> {
        let claims = self.verify(value, now)?;
        (claims.sub == *account).then_some(claims.id)
    }

    /// The account a valid cookie names.
    pub fn account_of(&self, value: &str, now: Timestamp) -> Option<Username> {
        self.verify(value, now).map(|c| c.sub)
    }

    fn verify(&self, value: &str, now: Timestamp) -> Option<Claims> {
        if value.len() > MAX_LEN {
            return None;
        }
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if !bool::from(self.mac(payload).as_slice().ct_eq(&tag)) {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (now.as_second() < claims.iat + LIFETIME.as_secs() as i64).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> DeviceKeys {
        DeviceKeys::from_settings(&turnout_core::Settings::for_tests(&[("TURNOUT_SECRET", secret)]))
    }

    #[test]
    fn a_device_cookie_names_one_account_and_cannot_be_forged_or_outlive_its_time() {
        let k = keys(turnout_core::config::TEST_SECRET);
        let (me, other) = (Username::parse("st000001").unwrap(), Username::parse("st000002").unwrap());
        let now = Timestamp::now();
        let cookie = k.issue(&me, now);
        let id = k.device_of(&cookie, &me, now).expect("valid for its account");
        assert_eq!(id.len(), 32);
        assert_eq!(k.device_of(&cookie, &Username::parse("ST000001").unwrap(), now), Some(id), "any spelling");
        assert_eq!(k.device_of(&cookie, &other, now), None, "not for another account");
        assert_eq!(k.device_of(&cookie, &me, now + LIFETIME), None, "expired");
        let (payload, tag) = cookie.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"sub": "st000002", "id": "x", "iat": now.as_second()})).unwrap(),
        );
        assert_eq!(k.device_of(&format!("{forged}.{tag}"), &other, now), None, "a changed payload");
        let other_key = keys("b8f13d3b6fd05c40d2a712f5cd5802fbd2e1d2b643d0d9142f988ac2b591b988");
        assert_eq!(other_key.device_of(&cookie, &me, now), None, "another secret");
        for junk in ["", ".", "abc", &format!("{payload}."), &"x".repeat(600)] {
            assert_eq!(k.device_of(junk, &me, now), None, "{junk:?}");
        }
    }
}
