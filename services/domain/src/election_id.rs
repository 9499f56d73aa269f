//! `ElectionId`: the slug in `/e/{election}/...`.

use super::{ParseError, parse_slug, serde_via_parse};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ElectionId(String);

impl ElectionId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        parse_slug("election id", raw).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
serde_via_parse!(ElectionId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs_and_refuses_everything_else() {
        for ok in ["demo", "union-2026", "a_b", "x1"] {
            assert!(ElectionId::parse(ok).is_ok(), "{ok} should parse");
        }
        let long = "a".repeat(65);
        for bad in ["", "Demo", "-x", "x-", "a/b", "a b", "é", "../etc", long.as_str()] {
            assert!(ElectionId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
