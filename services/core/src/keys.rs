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

/// Lower-case hex (the one encoder; it lives with the domain values, which the store
/// and the count share).
pub use turnout_domain::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_parts_separate_keys() {
        assert_ne!(derive(b"root", "a"), derive(b"root", "b"));
        assert_ne!(derive_with(b"root", "a", &[b"x", b"y"]), derive_with(b"root", "a", &[b"xy"]));
        assert_eq!(derive(b"root", "a"), derive(b"root", "a"));
    }
}
