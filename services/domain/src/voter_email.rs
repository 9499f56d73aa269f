//! `VoterEmail`: where a voter's code goes; `masked()` is what pages show.

use super::{ParseError, serde_via_parse};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterEmail(String);

impl VoterEmail {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let err = || ParseError("not a valid email address".into());
        let (local, domain) = raw.split_once('@').ok_or_else(err)?;
        let ok = raw.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
            && !domain.contains('@');
        if ok { Ok(Self(raw.to_owned())) } else { Err(err()) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `s*********1@students.uni.example`: enough for a voter to recognise, not to harvest.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let chars: Vec<char> = local.chars().collect();
        let masked_local: String = match chars.len() {
            0..=2 => "*".repeat(chars.len().max(1)),
            n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
        };
        format!("{masked_local}@{domain}")
    }
}
serde_via_parse!(VoterEmail);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_addresses() {
        assert!(VoterEmail::parse("student00001@students.turnout.test").is_ok());
        for bad in ["", "no-at", "@x.y", "a@b", "a b@c.d", "a@b.c>", "a@b.c,d@e.f", "a@.b", "a@b."] {
            assert!(VoterEmail::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn masks_the_local_part() {
        let email = VoterEmail::parse("student00001@students.turnout.test").unwrap();
        assert_eq!(email.masked(), "s**********1@students.turnout.test");
        assert_eq!(VoterEmail::parse("ab@x.io").unwrap().masked(), "**@x.io");
    }
}
