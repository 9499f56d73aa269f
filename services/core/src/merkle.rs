//! The Merkle tree of RFC 6962 (Certificate Transparency, §2.1; RFC 9162 §2.1 is the
//! same tree): the one hash that stands for a whole list of byte strings, and the audit
//! path that proves one of them is in it without showing the others. Turnout publishes
//! two such roots at close (the receipts and the ballots), so any other RFC 6962
//! implementation must reach the same roots from the same leaves: a leaf hashes as
//! SHA-256(0x00 ‖ leaf), two subtrees as SHA-256(0x01 ‖ left ‖ right), a list of `n > 1`
//! splits after the largest power of two smaller than `n`, and the empty list is
//! SHA-256 of nothing. Checked against the test vectors of Certificate Transparency.
//!
//! Written here rather than taken from a crate: it is three short functions over the
//! `sha2` the workspace already uses, and the popular Merkle crates build a different tree
//! (an odd node promoted or paired with itself), whose roots no RFC 6962 tool reproduces.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf's, a subtree's or a root.
pub type Hash = [u8; 32];

/// SHA-256(0x00 ‖ leaf): the prefix keeps a leaf from ever hashing like a node.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Sha256::new().chain_update([0x00]).chain_update(leaf).finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
}

/// The root of `leaves` in their order (MTH in RFC 6962). Memory stays at the depth of the
/// tree: the leaves are hashed as the recursion reaches them, never copied.
pub fn root<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => leaf_hash(leaf.as_ref()),
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The audit path of the leaf at `index` (PATH in RFC 6962): the sibling subtrees' roots
/// from the leaf up to the root. `None` when `index` is past the end.
pub fn proof<L: AsRef<[u8]>>(leaves: &[L], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    audit_path(leaves, index, &mut path);
    Some(path)
}

fn audit_path<L: AsRef<[u8]>>(leaves: &[L], index: usize, path: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    if index < k {
        audit_path(left, index, path);
        path.push(root(right));
    } else {
        audit_path(right, index - k, path);
        path.push(root(left));
    }
}

/// Does `path` lead from `leaf`, at `index` in a tree of `size` leaves, to `root`? The
/// check of RFC 9162 §2.1.3.2: a path of the wrong length, an index past the end, or a
/// leaf, index or size other than the ones the path was made for all fail.
pub fn verify(leaf: &[u8], index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut hash = leaf_hash(leaf);
    for sibling in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            hash = node_hash(sibling, &hash);
            // A right edge: climb past the levels where this subtree has no sibling.
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && hash == *root
}

/// A hash written as 64 hex digits (either case), as the roots are published.
pub fn hash_from_hex(hex: &str) -> Option<Hash> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |d: u8| char::from(d).to_digit(16).map(|n| n as u8);
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(hash)
}

/// A tree kept for many proofs (a receipt check per voter after close): every complete,
/// aligned subtree's root is computed once, and RFC 6962 only ever takes those as left
/// halves, so each root or path after that costs O(log² n) hashes instead of O(n).
pub struct Tree {
    /// `levels[l][i]`: the root of leaves `[i·2^l, (i+1)·2^l)`, for every complete block.
    levels: Vec<Vec<Hash>>,
    size: usize,
}

impl Tree {
    pub fn new<L: AsRef<[u8]>>(leaves: &[L]) -> Self {
        let mut levels = vec![leaves.iter().map(|l| leaf_hash(l.as_ref())).collect::<Vec<Hash>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("a level");
            let up: Vec<Hash> = below.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(up);
        }
        Self { levels, size: leaves.len() }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The same root as `root(leaves)`.
    pub fn root(&self) -> Hash {
        if self.size == 0 {
            return Sha256::digest([]).into();
        }
        self.range(0, self.size)
    }

    /// The same path as `proof(leaves, index)`.
    pub fn proof(&self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.size {
            return None;
        }
        let mut path = Vec::new();
        self.path(index, 0, self.size, &mut path);
        Some(path)
    }

    /// MTH of leaves `[lo, hi)`, as RFC 6962's recursion reaches it (`lo` a multiple of
    /// every left half's size, so each is a stored complete block).
    fn range(&self, lo: usize, hi: usize) -> Hash {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            return self.levels[n.trailing_zeros() as usize][lo / n];
        }
        let k = split(n);
        node_hash(&self.range(lo, lo + k), &self.range(lo + k, hi))
    }

    fn path(&self, index: usize, lo: usize, hi: usize, path: &mut Vec<Hash>) {
        if hi - lo <= 1 {
            return;
        }
        let k = split(hi - lo);
        if index < lo + k {
            self.path(index, lo, lo + k, path);
            path.push(self.range(lo + k, hi));
        } else {
            self.path(index, lo + k, hi, path);
            path.push(self.range(lo, lo + k));
        }
    }
}

/// The largest power of two smaller than `n` (for `n > 1`): where RFC 6962 splits a list.
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use turnout_domain::hex;

    #[test]
    fn a_kept_tree_gives_the_same_roots_and_paths() {
        for n in 0..70usize {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i}").into_bytes()).collect();
            let tree = Tree::new(&leaves);
            assert_eq!(tree.root(), root(&leaves), "size {n}");
            for i in 0..=n {
                assert_eq!(tree.proof(i), proof(&leaves, i), "size {n}, index {i}");
            }
        }
    }

    /// The eight leaves of Certificate Transparency's tests (transparency-dev/merkle,
    /// `proof/verify_test.go`; google/certificate-transparency, `merkle_test.py`).
    fn ct_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    /// MTH of the first 1..=8 of those leaves, as published with them.
    const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn h(s: &str) -> Hash {
        hash_from_hex(s).expect("a test vector is 64 hex digits")
    }

    #[test]
    fn roots_match_the_certificate_transparency_vectors() {
        let leaves = ct_leaves();
        for (n, want) in CT_ROOTS.iter().enumerate() {
            assert_eq!(hex(&root(&leaves[..=n])), *want, "tree of {} leaves", n + 1);
        }
        let none: [&[u8]; 0] = [];
        assert_eq!(hex(&root(&none)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // The node vector of google/certificate-transparency's `merkle_test.py`.
        let left = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let right = h("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
        assert_eq!(hex(&node_hash(&left, &right)), "1a378704c17da31e2d05b6d121c2bb2c7d76f6ee6fa8f983e596c2d034963c57");
    }

    #[test]
    fn audit_paths_match_the_certificate_transparency_vectors() {
        // (index from 0, tree size, path), from transparency-dev/merkle's `inclusionProofs`
        // (which number leaves from 1).
        let vectors: [(usize, usize, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let leaves = ct_leaves();
        for (index, size, want) in vectors {
            let tree = &leaves[..size];
            let path = proof(tree, index).expect("index inside the tree");
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(path, want, "leaf {index} of {size}");
            let root = h(CT_ROOTS[size - 1]);
            assert!(verify(&leaves[index], index as u64, size as u64, &path, &root), "leaf {index} of {size}");
        }
    }

    #[test]
    fn every_proof_of_every_leaf_verifies_and_any_change_fails() {
        for size in 1..=40usize {
            let leaves: Vec<String> = (0..size).map(|i| format!("leaf {i}")).collect();
            let r = root(&leaves);
            let (n, other_root) = (size as u64, root(&leaves[..size - 1]));
            for index in 0..size {
                let path = proof(&leaves, index).expect("index inside the tree");
                let (leaf, i) = (leaves[index].as_bytes(), index as u64);
                assert!(verify(leaf, i, n, &path, &r), "leaf {index} of {size}");
                let case = |what: &str| format!("{what}: leaf {index} of {size}");
                assert!(!verify(b"another leaf", i, n, &path, &r), "{}", case("a changed leaf"));
                if size > 1 {
                    let next = (index + 1) % size;
                    assert!(!verify(leaf, next as u64, n, &path, &r), "{}", case("another index"));
                    assert!(!verify(leaves[next].as_bytes(), i, n, &path, &r), "{}", case("another leaf"));
                    assert!(!verify(leaf, i, n, &path, &other_root), "{}", case("another root"));
                }
                // A path binds the size as far as the tree's shape along it: a tree twice
                // or half as big (a level more or less) fails, as CT's own tests check. A
                // size with the same shape there (3 and 4 for leaf 0) reaches the same root:
                // the root the path is checked against is what binds the whole tree.
                for wrong_size in [n * 2, n / 2] {
                    assert!(!verify(leaf, i, wrong_size, &path, &r), "{} ({wrong_size})", case("another size"));
                }
                assert!(!verify(leaf, n, n, &path, &r), "{}", case("an index past the end"));
                for k in 0..path.len() {
                    let mut bad = path.clone();
                    bad[k][0] ^= 8;
                    assert!(!verify(leaf, i, n, &bad, &r), "{}", case(&format!("path[{k}] changed")));
                }
                if let Some((_, shorter)) = path.split_last() {
                    assert!(!verify(leaf, i, n, shorter, &r), "{}", case("a path one short"));
                }
                let mut longer = path.clone();
                longer.push(r);
                assert!(!verify(leaf, i, n, &longer, &r), "{}", case("a path one long"));
            }
            assert_eq!(proof(&leaves, size), None, "no path past the end");
        }
    }

    #[test]
    fn the_split_is_the_largest_power_of_two_below_n() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512), (1024, 512), (1025, 1024)] {
            assert_eq!(split(n), k, "{n}");
        }
    }

    #[test]
    fn hashes_read_from_hex_in_either_case_and_nothing_else() {
        let r = CT_ROOTS[7];
        assert_eq!(hash_from_hex(r).map(|h| hex(&h)).as_deref(), Some(r));
        assert_eq!(hash_from_hex(&r.to_uppercase()), hash_from_hex(r));
        for bad in ["", &r[1..], &format!("{r}0"), &format!("g{}", &r[1..]), &format!("+{}", &r[1..])] {
            assert_eq!(hash_from_hex(bad), None, "{bad:?}");
        }
    }
}
