//! `Receipt`: the voter's proof their ballot is in the box. 100 random bits in Crockford
//! base32 (no I, L, O, U), grouped for reading aloud: `7KQ2-M9XD-…`. It says nothing about
//! who voted or how.

use super::{ParseError, serde_via_parse};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUPS: usize = 5;
const GROUP_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(String);

impl Receipt {
    /// A fresh receipt from the OS random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; GROUPS * GROUP_LEN];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        let chars: Vec<u8> = bytes.iter().map(|b| ALPHABET[(*b & 31) as usize]).collect();
        let groups: Vec<&str> =
            chars.chunks(GROUP_LEN).map(|c| std::str::from_utf8(c).expect("alphabet is ASCII")).collect();
        Self(groups.join("-"))
    }

    /// Accepts any case and missing dashes; maps the look-alikes I/L to 1 and O to 0.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let mut clean = Vec::with_capacity(GROUPS * GROUP_LEN);
        for c in raw.trim().chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'I' | 'L' => '1',
                'O' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || clean.len() == GROUPS * GROUP_LEN {
                return Err(Self::error());
            }
            clean.push(c as u8);
        }
        if clean.len() != GROUPS * GROUP_LEN {
            return Err(Self::error());
        }
        let groups: Vec<&str> = clean.chunks(GROUP_LEN).map(|c| std::str::from_utf8(c).expect("ASCII")).collect();
        Ok(Self(groups.join("-")))
    }

    fn error() -> ParseError {
        ParseError(format!("a receipt is {} characters like 7KQ2-M9XD-4T1B-8ZRC-0PWE", GROUPS * GROUP_LEN))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
serde_via_parse!(Receipt);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_receipts_round_trip_and_differ() {
        let a = Receipt::generate();
        let b = Receipt::generate();
        assert_ne!(a, b);
        assert_eq!(Receipt::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.as_str().len(), 24);
    }

    #[test]
    fn parse_normalises_case_dashes_and_lookalikes() {
        let r = Receipt::parse("7kq2m9xd4t1b8zrc0pwe").unwrap();
        assert_eq!(r.as_str(), "7KQ2-M9XD-4T1B-8ZRC-0PWE");
        assert_eq!(Receipt::parse("7KQ2-M9XD-4TIB-8ZRC-OPWE").unwrap(), r);
        for bad in ["", "7KQ2", "7KQ2-M9XD-4T1B-8ZRC-0PWE-0", "7KQ2-M9XD-4T1B-8ZRC-0PW!", "' OR 1=1 --"] {
            assert!(Receipt::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
