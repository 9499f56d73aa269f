//! Ties a rule breaks "by lot". The lot is never secret and never random at count time:
//! either the order the file gives (`[tie …]`), or an order everyone can recompute from a
//! published seed (for an election, the hash of its exported ballot box): candidates
//! ordered by SHA-256(seed ‖ their number), lowest first. The draw is written on the
//! count sheet.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lot {
    /// Candidates in this order: the first of a tie is drawn.
    Order(Vec<usize>),
    /// An order derived from this seed.
    Seed(Vec<u8>),
}

impl Lot {
    /// The file's tie order when it has one, else one from `seed`.
    pub fn for_profile(profile: &crate::Profile, seed: &[u8]) -> Self {
        match &profile.tie_order {
            Some(order) => Lot::Order(order.clone()),
            None => Lot::Seed(seed.to_vec()),
        }
    }

    /// For a recount of a file: its tie order, else a seed everyone holding the same
    /// file can recompute: the SHA-256 of its bytes.
    pub fn for_file(profile: &crate::Profile, bytes: &[u8]) -> Self {
        Self::for_profile(profile, &Sha256::digest(bytes))
    }

    /// The candidate of `tied` the lot draws.
    pub fn draw(&self, tied: &[usize]) -> usize {
        match self {
            Lot::Order(order) => *tied
                .iter()
                .min_by_key(|c| order.iter().position(|o| o == *c).unwrap_or(usize::MAX))
                .expect("a tie has candidates"),
            Lot::Seed(seed) => *tied
                .iter()
                .min_by_key(|&&c| {
                    let mut h = Sha256::new();
                    h.update(seed);
                    h.update((c as u64).to_be_bytes());
                    h.finalize()
                })
                .expect("a tie has candidates"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Lot::Order(_) => "the tie order given".into(),
            Lot::Seed(seed) => {
                format!("lot from seed {}", turnout_domain::hex(seed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lot_is_the_same_for_everyone_who_recomputes_it() {
        let lot = Lot::Seed(b"ballot box sha256".to_vec());
        let first = lot.draw(&[0, 1, 2, 3]);
        assert_eq!(first, Lot::Seed(b"ballot box sha256".to_vec()).draw(&[3, 2, 1, 0]));
        assert_eq!(Lot::Order(vec![2, 0, 1]).draw(&[0, 1]), 0);
        assert_eq!(Lot::Order(vec![2, 0, 1]).draw(&[1, 2]), 2);
        // Different seeds draw differently for some tie (not a constant order).
        let draws: std::collections::BTreeSet<usize> =
            (0u8..32).map(|s| Lot::Seed(vec![s]).draw(&[0, 1, 2, 3])).collect();
        assert!(draws.len() > 1);
    }
}
