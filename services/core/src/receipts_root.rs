//! The receipts root, published at close + grace: the RFC 6962 Merkle root (`merkle`) over
//! every receipt of the election, each as it is printed (`7KQ2-M9XD-4T1B-8ZRC-0PWE`, 24
//! ASCII bytes), sorted. A voter's receipt check can show the audit path from their
//! receipt to that root, so anyone holding a receipt proves it was counted in the box the
//! officers published, without the rest of the receipts.
//!
//! Sorted, the receipts keep no order of casting, and the ballots root (`box_export`)
//! sorts the ballots on their own, so the two roots say nothing about which receipt went
//! with which choices. A path shows only hashes of other receipts: 100 random bits each,
//! too many to guess back.

use serde::{Deserialize, Serialize};

use crate::domain::{Receipt, hex};
use crate::merkle::{self, Hash};

/// How one receipt is in the published receipts root: its place among the sorted receipts
/// and the audit path from it to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptProof {
    /// The receipt's place among the sorted receipts, from 0.
    pub index: u64,
    /// How many receipts the root is over (the number of ballots).
    pub size: u64,
    /// The sibling subtrees' roots from the receipt up, as hex.
    pub path_hex: Vec<String>,
    /// The root this path leads to, as hex: compare it with the published one.
    pub root_hex: String,
}

/// The receipts root: receipts sorted, each leaf the receipt as printed.
pub fn receipts_root(receipts: &[Receipt]) -> Hash {
    merkle::root(&sorted(receipts))
}

/// The proof that `receipt` is among `receipts`, or `None` when it is not.
pub fn receipt_proof(receipts: &[Receipt], receipt: &Receipt) -> Option<ReceiptProof> {
    let leaves = sorted(receipts);
    let index = leaves.binary_search(&receipt.as_str()).ok()?;
    let path = merkle::proof(&leaves, index)?;
    Some(ReceiptProof {
        index: index as u64,
        size: leaves.len() as u64,
        path_hex: path.iter().map(|h| hex(h)).collect(),
        root_hex: hex(&merkle::root(&leaves)),
    })
}

/// An election's receipts kept for many proofs (the receipt check after close).
pub struct ReceiptTree {
    sorted: Vec<Receipt>,
    tree: merkle::Tree,
}

impl ReceiptTree {
    pub fn new(receipts: &[Receipt]) -> Self {
        let mut sorted = receipts.to_vec();
        sorted.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        let leaves: Vec<&str> = sorted.iter().map(Receipt::as_str).collect();
        let tree = merkle::Tree::new(&leaves);
        Self { sorted, tree }
    }

    /// The same proof as `receipt_proof`, in O(log² n).
    pub fn proof(&self, receipt: &Receipt) -> Option<ReceiptProof> {
        let index = self.sorted.binary_search_by(|r| r.as_str().cmp(receipt.as_str())).ok()?;
        let path = self.tree.proof(index)?;
        Some(ReceiptProof {
            index: index as u64,
            size: self.sorted.len() as u64,
            path_hex: path.iter().map(|h| hex(h)).collect(),
            root_hex: hex(&self.tree.root()),
        })
    }
}

/// Does `proof` lead from `receipt` to `published_root_hex` (the root as the officers
/// published it, in either case)? The proof's own `root_hex` is not trusted: a path made up
/// for another root fails here.
pub fn verify_receipt_proof(receipt: &Receipt, proof: &ReceiptProof, published_root_hex: &str) -> bool {
    let Some(root) = merkle::hash_from_hex(published_root_hex) else { return false };
    let path: Option<Vec<Hash>> = proof.path_hex.iter().map(|h| merkle::hash_from_hex(h)).collect();
    path.is_some_and(|path| merkle::verify(receipt.as_str().as_bytes(), proof.index, proof.size, &path, &root))
}

fn sorted(receipts: &[Receipt]) -> Vec<&str> {
    let mut leaves: Vec<&str> = receipts.iter().map(Receipt::as_str).collect();
    leaves.sort_unstable();
    leaves
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipts(n: usize) -> Vec<Receipt> {
        (0..n).map(|_| Receipt::generate()).collect()
    }

    #[test]
    fn the_root_is_over_the_sorted_receipts_whatever_order_they_come_in() {
        let mut all = receipts(7);
        let root = receipts_root(&all);
        all.reverse();
        assert_eq!(receipts_root(&all), root);
        let mut printed: Vec<&str> = all.iter().map(Receipt::as_str).collect();
        printed.sort();
        assert_eq!(root, merkle::root(&printed), "each leaf is the receipt as printed, sorted");
        assert_eq!(hex(&receipts_root(&[])), hex(&merkle::root::<&[u8]>(&[])), "no ballots: SHA-256 of nothing");
    }

    #[test]
    fn every_receipt_proves_its_place_and_nothing_else_passes() {
        for n in 1..=20 {
            let all = receipts(n);
            let root = hex(&receipts_root(&all));
            for r in &all {
                let proof = receipt_proof(&all, r).expect("a receipt in the box");
                assert_eq!((proof.size, &proof.root_hex), (n as u64, &root));
                assert!(verify_receipt_proof(r, &proof, &root), "{n}");
                assert!(verify_receipt_proof(r, &proof, &root.to_uppercase()), "the root as typed from an email");
                // Another receipt, another root, or an edited path: refused.
                let stranger = Receipt::generate();
                assert!(!verify_receipt_proof(&stranger, &proof, &root));
                let other_root = hex(&receipts_root(&all[..n - 1]));
                assert!(!verify_receipt_proof(r, &proof, &other_root), "{n}");
                assert!(!verify_receipt_proof(r, &proof, "not hex"));
                if let Some(first) = proof.path_hex.first() {
                    let mut edited = proof.clone();
                    edited.path_hex[0] = first.chars().rev().collect();
                    assert!(!verify_receipt_proof(r, &edited, &root));
                    edited.path_hex[0] = "zz".into();
                    assert!(!verify_receipt_proof(r, &edited, &root));
                }
            }
            assert_eq!(receipt_proof(&all, &Receipt::generate()), None, "a receipt not in the box has no proof");
            let kept = ReceiptTree::new(&all);
            for r in &all {
                assert_eq!(kept.proof(r), receipt_proof(&all, r), "the kept tree's proof is the same");
            }
            assert_eq!(kept.proof(&Receipt::generate()), None);
        }
    }

    #[test]
    fn a_proof_reads_back_from_json() {
        let all = receipts(5);
        let proof = receipt_proof(&all, &all[3]).unwrap();
        let json = serde_json::to_string(&proof).unwrap();
        assert!(json.starts_with(r#"{"index":"#), "{json}");
        let back: ReceiptProof = serde_json::from_str(&json).unwrap();
        assert!(verify_receipt_proof(&all[3], &back, &proof.root_hex));
    }
}
