//! `ContestId` and `CandidateId`: slugs naming a post on the ballot and a person on it.

use super::{ParseError, parse_slug, serde_via_parse};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContestId(String);

impl ContestId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        parse_slug("contest id", raw).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
serde_via_parse!(ContestId);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CandidateId(String);

impl CandidateId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        parse_slug("candidate id", raw).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
serde_via_parse!(CandidateId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_slugs() {
        assert!(CandidateId::parse("ada-lovelace").is_ok());
        assert!(ContestId::parse("president").is_ok());
        assert!(CandidateId::parse("Robert'); DROP TABLE ballots;--").is_err());
        assert!(ContestId::parse("").is_err());
    }

    #[test]
    fn deserializing_goes_through_parse() {
        let ok: Result<CandidateId, _> = serde_json::from_str("\"bob\"");
        assert!(ok.is_ok());
        let bad: Result<CandidateId, _> = serde_json::from_str("\"B O B\"");
        assert!(bad.is_err());
    }
}
