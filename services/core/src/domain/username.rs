//! `Username`: a directory uid. Deliberately narrow: anything outside it can't be a real
//! account, so it is refused before any LDAP call (and values are still escaped there).

use super::{ParseError, serde_via_parse};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let ok_len = (1..=64).contains(&raw.len());
        let ok_chars = raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if ok_len && ok_chars {
            Ok(Self(raw.to_owned()))
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
    fn ldap_metacharacters_and_empty_are_refused() {
        for bad in ["", "   ", "*)(uid=*", "a,b", "a=b", "x\0y", "(cn=*)", "a\\2a"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
