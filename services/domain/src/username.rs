//! `Username`: the canonical voter identity, a directory uid as the directory compares
//! it. `uid` (and `cn`, the other attribute a DN template may name) use
//! `caseIgnoreMatch`, so `st000001`, `ST000001` and ` St000001 ` are one account: the
//! value is trimmed and folded to lower case here, once, and every store key
//! (participation, codes, throttles, rolls, roles, audit) is built from this form. The
//! character set is ASCII, so folding is ASCII lower-casing and nothing else can make two
//! spellings of one account.
//!
//! Deliberately narrow: anything outside it can't be a real account, so it is refused
//! before any LDAP call (and values are still escaped there).

use super::{ParseError, serde_via_parse};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Parses and canonicalises: trimmed, ASCII lower case.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let ok_len = (1..=64).contains(&raw.len());
        let ok_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if ok_len && ok_chars {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(ParseError("username must be 1-64 characters of letters, digits, '.', '_', '-' or '@'".into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
serde_via_parse!(Username);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_uids_parse_and_are_trimmed() {
        assert_eq!(Username::parse(" student00001 ").unwrap().as_str(), "student00001");
        assert!(Username::parse("jane.doe@uni.example").is_ok());
    }

    #[test]
    fn every_spelling_of_one_account_is_one_username() {
        let canonical = Username::parse("st000001").unwrap();
        for variant in ["ST000001", "St000001", " st000001 ", "\tsT000001\n"] {
            assert_eq!(Username::parse(variant).unwrap(), canonical, "{variant:?}");
        }
        assert_eq!(Username::parse("Jane.Doe").unwrap().as_str(), "jane.doe");
        // Through serde too (sessions, stored rows, JSON bodies).
        let decoded: Username = serde_json::from_str("\"ST000001\"").unwrap();
        assert_eq!(decoded, canonical);
    }

    #[test]
    fn ldap_metacharacters_and_empty_are_refused() {
        for bad in ["", "   ", "*)(uid=*", "a,b", "a=b", "x\0y", "(cn=*)", "a\\2a", "st\u{0130}0001"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
