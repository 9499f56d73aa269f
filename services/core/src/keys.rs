//! Key derivation: every purpose gets its own key from the root secret, so a session key
//! can never be used to mint OTP codes and vice versa.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256(root, label || 0 || parts joined by 0): a fixed-length subkey.
pub fn derive_with(root: &[u8], label: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(root).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    for part in parts {
        mac.update(&[0]);
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn derive(root: &[u8], label: &str) -> [u8; 32] {
    derive_with(root, label, &[])
}

/// Lower-case hex of `bytes`, without a `format!` per byte (it is on the sign-in path).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_parts_separate_keys() {
        assert_ne!(derive(b"root", "a"), derive(b"root", "b"));
        assert_ne!(derive_with(b"root", "a", &[b"x", b"y"]), derive_with(b"root", "a", &[b"xy"]));
        assert_eq!(derive(b"root", "a"), derive(b"root", "a"));
    }

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(hex(&all), all.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }
}
