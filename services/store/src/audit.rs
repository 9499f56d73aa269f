//! The audit log: entries chained by a keyed hash (`StoreKeys::audit_hash`), so an edit,
//! insertion or removal is found, and rewriting the chain to hide one needs the server
//! secret. The chain's head (`AuditHead`) is anchored outside the database (the officer
//! dashboard, the service log, the officers' mail), and `verify_audit` checks the chain
//! still reaches an anchored head: a removed tail is found even when the database's own
//! counters were lowered to match.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use turnout_domain::ElectionId;

use crate::{StoreError, StoreKeys};

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub election: Option<ElectionId>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub election: Option<String>,
    pub detail: serde_json::Value,
    pub hash: String,
}

/// The chain's last entry: its sequence number and keyed hash, written `SEQ:HASH`. Every
/// entry's hash covers all before it, so a head someone noted down pins the whole chain up
/// to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

impl std::fmt::Display for AuditHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for AuditHead {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || format!("an audit head is SEQ:HASH, like 42:{}", "0f".repeat(32));
        let (seq, hash) = raw.trim().split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().ok().filter(|s| *s > 0).ok_or_else(bad)?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { seq, hash })
    }
}

/// The outcome of re-walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    pub entries: u64,
    /// The last entry that verified, if any did.
    pub head: Option<AuditHead>,
    /// The first entry whose hash or link does not match, and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// The keyed hash-chained audit log.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError>;

    /// Entries after `after` (a sequence number), oldest first, at most `limit`.
    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// The chain's last entry as stored (not verified: `verify_audit` does that).
    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError>;

    /// Re-walks the whole chain: any edited, inserted or removed entry is found, and with
    /// `anchor` (a head noted outside the database) the chain must still reach it.
    async fn verify_audit(&self, anchor: Option<&AuditHead>) -> Result<AuditVerification, StoreError>;
}

/// One stored entry as the chain walk reads it.
pub struct StoredEntry<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub election: &'a str,
    pub detail: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// The chain walk both adapters run over their entries, oldest first: each entry must
/// follow the one before it without a gap, link to its hash and match its own keyed hash.
pub struct ChainWalk<'k> {
    keys: &'k StoreKeys,
    entries: u64,
    prev: String,
    last_seq: i64,
    /// The hash of the entry at the anchor's sequence number, once walked past.
    anchored: Option<String>,
    anchor_seq: Option<i64>,
    broken: Option<(i64, String)>,
}

impl<'k> ChainWalk<'k> {
    pub fn new(keys: &'k StoreKeys, anchor: Option<&AuditHead>) -> Self {
        Self {
            keys,
            entries: 0,
            prev: String::new(),
            last_seq: 0,
            anchored: None,
            anchor_seq: anchor.map(|a| a.seq),
            broken: None,
        }
    }

    /// Checks the next entry; false once the chain is broken (stop reading).
    pub fn step(&mut self, e: &StoredEntry<'_>) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let problem = if e.seq != self.last_seq + 1 {
            Some(format!("entries {} to {} are missing", self.last_seq + 1, e.seq - 1))
        } else if e.prev_hash != self.prev {
            Some("it does not link to the entry before it".to_owned())
        } else if self.keys.audit_hash(&self.prev, e.at, e.actor, e.action, e.election, e.detail) != e.hash {
            Some(
                "its content does not match its keyed hash (it was edited, or TURNOUT_SECRET is not the one that wrote it)"
                    .to_owned(),
            )
        } else {
            None
        };
        if let Some(why) = problem {
            self.broken = Some((e.seq, why));
            return false;
        }
        self.entries += 1;
        self.prev = e.hash.to_owned();
        self.last_seq = e.seq;
        if Some(e.seq) == self.anchor_seq {
            self.anchored = Some(e.hash.to_owned());
        }
        true
    }

    /// The verdict, given the highest sequence number the store says it handed out and
    /// the anchor (the same one given to `new`).
    pub fn finish(self, highest: i64, anchor: Option<&AuditHead>) -> AuditVerification {
        let head = (self.entries > 0).then(|| AuditHead { seq: self.last_seq, hash: self.prev.clone() });
        let broken = |seq: i64, why: String| AuditVerification {
            entries: self.entries,
            head: head.clone(),
            broken_at: Some(seq),
            problem: Some(why),
        };
        if let Some((seq, why)) = self.broken {
            return broken(seq, why);
        }
        // A removed tail leaves a gap against the highest sequence ever handed out.
        if highest > self.last_seq {
            return broken(self.last_seq + 1, format!("entries {} to {highest} are missing", self.last_seq + 1));
        }
        if let Some(anchor) = anchor {
            match &self.anchored {
                None => {
                    return broken(
                        self.last_seq + 1,
                        format!(
                            "the chain ends at entry {} but the anchored head is entry {}: entries {} to {} were removed",
                            self.last_seq,
                            anchor.seq,
                            self.last_seq + 1,
                            anchor.seq
                        ),
                    );
                }
                Some(hash) if *hash != anchor.hash => {
                    return broken(
                        anchor.seq,
                        format!(
                            "entry {} is not the anchored one (its hash differs): the chain was rewritten at or before it",
                            anchor.seq
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        AuditVerification { entries: self.entries, head, broken_at: None, problem: None }
    }
}

/// The one-time upgrade of a chain written before its hashes were keyed: each entry's
/// unkeyed hash is checked as before (the verdict goes into the upgrade's own audit entry,
/// so a chain that was already broken is not silently laundered), then the chain is
/// re-hashed with the key. Returns each entry's new `(seq, prev_hash, hash)` and, if the
/// unkeyed chain did not verify, where and why.
pub fn rekey_chain(keys: &StoreKeys, entries: &[StoredEntry<'_>]) -> (Vec<(i64, String, String)>, Option<String>) {
    let (mut unkeyed_prev, mut unkeyed_problem) = (String::new(), None);
    let mut prev = String::new();
    let mut rewritten = Vec::with_capacity(entries.len());
    for e in entries {
        if unkeyed_problem.is_none() {
            let expected = unkeyed_hash(&unkeyed_prev, e.at, e.actor, e.action, e.election, e.detail);
            if e.prev_hash != unkeyed_prev || e.hash != expected {
                unkeyed_problem = Some(format!("the unkeyed chain was already broken at entry {}", e.seq));
            }
            unkeyed_prev = e.hash.to_owned();
        }
        let hash = keys.audit_hash(&prev, e.at, e.actor, e.action, e.election, e.detail);
        rewritten.push((e.seq, prev.clone(), hash.clone()));
        prev = hash;
    }
    (rewritten, unkeyed_problem)
}

/// The hash entries had before it was keyed (SHA-256, same fields): read by the upgrade,
/// and what an insider without the key can recompute (the insider tests use it).
pub fn unkeyed_hash(prev: &str, at: i64, actor: &str, action: &str, election: &str, detail: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in [prev, &at.to_string(), actor, action, election, detail] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    turnout_domain::hex(&hasher.finalize())
}

/// The upgrade's own audit entry: how many entries it re-hashed, and whether their
/// unkeyed chain was intact.
pub fn chain_keyed_entry(entries: usize, finding: &str) -> AuditEntry {
    AuditEntry {
        actor: "system".into(),
        action: "audit.chain_keyed".into(),
        election: None,
        detail: serde_json::json!({ "entries": entries, "unkeyed_chain": finding }),
    }
}

/// The name both adapters record the upgrade under.
pub const KEYED_AUDIT_UPGRADE: &str = "keyed-audit-chain-v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_reads_back_as_written_and_bad_ones_are_refused() {
        let h = AuditHead { seq: 42, hash: "ab".repeat(32) };
        assert_eq!(h.to_string().parse::<AuditHead>().unwrap(), h);
        assert_eq!(format!("42:{}", "AB".repeat(32)).parse::<AuditHead>().unwrap(), h);
        for bad in ["", "42", "x:ab", "0:abab", "42:abc", &format!("-1:{}", "ab".repeat(32))] {
            assert!(bad.parse::<AuditHead>().is_err(), "{bad}");
        }
    }
}
