//! The box watch: what the ballot service writes to the audit log about each ballot box,
//! and how the chain's head gets out of the database.
//!
//! Every tick (2 s) it reads the chain's head and logs it when it moved
//! (`event = "audit_head"`), so the service log holds a trail of heads anyone can check
//! the chain against later (`turnout-ballot verify-audit --head SEQ:HASH`). For each
//! election:
//! - while voting is open (and through the grace period), the running counts of
//!   participations and ballots go to the log (`box.counted`) when they changed and the
//!   last count is `TURNOUT_BOX_COUNT_INTERVAL_SECS` old: a box that later holds fewer was
//!   cut;
//! - once close + grace has passed, the final counts and the box's roots (`box.sealed`,
//!   see `box_record`) are written once, and logged.
//!
//! Several ballot processes each run a watch: counts may then be written once per process
//! per interval, which costs a line each and proves the same thing. A failed round is
//! logged and the next one tries again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_core::box_record;
use turnout_core::domain::ElectionId;
use turnout_core::store::{AuditHead, ElectionSummary, MAX_PAGE, Store, StoreError, Turnout};

const TICK: Duration = Duration::from_secs(2);
/// Elections watched at most: the first pages of the list, by id.
const MAX_WATCHED: usize = 2_000;

/// What the watch last saw of one election.
#[derive(Debug, Default)]
struct Seen {
    counted_at: Option<Timestamp>,
    counted: Option<Turnout>,
    sealed: bool,
}

pub struct BoxWatch {
    store: Arc<dyn Store>,
    interval: Duration,
    seen: HashMap<ElectionId, Seen>,
    head: Option<AuditHead>,
}

impl BoxWatch {
    pub fn new(store: Arc<dyn Store>, interval: Duration) -> Self {
        Self { store, interval, seen: HashMap::new(), head: None }
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.round(Timestamp::now()).await {
                tracing::warn!(event = "box_watch_failed", error = %e);
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// One round: the head, then each election's box.
    pub async fn round(&mut self, now: Timestamp) -> Result<(), StoreError> {
        for election in self.elections().await? {
            self.watch(&election, now).await?;
        }
        let head = self.store.audit_head().await?;
        if head.is_some() && head != self.head {
            let shown = head.as_ref().map(ToString::to_string).unwrap_or_default();
            tracing::info!(event = "audit_head", head = %shown);
            self.head = head;
        }
        Ok(())
    }

    async fn elections(&self) -> Result<Vec<ElectionSummary>, StoreError> {
        let mut all = Vec::new();
        let mut after: Option<ElectionId> = None;
        loop {
            let page = self.store.list_elections(after.as_ref(), MAX_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() < MAX_PAGE as usize;
            all.extend(page);
            if full || all.len() >= MAX_WATCHED {
                break;
            }
        }
        Ok(all)
    }

    async fn watch(&mut self, election: &ElectionSummary, now: Timestamp) -> Result<(), StoreError> {
        let schedule = election.schedule();
        let final_at = schedule.closes_at + jiff::SignedDuration::from_secs(election.grace_secs as i64);
        let seen = self.seen.entry(election.id.clone()).or_default();
        if now < schedule.opens_at || seen.sealed {
            return Ok(());
        }
        if now < final_at {
            let due = seen.counted_at.is_none_or(|at| now.duration_since(at).unsigned_abs() >= self.interval);
            if due {
                let t = self.store.turnout(&election.id).await?;
                if seen.counted != Some(t) && (t.ballots > 0 || t.participation > 0) {
                    box_record::record_counts(self.store.as_ref(), &election.id, now).await?;
                }
                (seen.counted, seen.counted_at) = (Some(t), Some(now));
            }
            return Ok(());
        }
        // Closed and past grace: the final counts (when they moved), then the roots, once.
        let t = self.store.turnout(&election.id).await?;
        if seen.counted != Some(t) {
            let recorded = box_record::recorded(self.store.as_ref(), &election.id).await?;
            if recorded.seal.is_none() && recorded.most != Some(t) {
                box_record::record_counts(self.store.as_ref(), &election.id, now).await?;
            }
        }
        let Some(full) = self.store.election(&election.id).await? else { return Ok(()) };
        let (seal, written) = box_record::seal(self.store.as_ref(), &full, now).await?;
        if written {
            tracing::info!(
                event = "box_sealed",
                election = %election.id,
                ballots = seal.ballots,
                receipts_root = %seal.receipts_root,
                ballots_root = %seal.ballots_root,
            );
        }
        self.seen.entry(election.id.clone()).or_default().sealed = true;
        Ok(())
    }
}
