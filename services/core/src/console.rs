//! The officers' and admins' moves, free of HTTP: each checks its input, asks the store
//! to apply it together with its audit line, and says what happened in words an officer
//! can act on. The console pages, the JSON calls and the command line all go through here.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::{ContestId, ElectionId};
use crate::error::ApiError;
use crate::store::{
    Activity, ActivityCount, ActivityLog, Audit, AuditEntry, BallotBox, Codes, Constituency, Election, Elections,
    Outbox, OutboxSummary, Roll, SenderHealth, Senders, ServiceStatus,
};

/// The most extra code acceptance an officer can add in one go.
pub const MAX_EXTRA_MINUTES: u32 = 240;
/// The furthest one extension can move the close.
pub const MAX_EXTENSION: Duration = Duration::from_secs(24 * 3600);
/// Minutes of history the dashboard shows.
pub const DASHBOARD_MINUTES: i64 = 60;

/// A reason for the audit log: required, trimmed, bounded.
pub fn reason(raw: Option<&str>) -> Result<String, ApiError> {
    let r = raw.unwrap_or("").trim();
    if r.is_empty() {
        return Err(ApiError::invalid("reason", "a reason is required; it goes into the audit log"));
    }
    if r.chars().count() > 500 {
        return Err(ApiError::invalid("reason", "at most 500 characters"));
    }
    Ok(r.to_owned())
}

fn entry(actor: &str, action: &str, election: &ElectionId, detail: serde_json::Value) -> AuditEntry {
    AuditEntry { actor: actor.to_owned(), action: action.to_owned(), election: Some(election.clone()), detail }
}

/// Sets how many minutes past the validity codes of `election` still verify. Read per
/// request by every service, so it applies at once everywhere.
pub async fn widen_acceptance(
    store: &(impl Codes + ?Sized),
    election: &Election,
    extra_minutes: u32,
    why: &str,
    actor: &str,
) -> Result<(), ApiError> {
    let why = reason(Some(why))?;
    if extra_minutes > MAX_EXTRA_MINUTES {
        return Err(ApiError::invalid("extra_minutes", format!("at most {MAX_EXTRA_MINUTES} extra minutes")));
    }
    let audit = entry(
        actor,
        "otp.acceptance_widened",
        &election.id,
        serde_json::json!({
            "extra_minutes": extra_minutes,
            "previous_extra_minutes": election.otp_extra.as_secs() / 60,
            "reason": why,
        }),
    );
    let extra = Duration::from_secs(u64::from(extra_minutes) * 60);
    store.set_otp_extra(&election.id, extra, &audit, Timestamp::now()).await?;
    tracing::info!(event = "otp_acceptance_widened", election = %election.id, extra_minutes, actor);
    Ok(())
}

/// Moves the close later. Every service reads the schedule per request, so the new close
/// applies everywhere at once (the sign-in page's cache holds it at most one second).
pub async fn extend_close(
    store: &dyn Elections,
    election: &Election,
    new_close: Timestamp,
    why: &str,
    actor: &str,
) -> Result<Timestamp, ApiError> {
    let why = reason(Some(why))?;
    // The schedule is kept in whole seconds.
    let new_close = Timestamp::from_second(new_close.as_second()).unwrap_or(new_close);
    let old = election.schedule.closes_at;
    if new_close > old + MAX_EXTENSION {
        return Err(ApiError::invalid("closes_at", "one extension moves the close by at most 24 hours"));
    }
    let audit = entry(
        actor,
        "window.extended",
        &election.id,
        serde_json::json!({ "from": old.to_string(), "to": new_close.to_string(), "reason": why }),
    );
    store.extend_close(&election.id, new_close, &audit, Timestamp::now()).await?;
    tracing::info!(event = "window_extended", election = %election.id, from = %old, to = %new_close, actor);
    Ok(new_close)
}

/// Closes the election now. `confirm` must repeat the election's id: closing can't be
/// undone, so it is never one stray click.
pub async fn close_early(
    store: &dyn Elections,
    election: &Election,
    confirm: Option<&str>,
    why: &str,
    actor: &str,
) -> Result<Timestamp, ApiError> {
    let why = reason(Some(why))?;
    if confirm.map(str::trim) != Some(election.id.as_str()) {
        return Err(ApiError::invalid(
            "confirm",
            format!("type the election id ({}) to confirm closing it now; this can't be undone", election.id),
        ));
    }
    let audit = entry(
        actor,
        "window.closed_early",
        &election.id,
        serde_json::json!({ "scheduled_close": election.schedule.closes_at.to_string(), "reason": why }),
    );
    let at = store.close_now(&election.id, &audit, Timestamp::now()).await?;
    tracing::info!(event = "window_closed_early", election = %election.id, actor);
    Ok(at)
}

/// When results may be seen: after the close and the grace period, when no more ballots
/// can arrive.
pub fn results_from(election: &Election) -> Timestamp {
    election.schedule.closes_at + election.schedule.grace
}

#[derive(Debug, Clone, Serialize)]
pub struct Quorum {
    pub required_pct: f64,
    /// Turnout as a share of the roll, when the election has a roll.
    pub turnout_pct: Option<f64>,
    /// `None` when there is no quorum or no roll to measure it against.
    pub met: Option<bool>,
}

impl Quorum {
    pub fn of(required_pct: f64, voted: u64, roll: u64) -> Self {
        let turnout_pct = (roll > 0).then(|| voted as f64 * 100.0 / roll as f64);
        let met = if required_pct <= 0.0 { Some(true) } else { turnout_pct.map(|t| t >= required_pct) };
        Quorum { required_pct, turnout_pct, met }
    }
}

/// One minute's counts, oldest first, for the dashboard's charts.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    pub minute: i64,
    pub counts: BTreeMap<Activity, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub election: ElectionId,
    pub title: String,
    pub now: Timestamp,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    pub grace_secs: u64,
    pub seconds_left: i64,
    pub voted: u64,
    pub ballots: u64,
    pub roll: u64,
    pub quorum: Quorum,
    pub code_extra_minutes: u64,
    pub minutes: Vec<Minute>,
    /// Turnout per contest with a constituency, small counts hidden.
    pub constituencies: Vec<ConstituencyTurnout>,
    pub outbox: OutboxSummary,
    pub senders: Vec<SenderHealth>,
    pub services: Vec<ServiceStatus>,
    /// The audit chain's head (`SEQ:HASH`), to note down outside the database: any head
    /// noted here is what `verify-audit --head` checks the chain still reaches.
    pub audit_head: Option<String>,
}

/// Everything the live dashboard shows, from the store (so it is the same whichever
/// instance serves it).
pub async fn dashboard(
    store: &(impl BallotBox + Roll + ActivityLog + Outbox + Senders + Audit + ?Sized),
    election: &Election,
    now: Timestamp,
) -> Result<Dashboard, ApiError> {
    let turnout = store.turnout(&election.id).await?;
    let roll = store.roll_size(&election.id).await?;
    let this_minute = now.as_second().div_euclid(60);
    let since = this_minute - DASHBOARD_MINUTES + 1;
    let counts: Vec<ActivityCount> = store.activity(&election.id, since).await?;
    let minutes = (since..=this_minute)
        .map(|minute| Minute {
            minute,
            counts: Activity::ALL
                .iter()
                .map(|kind| {
                    let n = counts.iter().filter(|c| c.minute == minute && c.kind == *kind).map(|c| c.n).sum();
                    (*kind, n)
                })
                .collect(),
        })
        .collect();
    Ok(Dashboard {
        election: election.id.clone(),
        title: election.title.clone(),
        now,
        opens_at: election.schedule.opens_at,
        closes_at: election.schedule.closes_at,
        grace_secs: election.schedule.grace.as_secs(),
        seconds_left: (election.schedule.closes_at.as_second() - now.as_second()).max(0),
        voted: turnout.participation,
        ballots: turnout.ballots,
        roll,
        quorum: Quorum::of(election.quorum_pct, turnout.participation, roll),
        code_extra_minutes: election.otp_extra.as_secs() / 60,
        minutes,
        constituencies: constituency_turnout(store, election).await?,
        outbox: store.outbox_summary(&election.id, now).await?,
        senders: store.sender_health().await?,
        services: store.service_status().await?,
        audit_head: store.audit_head().await?.map(|h| h.to_string()),
    })
}

/// The smallest count shown as itself: below it a constituency's count could point at
/// the few people in it, so it reads "< 10".
pub const SMALLEST_SHOWN: u64 = 10;

/// A count as the dashboard may show it: the number from `SMALLEST_SHOWN` up, else "< 10".
pub fn shown(n: u64) -> String {
    if n < SMALLEST_SHOWN { format!("< {SMALLEST_SHOWN}") } else { n.to_string() }
}

/// One constituency's turnout: its voters who cast a ballot, and for a roll column how many
/// the roll lists in it. Counts under 10 are never shown, in the page or the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ConstituencyTurnout {
    pub contest: ContestId,
    pub title: String,
    pub voted: String,
    /// Voters the roll lists in this constituency (roll columns only).
    pub eligible: Option<String>,
    /// voted ÷ eligible, as a percentage, when both are shown.
    pub turnout_pct: Option<String>,
}

/// How long the dashboard reuses a constituency's roll count (a scan of the roll): the
/// page refreshes every few seconds, and a roll changes by imports, not by the minute.
const ROLL_COUNT_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Most roll counts kept (one per constituency contest of the elections being watched).
const MAX_ROLL_COUNTS: usize = 1024;

type RollCounts = std::collections::HashMap<(ElectionId, ContestId), (std::time::Instant, u64)>;
static ROLL_COUNTS: std::sync::LazyLock<std::sync::Mutex<RollCounts>> = std::sync::LazyLock::new(Default::default);

async fn roll_count(
    store: &(impl Roll + ?Sized),
    election: &ElectionId,
    contest: &ContestId,
    column: &str,
    value: &str,
) -> Result<u64, ApiError> {
    let key = (election.clone(), contest.clone());
    if let Some((at, n)) = ROLL_COUNTS.lock().expect("not poisoned").get(&key)
        && at.elapsed() < ROLL_COUNT_TTL
    {
        return Ok(*n);
    }
    let n = store.roll_count_where(election, column, value).await?;
    let mut counts = ROLL_COUNTS.lock().expect("not poisoned");
    if counts.len() >= MAX_ROLL_COUNTS {
        counts.clear();
    }
    counts.insert(key, (std::time::Instant::now(), n));
    Ok(n)
}

async fn constituency_turnout(
    store: &(impl BallotBox + Roll + ?Sized),
    election: &Election,
) -> Result<Vec<ConstituencyTurnout>, ApiError> {
    let counted = store.constituency_turnout(&election.id).await?;
    let mut out = Vec::new();
    for contest in election.contests.iter().filter(|c| !c.rules.voters.is_everyone()) {
        let voted = counted.iter().find(|(id, _)| id == &contest.id).map_or(0, |(_, n)| *n);
        let eligible = match &contest.rules.voters {
            Constituency::RollColumn { column, value } => {
                Some(roll_count(store, &election.id, &contest.id, column, value).await?)
            }
            _ => None,
        };
        let turnout_pct = eligible
            .filter(|&e| e >= SMALLEST_SHOWN && voted >= SMALLEST_SHOWN)
            .map(|e| format!("{:.1}%", voted as f64 * 100.0 / e as f64));
        out.push(ConstituencyTurnout {
            contest: contest.id.clone(),
            title: contest.title.clone(),
            voted: shown(voted),
            eligible: eligible.map(shown),
            turnout_pct,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_are_never_shown() {
        assert_eq!(shown(0), "< 10");
        assert_eq!(shown(9), "< 10");
        assert_eq!(shown(10), "10");
        assert_eq!(shown(4321), "4321");
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(reason(None).is_err());
        assert!(reason(Some("   ")).is_err());
        assert!(reason(Some(&"x".repeat(501))).is_err());
        assert_eq!(reason(Some("  mail is slow ")).unwrap(), "mail is slow");
    }

    #[test]
    fn quorum_is_measured_against_the_roll() {
        let q = Quorum::of(25.0, 30, 100);
        assert_eq!((q.turnout_pct, q.met), (Some(30.0), Some(true)));
        let q = Quorum::of(50.0, 30, 100);
        assert_eq!(q.met, Some(false));
        // No roll: turnout share unknown, so a real quorum can't be judged.
        assert_eq!(Quorum::of(50.0, 30, 0).met, None);
        // No quorum set: always met.
        assert_eq!(Quorum::of(0.0, 0, 0).met, Some(true));
    }
}
