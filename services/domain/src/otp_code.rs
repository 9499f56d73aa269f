//! `OtpCode`: what a voter types from the email. Spaces and dashes are forgiven.

use super::ParseError;

pub const OTP_DIGITS: usize = 6;

#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if digits.len() == OTP_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(ParseError(format!("the code is {OTP_DIGITS} digits")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Never print a code, even in a debug log.
impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_with_friendly_separators() {
        assert_eq!(OtpCode::parse("123 456").unwrap().as_str(), "123456");
        assert_eq!(OtpCode::parse("123-456").unwrap().as_str(), "123456");
        for bad in ["", "12345", "1234567", "abcdef", "12345٣"] {
            assert!(OtpCode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn debug_hides_the_code() {
        let code = OtpCode::parse("987654").unwrap();
        assert!(!format!("{code:?}").contains("987654"));
    }
}
