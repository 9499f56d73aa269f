//! What the admin and officer console asks of the store: election edits, candidate
//! decisions, roll import jobs, window moves, results, the audit log and the dashboard's
//! counts. Every change is refused or applied together with its audit line.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{CandidateId, ContestId, ElectionId, Username};
use crate::error::{ApiError, ErrorCode};

use super::{CandidateStatus, StoreError};

/// Most lines a page of any console list holds.
pub const MAX_PAGE: u32 = 500;

/// Per-row errors kept for one roll import; beyond it only the count grows.
pub const MAX_IMPORT_ERRORS: u64 = 10_000;

/// Why a console change was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such election")]
    UnknownElection,
    #[error("no such contest or candidate")]
    UnknownCandidate,
    /// A rule forbids the change now (candidates locked, close not later, ...).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::UnknownElection => ApiError::new(ErrorCode::UnknownElection, "There is no such election."),
            ChangeError::UnknownCandidate => {
                ApiError::new(ErrorCode::NotFound, "There is no such contest or candidate in this election.")
            }
            ChangeError::Refused(why) => ApiError::new(ErrorCode::Conflict, why),
            ChangeError::Store(e) => e.into(),
        }
    }
}

/// An admin's edit of an election that has not opened yet. `None` leaves a field alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionEdit {
    pub title: Option<String>,
    pub opens_at: Option<Timestamp>,
    pub closes_at: Option<Timestamp>,
    pub time_zone: Option<String>,
    pub grace_secs: Option<u64>,
    pub quorum_pct: Option<f64>,
    /// Code validity for this election in seconds; 0 means "the configured default".
    pub otp_validity_secs: Option<u64>,
    /// The contests in order; existing ones keep their candidates. A contest with
    /// candidates can't be dropped.
    pub contests: Option<Vec<ContestEdit>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContestEdit {
    pub id: ContestId,
    pub title: String,
}

impl ElectionEdit {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(t) = &self.title
            && (t.trim().is_empty() || t.len() > 200)
        {
            return Err(ApiError::invalid("title", "1-200 characters"));
        }
        if let Some(tz) = &self.time_zone
            && !crate::schedule::valid_time_zone(tz)
        {
            return Err(ApiError::invalid("time_zone", "not a known IANA time zone (e.g. Europe/London)"));
        }
        if self.grace_secs.is_some_and(|g| g > 3600) {
            return Err(ApiError::invalid("grace_secs", "at most 3600"));
        }
        if let Some(q) = self.quorum_pct {
            valid_quorum(q)?;
        }
        if let Some(v) = self.otp_validity_secs {
            valid_validity(v)?;
        }
        if let Some(contests) = &self.contests {
            if contests.is_empty() || contests.len() > 50 {
                return Err(ApiError::invalid("contests", "1-50 contests"));
            }
            let mut ids = std::collections::HashSet::new();
            for c in contests {
                if !ids.insert(&c.id) {
                    return Err(ApiError::invalid("contests", "contest ids must be unique"));
                }
                if c.title.trim().is_empty() || c.title.len() > 200 {
                    return Err(ApiError::invalid("contests.title", "1-200 characters"));
                }
            }
        }
        Ok(())
    }
}

pub fn valid_quorum(q: f64) -> Result<(), ApiError> {
    if !(0.0..=100.0).contains(&q) {
        return Err(ApiError::invalid("quorum_pct", "a percentage from 0 to 100"));
    }
    Ok(())
}

pub fn valid_validity(secs: u64) -> Result<(), ApiError> {
    if secs != 0 && !(60..=86_400).contains(&secs) {
        return Err(ApiError::invalid("otp_validity_secs", "0 (the default) or 60-86400 seconds"));
    }
    Ok(())
}

/// An admin's decision on a nominated candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn status(self) -> CandidateStatus {
        match self {
            Decision::Approve => CandidateStatus::Approved,
            Decision::Reject => CandidateStatus::Rejected,
        }
    }
}

/// A candidate as the console lists them (with the reason of the last decision).
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRow {
    pub contest: ContestId,
    pub id: CandidateId,
    pub name: String,
    pub statement: String,
    pub status: CandidateStatus,
    pub reason: Option<String>,
}

/// One line of the voter roll, for the console's paginated view.
#[derive(Debug, Clone, Serialize)]
pub struct RollRow {
    pub uid: Username,
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportState {
    Running,
    Done,
    Failed,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A roll import: its progress survives a restart, so the import resumes where the last
/// committed chunk ended.
#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    pub id: String,
    pub election: ElectionId,
    pub actor: String,
    pub file_name: String,
    pub state: ImportState,
    /// Data rows in the file (known once it is uploaded).
    pub rows_total: u64,
    /// Data rows handled so far (imported or rejected), in whole chunks.
    pub rows_done: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ImportJob {
    /// A new job for an uploaded file of `rows_total` data rows, nothing imported yet.
    pub fn started(
        id: &str,
        election: &ElectionId,
        actor: &str,
        file_name: &str,
        rows_total: u64,
        now: Timestamp,
    ) -> Self {
        Self {
            id: id.to_owned(),
            election: election.clone(),
            actor: actor.to_owned(),
            file_name: file_name.to_owned(),
            state: ImportState::Running,
            rows_total,
            rows_done: 0,
            added: 0,
            updated: 0,
            unchanged: 0,
            rejected: 0,
            message: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Which run of an import may write to it, and until when. Every chunk renews it; once
/// `until` has passed without one (the process stopped), another process may take the
/// import over, and the old run's writes are refused from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLease {
    /// One per run of the import (not per process), so two runs never share it.
    pub owner: String,
    pub until: Timestamp,
}

/// A row the import refused: its line in the file and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// One committed chunk of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportChunk {
    pub entries: Vec<super::RollEntry>,
    pub errors: Vec<RowError>,
    /// Data rows this chunk covered (entries + errors).
    pub rows: u64,
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

/// The outcome of re-walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    pub entries: u64,
    /// The first entry whose hash or link does not match, and why.
    pub broken_at: Option<i64>,
    pub problem: Option<String>,
}

/// Per-contest counts after close. `blank` is ballots that left the contest out.
#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    pub participation: u64,
    pub ballots: u64,
    pub contests: BTreeMap<String, ContestTally>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContestTally {
    pub votes: BTreeMap<String, u64>,
    pub blank: u64,
}

/// Counted events, per minute, for the live dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Login,
    CodeRequested,
    CodeSent,
    CodeFailed,
    CodeVerified,
    Ballot,
}

impl Activity {
    pub const ALL: [Activity; 6] = [
        Activity::Login,
        Activity::CodeRequested,
        Activity::CodeSent,
        Activity::CodeFailed,
        Activity::CodeVerified,
        Activity::Ballot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Login => "login",
            Activity::CodeRequested => "code_requested",
            Activity::CodeSent => "code_sent",
            Activity::CodeFailed => "code_failed",
            Activity::CodeVerified => "code_verified",
            Activity::Ballot => "ballot",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// Events not tied to one election (sign-ins) are counted under this key.
pub const ALL_ELECTIONS: &str = "";

/// `n` events of `kind` in the minute starting at `minute` (unix seconds / 60).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityCount {
    pub election: String,
    pub kind: Activity,
    pub minute: i64,
    pub n: u64,
}

/// The outbox as officers see it for one election.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxSummary {
    /// Age of the oldest message not yet sent (queued, sending or deferred), in seconds.
    pub oldest_waiting_secs: Option<i64>,
    pub queued: u64,
    pub sending: u64,
    pub deferred: u64,
    pub sent: u64,
    pub failed: u64,
    /// Queue-to-sent seconds over mail sent in the last 10 minutes.
    pub latency_p50_secs: Option<i64>,
    pub latency_p95_secs: Option<i64>,
}

/// One outbox message, without the code (never stored) and with the address masked by
/// the caller.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    /// Position in the outbox, newest highest: the page cursor.
    pub seq: i64,
    pub id: String,
    pub voter: String,
    pub recipient: String,
    pub state: String,
    pub attempts: u32,
    pub account: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// One page of the console's outbox list, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxPage {
    pub rows: Vec<OutboxRow>,
    /// The `before` of the next (older) page; none on the last page.
    pub next_before: Option<i64>,
}

/// What a service last reported about itself (e.g. auth: directory and breaker).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub ok: bool,
    pub detail: serde_json::Value,
    pub at: Timestamp,
}
