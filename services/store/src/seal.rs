//! What only the server secret can open or make, for data the store holds: ballots sealed
//! at rest and the audit chain's keyed hash. Both keys are derived from `TURNOUT_SECRET`
//! by the service (core's `keys`) and handed to the adapter when it opens; neither is ever
//! written to the database, so someone holding the database alone can neither read a
//! ballot nor rewrite the audit chain.
//!
//! A sealed ballot is `version (1) || nonce (24) || XChaCha20-Poly1305(padded choices)`,
//! with the election and the receipt as associated data: the tag proves Turnout wrote
//! these choices under this receipt in this box, so a changed, copied or forged ballot
//! does not open. The plaintext is padded to a fixed size (1 KiB, or the next power of two
//! for a bigger ballot), so a ciphertext's length does not tell one candidate's name from
//! another's.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use turnout_domain::{ElectionId, Receipt};

use crate::Choices;

const VERSION: u8 = 1;
const NONCE: usize = 24;
/// The smallest padded plaintext: every ordinary ballot is exactly this long.
const MIN_PADDED: usize = 1024;
/// A sealed ballot's length cap (a stored value bigger than this is refused unread).
pub const MAX_SEALED: usize = 1 << 20;

/// The store's two secret keys. `Debug` never shows them.
#[derive(Clone)]
pub struct StoreKeys {
    ballots: XChaCha20Poly1305,
    audit: [u8; 32],
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(..)")
    }
}

/// Why a sealed ballot did not open.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum SealError {
    #[error(
        "its seal does not open: it was changed, copied from another receipt or written without the server secret, or TURNOUT_SECRET is not the one that sealed it"
    )]
    Tag,
    #[error("it is not a sealed ballot Turnout writes ({0})")]
    Malformed(&'static str),
}

impl StoreKeys {
    pub fn new(ballot_key: [u8; 32], audit_key: [u8; 32]) -> Self {
        Self { ballots: XChaCha20Poly1305::new(&ballot_key.into()), audit: audit_key }
    }

    /// Fixed, public keys for tests and tools that never hold a real election.
    pub fn for_tests() -> Self {
        Self::new([7; 32], [9; 32])
    }

    /// Seals a voter's choices for the box of `election` under `receipt`.
    pub fn seal(&self, election: &ElectionId, receipt: &Receipt, choices: &Choices) -> Vec<u8> {
        let json = serde_json::to_vec(choices).expect("choices serialize");
        let padded_len = (json.len() + 4).next_power_of_two().max(MIN_PADDED);
        let mut plain = Vec::with_capacity(padded_len);
        plain.extend_from_slice(&(json.len() as u32).to_be_bytes());
        plain.extend_from_slice(&json);
        plain.resize(padded_len, 0);
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).expect("the OS random source is available");
        let aad = associated(election, receipt);
        let sealed = self
            .ballots
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
            .expect("XChaCha20-Poly1305 seals any length we make");
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a sealed ballot, checking it belongs to this box and this receipt.
    pub fn open(&self, election: &ElectionId, receipt: &Receipt, sealed: &[u8]) -> Result<Choices, SealError> {
        if sealed.len() > MAX_SEALED {
            return Err(SealError::Malformed("too long"));
        }
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(SealError::Malformed("unknown version"));
        };
        if rest.len() < NONCE + 16 {
            return Err(SealError::Malformed("too short"));
        }
        let (nonce, body) = rest.split_at(NONCE);
        let aad = associated(election, receipt);
        let plain = self
            .ballots
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: &aad })
            .map_err(|_| SealError::Tag)?;
        let len = u32::from_be_bytes(plain[..4].try_into().map_err(|_| SealError::Malformed("no length"))?) as usize;
        let json = plain.get(4..4 + len).ok_or(SealError::Malformed("bad length"))?;
        serde_json::from_slice(json).map_err(|_| SealError::Malformed("not choices"))
    }

    /// A participation row's tag: HMAC over the election and the voter, so a row added in
    /// the database (to balance a ballot stuffed in) is found without the key.
    pub fn participation_tag(&self, election: &ElectionId, voter: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.audit).expect("HMAC takes any key length");
        for part in ["participation-v1", election.as_str(), voter] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// Does `tag` belong to this election and voter?
    pub fn participation_tag_ok(&self, election: &ElectionId, voter: &str, tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.participation_tag(election, voter).ct_eq(tag).into()
    }

    /// An audit entry's keyed hash: HMAC-SHA256 over the previous hash and every field,
    /// NUL-separated. Recomputing a chain after an edit needs the audit key.
    pub fn audit_hash(&self, prev: &str, at: i64, actor: &str, action: &str, election: &str, detail: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.audit).expect("HMAC takes any key length");
        for part in [prev, &at.to_string(), actor, action, election, detail] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        turnout_domain::hex(&mac.finalize().into_bytes())
    }
}

fn associated(election: &ElectionId, receipt: &Receipt) -> Vec<u8> {
    let mut aad = b"turnout-ballot-v1\0".to_vec();
    aad.extend_from_slice(election.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(receipt.as_str().as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vote;
    use turnout_domain::{CandidateId, ContestId};

    fn choices(pick: &str) -> Choices {
        [(ContestId::parse("president").unwrap(), Vote::Marks(vec![CandidateId::parse(pick).unwrap()]))].into()
    }

    #[test]
    fn a_sealed_ballot_opens_only_in_its_own_box_under_its_own_receipt_and_key() {
        let keys = StoreKeys::for_tests();
        let (e, r) = (ElectionId::parse("council").unwrap(), Receipt::generate());
        let sealed = keys.seal(&e, &r, &choices("ria"));
        assert_eq!(keys.open(&e, &r, &sealed).unwrap(), choices("ria"));
        assert_eq!(keys.open(&e, &Receipt::generate(), &sealed), Err(SealError::Tag));
        assert_eq!(keys.open(&ElectionId::parse("other").unwrap(), &r, &sealed), Err(SealError::Tag));
        assert_eq!(StoreKeys::new([1; 32], [9; 32]).open(&e, &r, &sealed), Err(SealError::Tag));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open(&e, &r, &flipped), Err(SealError::Tag));
        assert!(matches!(keys.open(&e, &r, b"{}"), Err(SealError::Malformed(_))));
        assert!(matches!(keys.open(&e, &r, &[]), Err(SealError::Malformed(_))));
    }

    #[test]
    fn sealing_hides_the_choice_and_its_length() {
        let keys = StoreKeys::for_tests();
        let (e, r) = (ElectionId::parse("council").unwrap(), Receipt::generate());
        let short = keys.seal(&e, &r, &choices("al"));
        let long = keys.seal(&e, &r, &choices("bartholomew-featherstonehaugh"));
        assert_eq!(short.len(), long.len(), "the length tells the choice");
        assert!(!long.windows(11).any(|w| w == b"bartholomew"));
        // Two seals of the same choice differ (random nonce).
        assert_ne!(keys.seal(&e, &r, &choices("al")), short);
    }

    #[test]
    fn the_audit_hash_needs_the_key() {
        let (a, b) = (StoreKeys::for_tests(), StoreKeys::new([7; 32], [8; 32]));
        let h = |k: &StoreKeys| k.audit_hash("", 1, "admin", "election.created", "x", "{}");
        assert_eq!(h(&a), h(&a));
        assert_ne!(h(&a), h(&b));
        assert_eq!(h(&a).len(), 64);
    }
}
