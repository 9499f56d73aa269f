//! What the audit log records about a ballot box, and the check of a box against it.
//!
//! The audit chain's head is anchored outside the database, so what the log says about
//! the box is pinned too:
//! - while voting is open, `box.counted` entries carry the running counts of
//!   participations and ballots (the ballot service writes one every few minutes while
//!   they change, and one at close): a box holding fewer later was cut;
//! - at close + grace, one `box.sealed` entry carries the two roots: the receipts root
//!   (`receipts_root`, over the sorted receipts: a voter's receipt check shows the path
//!   from their receipt to it) and the ballots root (`box_export`, over the canonical
//!   ballots), with the ballot count and the export's SHA-256. The two sets have the same
//!   size, and neither says which receipt goes with which choices.
//!
//! `check_box` is what `turnout-ballot verify-box --election` runs: every seal opens,
//! participation equals ballots, the counts never fell below a recorded count, and, once
//! sealed, the box still has the recorded roots.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::box_export::box_export;
use crate::domain::{ElectionId, hex};
use crate::receipts_root::receipts_root;
use crate::store::{Audit, AuditEntry, BallotBox, BoxContents, Election, MAX_PAGE, StoreError, Turnout};

pub const COUNTED: &str = "box.counted";
pub const SEALED: &str = "box.sealed";

/// The roots of a closed box, as `box.sealed` records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxSeal {
    pub ballots: u64,
    pub receipts_root: String,
    pub ballots_root: String,
    /// SHA-256 of the whole box export (header included: the contests it was counted by).
    pub export_sha256: String,
}

impl BoxSeal {
    /// The roots of a box as it is now.
    pub fn of(election: &Election, contents: &BoxContents) -> Self {
        let export = box_export(election, &contents.ballots);
        Self {
            ballots: contents.receipts.len() as u64,
            receipts_root: hex(&receipts_root(&contents.receipts)),
            ballots_root: export.root_hex,
            export_sha256: hex(&Sha256::digest(export.body.as_bytes())),
        }
    }
}

/// What the log holds about one election's box.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The highest counts any `box.counted` entry gave.
    pub most: Option<Turnout>,
    pub seal: Option<BoxSeal>,
}

/// Reads the whole log for one election's box entries (the log is the console's actions
/// and a count every few minutes: thousands of entries, not ballots).
pub async fn recorded(store: &(impl Audit + ?Sized), election: &ElectionId) -> Result<Recorded, StoreError> {
    let mut out = Recorded::default();
    let mut after = 0;
    loop {
        let page = store.list_audit(after, MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in page.iter().filter(|e| e.election.as_deref() == Some(election.as_str())) {
            if e.action == COUNTED
                && let Ok(t) = serde_json::from_value::<Counted>(e.detail.clone())
            {
                let most = out.most.get_or_insert(Turnout { participation: 0, ballots: 0 });
                most.participation = most.participation.max(t.participation);
                most.ballots = most.ballots.max(t.ballots);
            } else if e.action == SEALED
                && out.seal.is_none()
                && let Ok(seal) = serde_json::from_value::<BoxSeal>(e.detail.clone())
            {
                out.seal = Some(seal);
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Counted {
    participation: u64,
    ballots: u64,
}

/// Writes the box's running counts to the log.
pub async fn record_counts(
    store: &(impl Audit + BallotBox + ?Sized),
    election: &ElectionId,
    now: Timestamp,
) -> Result<Turnout, StoreError> {
    let t = store.turnout(election).await?;
    let entry = AuditEntry {
        actor: "system".into(),
        action: COUNTED.into(),
        election: Some(election.clone()),
        detail: serde_json::json!({ "participation": t.participation, "ballots": t.ballots }),
    };
    store.append_audit(&entry, now).await?;
    Ok(t)
}

/// Computes the closed box's roots and writes them to the log, unless they are there
/// already; returns them either way. Call only after close + grace (the box is final).
pub async fn seal(
    store: &(impl Audit + BallotBox + ?Sized),
    election: &Election,
    now: Timestamp,
) -> Result<(BoxSeal, bool), StoreError> {
    if let Some(seal) = recorded(store, &election.id).await?.seal {
        return Ok((seal, false));
    }
    let contents = store.box_contents(&election.id).await?;
    let seal = BoxSeal::of(election, &contents);
    let entry = AuditEntry {
        actor: "system".into(),
        action: SEALED.into(),
        election: Some(election.id.clone()),
        detail: serde_json::to_value(&seal).expect("a seal serializes"),
    };
    store.append_audit(&entry, now).await?;
    Ok((seal, true))
}

/// Everything wrong with a box as it is now, against what the log recorded; empty when
/// the box is intact.
pub fn check_box(election: &Election, contents: &BoxContents, recorded: &Recorded) -> Vec<String> {
    let mut problems = Vec::new();
    for (receipt, why) in &contents.unopened {
        problems.push(format!("the ballot with receipt {receipt} does not open: {why}"));
    }
    for voter in &contents.untagged {
        problems.push(format!(
            "the participation of {voter:?} has no valid tag: it was added in the database (or written before tags and never upgraded)"
        ));
    }
    let ballots = contents.receipts.len() as u64;
    if contents.participation != ballots {
        problems.push(format!(
            "{} voters are recorded as having voted but the box holds {ballots} ballots",
            contents.participation
        ));
    }
    if let Some(most) = recorded.most {
        if ballots < most.ballots {
            problems.push(format!(
                "the box holds {ballots} ballots, but the audit log counted {} earlier: ballots were removed",
                most.ballots
            ));
        }
        if contents.participation < most.participation {
            problems.push(format!(
                "{} voters are recorded, but the audit log counted {} earlier: participation was removed",
                contents.participation, most.participation
            ));
        }
    }
    if let Some(seal) = &recorded.seal {
        let now = BoxSeal::of(election, contents);
        if now.ballots != seal.ballots {
            problems.push(format!("the box holds {} ballots; at close it held {}", now.ballots, seal.ballots));
        }
        if now.receipts_root != seal.receipts_root {
            problems.push(format!(
                "the receipts root is {}, not the {} recorded at close: receipts were added, removed or changed",
                now.receipts_root, seal.receipts_root
            ));
        }
        if now.export_sha256 != seal.export_sha256 && now.ballots_root == seal.ballots_root {
            problems.push(format!(
                "the box export's SHA-256 is {}, not the {} recorded at close: the contests, names, seats or rules changed",
                now.export_sha256, seal.export_sha256
            ));
        }
        if now.ballots_root != seal.ballots_root {
            problems.push(format!(
                "the ballots root is {}, not the {} recorded at close: ballots were added, removed or changed",
                now.ballots_root, seal.ballots_root
            ));
        }
    }
    problems
}
