//! Domain values, parsed once at the edge ("parse, don't validate"). A value of one of
//! these types is known-good everywhere else: handlers, the store and templates never
//! re-check it.
//!
//! Layout:
//! - one file per value: `username`, `election_id`, `candidate_id` (with `ContestId`),
//!   `otp_code`, `receipt`, `voter_email`;
//! - `hex`: the one lower-case hex encoder (keys, audit hashes, seeds);
//! - `schedule`: the election window and its server-side checks (the store checks it as
//!   a ballot is recorded, so it lives below the store, not in core).

mod candidate_id;
mod election_id;
mod hex;
mod otp_code;
mod receipt;
mod username;
mod voter_email;

pub mod schedule;

pub use candidate_id::{CandidateId, ContestId};
pub use election_id::ElectionId;
pub use hex::hex;
pub use otp_code::{OTP_DIGITS, OtpCode};
pub use receipt::Receipt;
pub use username::Username;
pub use voter_email::VoterEmail;

/// Why a raw value was refused; the message names the rule, never echoes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Shared rule for the short, URL-safe identifiers (elections, contests, candidates).
pub(crate) fn parse_slug(kind: &str, raw: &str) -> Result<String, ParseError> {
    let ok_len = (1..=64).contains(&raw.len());
    let ok_chars = raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let ok_ends = !raw.starts_with('-') && !raw.ends_with('-');
    if ok_len && ok_chars && ok_ends {
        Ok(raw.to_owned())
    } else {
        Err(ParseError(format!(
            "{kind} must be 1-64 characters of a-z, 0-9, '-' or '_' (not starting or ending with '-')"
        )))
    }
}

/// Serde support: deserialize through `parse` so bad input is refused while decoding.
macro_rules! serde_via_parse {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                <$t>::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use serde_via_parse;
