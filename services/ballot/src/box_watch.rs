//! The box watch: what the ballot service writes to the audit log about each ballot box,
//! and how the chain's head gets out of the database.
//!
//! Every tick (2 s) it reads the chain's head and logs it when it moved
//! (`event = "audit_head"`), so the service log holds a trail of heads anyone can check
//! the chain against later (`turnout-ballot verify-audit --head SEQ:HASH`). For each
//! election:
//! - while voting is open (and through the grace period), the running counts of
//!   participations and ballots go to the log (`box.counted`) when they changed and the
//!   last count is `TURNOUT_BOX_COUNT_INTERVAL_SECS` old, and once more as the window
//!   closes: a box that later holds fewer was cut;
//! - once close + grace (and a few seconds for casts in flight) has passed, the final
//!   counts and the box's roots (`box.sealed`, see `box_record`) are written once, and
//!   logged;
//! - the head is mailed to the officers (`core::anchor`) when voting opens, after each
//!   window change the log records (`window.*`), and with the roots once sealed.
//!
//! Several ballot processes each run a watch: counts may then be written once per process
//! per interval, which costs a line each and proves the same thing; each mail is queued
//! once between them. One election's failure is logged and the others still watched; the
//! next round tries it again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use turnout_core::anchor::{self, AnchorEvent, Anchored};
use turnout_core::box_record;
use turnout_core::domain::{ElectionId, VoterEmail};
use turnout_core::store::{AuditHead, ElectionSummary, MAX_PAGE, Store, StoreError, Turnout};

const TICK: Duration = Duration::from_secs(2);
/// Elections watched at most: the first pages of the list, by id.
const MAX_WATCHED: usize = 2_000;
/// After close + grace, how long the seal waits for casts already being written.
pub const SEAL_MARGIN: SignedDuration = SignedDuration::from_secs(5);
/// How long after close + grace a restarted watch still mails an election's events.
const RECENT: SignedDuration = SignedDuration::from_hours(24);
/// Audit entries read per round while catching up with the log.
const AUDIT_PAGES_PER_ROUND: usize = 20;

/// What the watch last saw of one election.
#[derive(Debug, Default)]
struct Seen {
    counted_at: Option<Timestamp>,
    counted: Option<Turnout>,
    counted_at_close: bool,
    opened_mailed: bool,
    sealed: bool,
}

pub struct BoxWatch {
    store: Arc<dyn Store>,
    interval: Duration,
    anchor_to: Vec<VoterEmail>,
    seen: HashMap<ElectionId, Seen>,
    head: Option<AuditHead>,
    /// The last audit entry read for window changes.
    audit_after: i64,
    /// Window changes read from the log, not yet mailed: (election, seq, action).
    window_changes: Vec<(ElectionId, i64, String)>,
}

impl BoxWatch {
    pub fn new(store: Arc<dyn Store>, interval: Duration, anchor_to: Vec<VoterEmail>) -> Self {
        Self {
            store,
            interval,
            anchor_to,
            seen: HashMap::new(),
            head: None,
            audit_after: 0,
            window_changes: Vec::new(),
        }
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

    /// One round: the log's new window changes, each election's box, then the head (logged
    /// when it moved) and the mails this round's events call for.
    pub async fn round(&mut self, now: Timestamp) -> Result<(), StoreError> {
        self.read_window_changes().await?;
        let elections = self.elections().await?;
        let mut events = Vec::new();
        for election in &elections {
            match self.watch(election, now).await {
                Ok(Some(event)) => events.push((election, event)),
                Ok(None) => {}
                Err(e) => tracing::warn!(event = "box_watch_failed", election = %election.id, error = %e),
            }
        }
        let head = self.store.audit_head().await?;
        if head.is_some() && head != self.head {
            let shown = head.as_ref().map(ToString::to_string).unwrap_or_default();
            tracing::info!(event = "audit_head", head = %shown);
            self.head = head.clone();
        }
        let Some(head) = head else { return Ok(()) };
        for (id, seq, action) in std::mem::take(&mut self.window_changes) {
            // Only for a box open or lately closed: an old log's changes are history.
            if let Some(election) = elections.iter().find(|e| e.id == id && now < final_at(e) + RECENT) {
                events.push((election, AnchorEvent::WindowChanged { seq, action }));
            }
        }
        for (election, event) in events {
            self.mail(election, &event, &head, now).await;
        }
        Ok(())
    }

    async fn mail(&mut self, election: &ElectionSummary, event: &AnchorEvent, head: &AuditHead, now: Timestamp) {
        let schedule = election.schedule();
        let anchored = Anchored { id: &election.id, title: &election.title, schedule: &schedule };
        match anchor::queue_anchor(self.store.as_ref(), &self.anchor_to, anchored, event, head, now).await {
            Ok(queued) => {
                if let AnchorEvent::Opened = event {
                    self.seen.entry(election.id.clone()).or_default().opened_mailed = true;
                }
                if queued > 0 {
                    tracing::info!(event = "anchor_queued", election = %election.id, head = %head, mails = queued);
                }
            }
            Err(e) => tracing::warn!(event = "anchor_failed", election = %election.id, error = %e),
        }
    }

    /// Reads the log from where the last round stopped, keeping the window changes.
    async fn read_window_changes(&mut self) -> Result<(), StoreError> {
        for _ in 0..AUDIT_PAGES_PER_ROUND {
            let page = self.store.list_audit(self.audit_after, MAX_PAGE).await?;
            let Some(last) = page.last() else { break };
            self.audit_after = last.seq;
            for entry in &page {
                if entry.action.starts_with("window.")
                    && let Some(id) = entry.election.as_deref().and_then(|e| ElectionId::parse(e).ok())
                {
                    self.window_changes.push((id, entry.seq, entry.action.clone()));
                }
            }
            if page.len() < MAX_PAGE as usize {
                break;
            }
        }
        // Bounded: an election's changes are an officer's actions, but a log full of them
        // must not grow the watch.
        if self.window_changes.len() > 10_000 {
            self.window_changes.drain(..self.window_changes.len() - 10_000);
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

    /// One election's box; returns what the officers should be mailed about.
    async fn watch(&mut self, election: &ElectionSummary, now: Timestamp) -> Result<Option<AnchorEvent>, StoreError> {
        let schedule = election.schedule();
        let seen = self.seen.entry(election.id.clone()).or_default();
        if now < schedule.opens_at || seen.sealed {
            return Ok(None);
        }
        if now < final_at(election) + SEAL_MARGIN {
            let closing = now >= schedule.closes_at && !seen.counted_at_close;
            let due =
                closing || seen.counted_at.is_none_or(|at| now.duration_since(at).unsigned_abs() >= self.interval);
            if due {
                let t = self.store.turnout(&election.id).await?;
                if seen.counted != Some(t) && (t.ballots > 0 || t.participation > 0) {
                    box_record::record_counts(self.store.as_ref(), &election.id, now).await?;
                }
                (seen.counted, seen.counted_at) = (Some(t), Some(now));
                seen.counted_at_close |= closing;
            }
            let opening = now < schedule.closes_at && !seen.opened_mailed;
            return Ok(opening.then_some(AnchorEvent::Opened));
        }
        // Closed and past grace: the final counts (when they moved), then the roots, once.
        let t = self.store.turnout(&election.id).await?;
        if seen.counted != Some(t) {
            let recorded = box_record::recorded(self.store.as_ref(), &election.id).await?;
            if recorded.seal.is_none() && recorded.most != Some(t) {
                box_record::record_counts(self.store.as_ref(), &election.id, now).await?;
            }
        }
        let Some(full) = self.store.election(&election.id).await? else { return Ok(None) };
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
        // Mailed when written, or on a restart soon after (queued once either way); an
        // election sealed long ago is not mailed again.
        let recent = now < final_at(election) + RECENT;
        Ok((written || recent).then_some(AnchorEvent::Sealed(seal)))
    }
}

/// When no more ballots can arrive: close + grace.
fn final_at(election: &ElectionSummary) -> Timestamp {
    election.closes_at + SignedDuration::from_secs(election.grace_secs as i64)
}
