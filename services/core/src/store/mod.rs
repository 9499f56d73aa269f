//! The Store port: the domain operations every service needs, each atomic in its
//! adapter's native way. Services hold an `Arc<dyn Store>` and never see SQL.
//!
//! Layout:
//! - `mod.rs`: the trait and the values it speaks in;
//! - `sqlite.rs`: the embedded default adapter (WAL, one file shared by all processes);
//! - `mongo/`: the MongoDB adapter (`TURNOUT_STORE=mongodb`; a replica set).

mod cache;
pub mod console;
pub mod mongo;
mod shared;
mod sqlite;
mod sqlite_ballots;
mod sqlite_console;
mod sqlite_sign_outs;
mod sqlite_throttle;
pub mod throttle;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{CandidateId, ContestId, ElectionId, Receipt, Username, VoterEmail};
use crate::error::{ApiError, ErrorCode};
use crate::schedule::Schedule;

pub use cache::ElectionCache;
pub use console::*;
pub use sqlite::SqliteStore;
pub use throttle::{Admission, AttemptOutcome, SignInKeys, ThrottleRules, ThrottledBy};

/// A voter's choices: at most one candidate per contest; a contest left out is a blank.
pub type Choices = BTreeMap<ContestId, CandidateId>;

/// Who may vote in an election.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Eligibility {
    /// Everyone the directory accepts.
    #[default]
    Everyone,
    /// Only voters on the imported roll.
    Roll,
    /// Members of this LDAP group (its DN).
    LdapGroup { group_dn: String },
    /// Directory entries matching this LDAP filter, e.g. `(departmentNumber=PHYS)`.
    LdapFilter { filter: String },
}

impl Eligibility {
    pub fn validate(&self) -> Result<(), ApiError> {
        match self {
            Eligibility::LdapGroup { group_dn } if group_dn.trim().is_empty() || group_dn.len() > 500 => {
                Err(ApiError::invalid("eligibility.group_dn", "a group DN of at most 500 characters"))
            }
            Eligibility::LdapFilter { filter }
                if !(filter.starts_with('(') && filter.ends_with(')')) || filter.len() > 500 =>
            {
                Err(ApiError::invalid("eligibility.filter", "an LDAP filter in parentheses, at most 500 characters"))
            }
            _ => Ok(()),
        }
    }
}

/// One line of a voter roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollEntry {
    pub uid: Username,
    pub email: Option<VoterEmail>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RollImport {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewElection {
    pub id: ElectionId,
    pub title: String,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    pub time_zone: String,
    #[serde(default)]
    pub grace_secs: u64,
    #[serde(default)]
    pub eligibility: Eligibility,
    /// Share of the roll (percent) that must vote for a valid result; 0 = no quorum.
    #[serde(default)]
    pub quorum_pct: f64,
    /// Code validity for this election in seconds; 0 = the configured default.
    #[serde(default)]
    pub otp_validity_secs: u64,
    pub contests: Vec<NewContest>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContest {
    pub id: ContestId,
    pub title: String,
    pub candidates: Vec<NewCandidate>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCandidate {
    pub id: CandidateId,
    pub name: String,
    #[serde(default)]
    pub statement: String,
    #[serde(default = "CandidateStatus::pending")]
    pub status: CandidateStatus,
}

impl NewElection {
    /// Checks what types alone can't: window order, zone, sizes, unique ids.
    pub fn validate(&self) -> Result<(), ApiError> {
        let bad = |field: &str, why: &str| Err(ApiError::invalid(field, why));
        if self.title.trim().is_empty() || self.title.len() > 200 {
            return bad("title", "1-200 characters");
        }
        if self.closes_at <= self.opens_at {
            return bad("closes_at", "must be after opens_at");
        }
        if !crate::schedule::valid_time_zone(&self.time_zone) {
            return bad("time_zone", "not a known IANA time zone (e.g. Europe/London)");
        }
        if self.grace_secs > 3600 {
            return bad("grace_secs", "at most 3600");
        }
        self.eligibility.validate()?;
        console::valid_quorum(self.quorum_pct)?;
        console::valid_validity(self.otp_validity_secs)?;
        if self.contests.is_empty() || self.contests.len() > 50 {
            return bad("contests", "1-50 contests");
        }
        let mut contest_ids = std::collections::HashSet::new();
        for contest in &self.contests {
            if !contest_ids.insert(&contest.id) {
                return bad("contests", "contest ids must be unique");
            }
            if contest.title.trim().is_empty() || contest.title.len() > 200 {
                return bad("contests.title", "1-200 characters");
            }
            if contest.candidates.len() > 200 {
                return bad("contests.candidates", "at most 200 per contest");
            }
            let mut ids = std::collections::HashSet::new();
            for c in &contest.candidates {
                if !ids.insert(&c.id) {
                    return bad("candidates", "candidate ids must be unique within a contest");
                }
                if c.name.trim().is_empty() || c.name.len() > 200 || c.statement.len() > 5000 {
                    return bad("candidates", "name 1-200 characters, statement at most 5000");
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateStatus {
    Pending,
    Approved,
    Rejected,
}

impl CandidateStatus {
    fn pending() -> Self {
        Self::Pending
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub id: CandidateId,
    pub name: String,
    pub statement: String,
    pub status: CandidateStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct Contest {
    pub id: ContestId,
    pub title: String,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone)]
pub struct Election {
    pub id: ElectionId,
    pub title: String,
    pub schedule: Schedule,
    pub contests: Vec<Contest>,
    /// Extra time officers added to code acceptance (e.g. while mail is slow).
    pub otp_extra: Duration,
    pub eligibility: Eligibility,
    pub quorum_pct: f64,
    /// This election's code validity, when it overrides the configured one.
    pub otp_validity: Option<Duration>,
}

/// Why a set of choices can't go in the box.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("there is no contest {0} in this election")]
    UnknownContest(String),
    #[error("{candidate} is not an approved candidate in {contest}")]
    UnknownCandidate { contest: String, candidate: String },
}

impl Election {
    /// How long after issue a code for this election verifies: its own validity (or the
    /// configured one) plus whatever officers added while mail was slow.
    pub fn code_acceptance(&self, configured: Duration) -> Duration {
        self.otp_validity.unwrap_or(configured) + self.otp_extra
    }

    /// Only approved candidates can be chosen; unknown contests are refused.
    pub fn check_choices(&self, choices: &Choices) -> Result<(), ChoiceError> {
        for (contest_id, candidate_id) in choices {
            let contest = self
                .contests
                .iter()
                .find(|c| &c.id == contest_id)
                .ok_or_else(|| ChoiceError::UnknownContest(contest_id.to_string()))?;
            let approved =
                contest.candidates.iter().any(|c| &c.id == candidate_id && c.status == CandidateStatus::Approved);
            if !approved {
                return Err(ChoiceError::UnknownCandidate {
                    contest: contest_id.to_string(),
                    candidate: candidate_id.to_string(),
                });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ElectionSummary {
    pub id: ElectionId,
    pub title: String,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    pub time_zone: String,
    pub grace_secs: u64,
    pub eligibility: Eligibility,
}

impl ElectionSummary {
    pub fn schedule(&self) -> Schedule {
        Schedule {
            opens_at: self.opens_at,
            closes_at: self.closes_at,
            grace: Duration::from_secs(self.grace_secs),
            time_zone: self.time_zone.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Turnout {
    pub participation: u64,
    pub ballots: u64,
}

/// Rules for issuing a code, from configuration (and later, officer overrides).
#[derive(Debug, Clone, Copy)]
pub struct OtpPolicy {
    pub validity: Duration,
    pub cooldown: Duration,
    pub max_sends: u32,
    pub max_attempts: u32,
}

/// When repeated voided codes lock a voter out for a while.
#[derive(Debug, Clone, Copy)]
pub struct LockPolicy {
    pub after_voids: u32,
    pub period: Duration,
}

/// What an issue did: the code's identity (never the code itself) and the queued mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpIssue {
    pub generation: u32,
    pub issued_at: Timestamp,
    /// True when the still-valid current code was queued again rather than a new one.
    pub resent: bool,
    pub mail_id: Uuid,
}

/// One verification attempt, already counted against the code's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpAttempt {
    pub generation: u32,
    pub issued_at: Timestamp,
    pub attempts_used: u32,
}

/// A claimed outbox message. It carries what is needed to derive the code at send time:
/// codes are never stored.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: Uuid,
    pub election: ElectionId,
    pub voter: Username,
    pub to: VoterEmail,
    pub generation: u32,
    pub issued_at: Timestamp,
    /// Sends tried so far (not counting this one).
    pub attempts: u32,
    /// The account the last try went through: a retry prefers another one.
    pub last_account: Option<String>,
    /// When the message entered the outbox (whole seconds).
    pub queued_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailState {
    Queued,
    Sending,
    Sent,
    Deferred,
    Failed,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Sent, Self::Deferred, Self::Failed].into_iter().find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone)]
pub enum MailResult {
    Sent {
        account: String,
        from: String,
    },
    /// Try again at `retry_at` (on any account).
    Deferred {
        account: String,
        error: String,
        retry_at: Timestamp,
    },
    Failed {
        account: String,
        error: String,
    },
    /// Not tried (no capacity, or its account was quarantined mid-batch): back to the
    /// queue at once, without counting an attempt.
    Released,
}

#[derive(Debug, Clone)]
pub struct MailOutcome {
    pub id: Uuid,
    pub result: MailResult,
}

/// What a voter is shown about their latest code email.
#[derive(Debug, Clone, Serialize)]
pub struct MailStatus {
    pub state: MailState,
    pub queued_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub from: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Timestamp,
}

/// The voter's code state as the OTP page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OtpStatus {
    pub mail: Option<MailStatus>,
    pub last_request_at: Timestamp,
    pub sends: u32,
    pub locked_until: Option<Timestamp>,
}

/// A sender account's limits, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLimits {
    pub name: String,
    pub per_minute: u32,
    pub max_concurrent: u32,
    pub daily_cap: u32,
}

impl AccountLimits {
    /// Seconds between two sends: 2% slower than the rate, so jitter on the wire never
    /// puts more than `per_minute` messages in any minute at the provider.
    pub fn interval_secs(&self) -> f64 {
        60.0 / f64::from(self.per_minute.max(1)) * 1.02
    }
}

/// One account as a reservation found it in the store (either adapter).
pub(crate) struct AccountState {
    /// GCRA: the theoretical time of the account's next send (unix seconds).
    pub tat: f64,
    /// Sends counted today (already 0 when the stored day is not today).
    pub sent_today: u32,
    pub quarantined_until: i64,
    /// SMTP sessions other instances hold now.
    pub held_slots: u32,
}

/// An account that can send in this reservation, and the start times planned on it.
pub(crate) struct SendCandidate<'a> {
    pub limits: &'a AccountLimits,
    pub next: f64,
    pub daily_left: u32,
    pub sent_today: u32,
    pub free_slots: u32,
    pub times: Vec<f64>,
}

/// The reservation rules both adapters share: which accounts can send, and on which
/// each send goes. The adapters read and write the accounts and slots around it.
pub(crate) struct SendPlanner<'a> {
    now_f: f64,
    now_s: i64,
    horizon: Duration,
    candidates: Vec<SendCandidate<'a>>,
    /// When nothing can be granted: the earliest moment some account can send.
    next_capacity: Option<f64>,
}

impl<'a> SendPlanner<'a> {
    pub fn new(now: Timestamp, horizon: Duration) -> Self {
        Self {
            now_f: now.as_duration().as_secs_f64(),
            now_s: now.as_second(),
            horizon,
            candidates: Vec::new(),
            next_capacity: None,
        }
    }

    fn capacity_at(&mut self, at: f64) {
        self.next_capacity = Some(self.next_capacity.map_or(at, |n| n.min(at)));
    }

    /// Quarantined, out of today's cap, or with every session held: not a candidate.
    pub fn consider(&mut self, limits: &'a AccountLimits, state: AccountState) {
        if state.quarantined_until > self.now_s {
            self.capacity_at(state.quarantined_until as f64);
            return;
        }
        let daily_left = limits.daily_cap.saturating_sub(state.sent_today);
        let free_slots = limits.max_concurrent.saturating_sub(state.held_slots);
        if daily_left == 0 {
            return;
        }
        if free_slots == 0 {
            self.capacity_at(self.now_f + 1.0);
            return;
        }
        let next = state.tat.max(self.now_f);
        self.candidates.push(SendCandidate {
            limits,
            next,
            daily_left,
            sent_today: state.sent_today,
            free_slots,
            times: Vec::new(),
        });
    }

    /// Earliest start first: each send goes to the account that can start it soonest,
    /// so a few messages go out at once on several accounts rather than queueing on one,
    /// and a burst fills every account's horizon evenly. Returns the accounts that got
    /// sends (the others only move the next-capacity time).
    pub fn plan(&mut self, wanted: u32) -> Vec<SendCandidate<'a>> {
        let horizon_end = self.now_f + self.horizon.as_secs_f64();
        for _ in 0..wanted {
            let best = self
                .candidates
                .iter_mut()
                .filter(|c| c.next <= horizon_end && (c.times.len() as u32) < c.daily_left)
                .min_by(|a, b| a.next.total_cmp(&b.next));
            let Some(c) = best else { break };
            c.times.push(c.next);
            c.next += c.limits.interval_secs();
        }
        let (planned, idle): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.candidates).into_iter().partition(|c| !c.times.is_empty());
        for c in idle {
            self.capacity_at(c.next - self.horizon.as_secs_f64());
        }
        planned
    }

    /// When nothing was granted: the earliest moment an account will have capacity.
    pub fn next_capacity_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.next_capacity.map(|f| secs_to_timestamp(f.max(self.now_f), now))
    }
}

pub(crate) fn secs_to_timestamp(f: f64, fallback: Timestamp) -> Timestamp {
    Timestamp::from_duration(jiff::SignedDuration::from_secs_f64(f)).unwrap_or(fallback)
}

/// Sends granted on one account: start each at its time, at most `slots` at once.
#[derive(Debug, Clone, PartialEq)]
pub struct SendGrant {
    pub account: String,
    pub slots: u32,
    pub send_at: Vec<Timestamp>,
    /// The account's schedule after this grant, to hand unused sends back.
    pub tat_after: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub grants: Vec<SendGrant>,
    /// When no account had capacity: the earliest moment one will.
    pub next_capacity_at: Option<Timestamp>,
}

/// What one batch did to one account.
#[derive(Debug, Clone, Default)]
pub struct AccountReport {
    pub account: String,
    /// Granted sends that were not used (handed back to the schedule and the daily cap).
    pub unused: Vec<Timestamp>,
    pub tat_after: f64,
    pub interval_secs: f64,
    pub sent: u32,
    pub failed: u32,
    /// `421 4.7.0`-style answers: too many in a row quarantine the account.
    pub strikes: u32,
    /// A quota or block answer: quarantine now, for this reason.
    pub quarantine: Option<String>,
    pub last_error: Option<String>,
}

impl AccountReport {
    pub fn for_grant(grant: &SendGrant, limits: &AccountLimits) -> Self {
        Self {
            account: grant.account.clone(),
            tat_after: grant.tat_after,
            interval_secs: limits.interval_secs(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QuarantinePolicy {
    pub period: Duration,
    /// Consecutive strikes that quarantine an account.
    pub strike_limit: u32,
}

/// One account's health, for officers and readiness.
#[derive(Debug, Clone, Serialize)]
pub struct SenderHealth {
    pub account: String,
    pub quarantined_until: Option<Timestamp>,
    pub quarantine_reason: Option<String>,
    pub sent_today: u32,
    pub sent_total: u64,
    pub failed_total: u64,
    pub last_error: Option<String>,
    pub last_sent_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub election: Option<ElectionId>,
    pub detail: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Busy, locked, disk full, I/O: worth retrying later; answered as 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The client sees a code and the request id; the log keeps the cause.
        match &e {
            StoreError::Other(cause) => tracing::error!(event = "store_error", error = format!("{cause:#}")),
            StoreError::Unavailable(cause) => tracing::warn!(event = "store_unavailable", error = %cause),
            StoreError::Conflict(_) => {}
        }
        match e {
            StoreError::Unavailable(_) => ApiError::store_unavailable(),
            StoreError::Conflict(what) => ApiError::new(ErrorCode::AlreadyExists, what),
            StoreError::Other(_) => ApiError::internal(),
        }
    }
}

/// One ballot to cast: who, where, what, and the times the window rule needs.
#[derive(Debug, Clone)]
pub struct CastBallot {
    pub election: ElectionId,
    pub voter: Username,
    pub choices: Choices,
    /// When the voter's code was verified (the grace rule looks at it).
    pub verified_at: Timestamp,
    pub now: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum CastError {
    #[error("this voter has already voted in this election")]
    AlreadyVoted,
    /// The window, as the store has it at the moment of casting, refuses this ballot: the
    /// schedule's own refusal (when voting opens, or when it closed).
    #[error("outside the voting window: {0}")]
    OutsideWindow(ApiError),
    #[error("no such election")]
    UnknownElection,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("a code was sent moments ago")]
    Cooldown { retry_after_secs: u64 },
    #[error("the most codes one voter may request has been reached")]
    SendLimit,
    #[error("locked after repeated wrong codes")]
    Locked { until: Timestamp },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("no active code")]
    NoActiveCode,
    #[error("too many wrong codes")]
    TooManyAttempts,
    #[error("locked after repeated wrong codes")]
    Locked { until: Timestamp },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The store the settings choose (`TURNOUT_STORE`), opened and ready: SQLite by default,
/// MongoDB when asked for.
pub async fn open(settings: &crate::Settings) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    use secrecy::ExposeSecret;
    Ok(match &settings.store {
        crate::config::StoreChoice::Sqlite => std::sync::Arc::new(SqliteStore::open(&settings.database).await?),
        crate::config::StoreChoice::MongoDb { uri, min_pool, max_pool, op_timeout } => {
            let mut m = mongo::MongoSettings::new(uri.expose_secret());
            (m.min_pool_size, m.max_pool_size, m.op_timeout) = (*min_pool, *max_pool, *op_timeout);
            std::sync::Arc::new(mongo::MongoStore::open(&m).await?)
        }
    })
}

/// The election named in a URL, or the one "unknown election" error (also for ids that
/// can't be election ids, so probing reveals nothing).
pub async fn election_or_404(store: &dyn Store, raw: &str) -> Result<Election, ApiError> {
    let unknown = || ApiError::new(ErrorCode::UnknownElection, format!("There is no election called {raw:?}."));
    let id = ElectionId::parse(raw).map_err(|_| unknown())?;
    store.election(&id).await?.ok_or_else(unknown)
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    // Elections.
    /// For seeding and tests: no audit line (the console and the CLI use `create_election_audited`).
    async fn create_election(&self, election: &NewElection, now: Timestamp) -> Result<(), StoreError>;
    /// The election and its audit line, in one atomic step.
    async fn create_election_audited(
        &self,
        election: &NewElection,
        entry: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    async fn election(&self, id: &ElectionId) -> Result<Option<Election>, StoreError>;
    /// Elections by id, at most `limit` (capped at 100) after `after`.
    async fn list_elections(&self, after: Option<&ElectionId>, limit: u32) -> Result<Vec<ElectionSummary>, StoreError>;

    // The voter roll.
    /// Adds or updates roll entries (callers send chunks of at most 1,000); idempotent.
    async fn import_roll(&self, election: &ElectionId, entries: &[RollEntry]) -> Result<RollImport, StoreError>;
    /// Which of `elections` have `uid` on their roll, with the roll's email if it has one.
    async fn roll_memberships(
        &self,
        uid: &Username,
        elections: &[ElectionId],
    ) -> Result<Vec<(ElectionId, Option<VoterEmail>)>, StoreError>;

    // Sign-in throttling, shared by every auth instance (rules in `throttle`).
    /// Checks and counts one attempt in one atomic step: refused while its pair waits or
    /// its address is over the limit, else counted as a failure until settled.
    async fn sign_in_attempt(
        &self,
        keys: &SignInKeys,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<Admission, StoreError>;
    /// A counted attempt that was not a wrong password: a success clears its pair, and
    /// either outcome gives the address its count back. (A wrong password needs no call.)
    async fn sign_in_settled(
        &self,
        keys: &SignInKeys,
        outcome: AttemptOutcome,
        rules: &ThrottleRules,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Deletes up to `limit` throttle rows that have nothing left to hold back at
    /// `now`; returns how many.
    async fn purge_sign_in_throttles(
        &self,
        rules: &ThrottleRules,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    // Sign-outs (see `crate::sign_outs`).
    /// Records that `account` signed out at `at` (a later sign-out replaces an earlier).
    async fn record_sign_out(&self, account: &Username, at: Timestamp) -> Result<(), StoreError>;
    /// Sign-outs at or after `since`, oldest first, at most `limit`.
    async fn sign_outs_since(&self, since: Timestamp, limit: u32) -> Result<Vec<(Username, Timestamp)>, StoreError>;
    /// Forgets sign-outs before `before` (no session that old is still valid).
    async fn purge_sign_outs(&self, before: Timestamp) -> Result<u64, StoreError>;

    // The ballot box.
    /// Checks the window as stored now, records participation and stores the ballot (no
    /// voter, no time) in one atomic step; answered only once it is durable.
    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError>;
    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError>;
    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError>;

    // One-time codes.
    /// Issues (or re-issues the still-valid) code and queues its mail, atomically.
    async fn issue_otp(
        &self,
        election: &ElectionId,
        voter: &Username,
        to: &VoterEmail,
        policy: OtpPolicy,
        now: Timestamp,
    ) -> Result<OtpIssue, IssueError>;
    /// Counts one verification attempt against the current code, refusing past the limit.
    async fn begin_otp_attempt(
        &self,
        election: &ElectionId,
        voter: &Username,
        max_attempts: u32,
        now: Timestamp,
    ) -> Result<OtpAttempt, AttemptError>;
    /// Marks the code used so it can't verify a second session.
    async fn consume_otp(&self, election: &ElectionId, voter: &Username, generation: u32) -> Result<(), StoreError>;
    /// Counts a code voided by wrong tries; enough of them lock the voter. Returns the
    /// lock's end when this void locked them.
    async fn record_otp_void(
        &self,
        election: &ElectionId,
        voter: &Username,
        policy: LockPolicy,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;
    async fn otp_status(&self, election: &ElectionId, voter: &Username) -> Result<Option<OtpStatus>, StoreError>;
    /// Officers widen code acceptance for an election (never narrower than configured);
    /// audited in the same step.
    async fn set_otp_extra(
        &self,
        election: &ElectionId,
        extra: Duration,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    // The mail outbox.
    /// Grants up to `wanted` sends across healthy accounts (in the given order of
    /// preference), spaced by each account's rate, inside its daily cap, with session
    /// slots leased to `holder` for `lease`. Shared by every OTP instance.
    async fn reserve_sends(
        &self,
        holder: &str,
        accounts: &[AccountLimits],
        wanted: u32,
        horizon: Duration,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Reservation, StoreError>;
    async fn sender_health(&self) -> Result<Vec<SenderHealth>, StoreError>;
    /// Leases up to `limit` due messages to `worker` until `now + lease`.
    async fn claim_mail(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Vec<OutboxMail>, StoreError>;
    /// Records message outcomes in one transaction (ignoring messages whose lease was lost).
    async fn record_outcomes(&self, worker: &str, outcomes: &[MailOutcome], now: Timestamp) -> Result<(), StoreError>;
    /// Ends a round in one transaction: the last outcomes, account health, unused sends
    /// handed back, and `worker`'s session slots released.
    async fn finish_batch(
        &self,
        worker: &str,
        outcomes: &[MailOutcome],
        reports: &[AccountReport],
        policy: QuarantinePolicy,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    // Audit.
    async fn append_audit(&self, entry: &AuditEntry, now: Timestamp) -> Result<(), StoreError>;
    /// Entries after `after` (a sequence number), oldest first, at most `limit`.
    async fn list_audit(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// Re-walks the whole chain: any edited, inserted or removed entry is found.
    async fn verify_audit(&self) -> Result<AuditVerification, StoreError>;

    // The console: every change below is refused or applied with its audit line.
    /// Edits an election that has not opened yet.
    async fn edit_election(
        &self,
        id: &ElectionId,
        edit: &ElectionEdit,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError>;
    /// Adds a pending candidate; refused once the window has opened.
    async fn nominate_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &NewCandidate,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError>;
    /// Approves or rejects a candidate with a reason; refused once the window has opened.
    #[allow(clippy::too_many_arguments)]
    async fn decide_candidate(
        &self,
        election: &ElectionId,
        contest: &ContestId,
        candidate: &CandidateId,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError>;
    /// Candidates ordered by (contest, id), after the given pair.
    async fn list_candidates(
        &self,
        election: &ElectionId,
        after: Option<(&ContestId, &CandidateId)>,
        limit: u32,
    ) -> Result<Vec<CandidateRow>, StoreError>;
    /// Moves the close later (only later, only while not yet closed).
    async fn extend_close(
        &self,
        election: &ElectionId,
        new_close: Timestamp,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), ChangeError>;
    /// Closes an open election now; returns the new close time.
    async fn close_now(
        &self,
        election: &ElectionId,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Timestamp, ChangeError>;
    /// Counts per contest and candidate, with participation and ballots from one snapshot.
    async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError>;

    // Roll imports, resumable chunk by chunk.
    async fn list_roll(
        &self,
        election: &ElectionId,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<RollRow>, StoreError>;
    async fn roll_size(&self, election: &ElectionId) -> Result<u64, StoreError>;
    /// A new running import, held by `lease` from the start.
    async fn create_import(
        &self,
        job: &ImportJob,
        lease: &ImportLease,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Takes over a running import whose lease has passed (its process stopped): `None`
    /// when it is finished, unknown, or still held.
    async fn claim_import(
        &self,
        job: &str,
        lease: &ImportLease,
        now: Timestamp,
    ) -> Result<Option<ImportJob>, StoreError>;
    /// Applies one chunk (entries, row errors, progress) and renews the lease, in one
    /// transaction; a conflict, changing nothing, once `lease.owner` no longer holds it.
    async fn import_chunk(
        &self,
        job: &str,
        lease: &ImportLease,
        chunk: &ImportChunk,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError>;
    /// Ends the import; a conflict, changing nothing, unless `owner` holds it.
    async fn finish_import(
        &self,
        job: &str,
        owner: &str,
        state: ImportState,
        message: Option<&str>,
        now: Timestamp,
    ) -> Result<ImportJob, StoreError>;
    async fn import_job(&self, job: &str) -> Result<Option<ImportJob>, StoreError>;
    async fn import_errors(&self, job: &str, after_line: u64, limit: u32) -> Result<Vec<RowError>, StoreError>;
    /// Imports still running (by this or another process, or left by one that stopped).
    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError>;

    // The live dashboard.
    /// Adds counts (merged per election, kind and minute).
    async fn record_activity(&self, counts: &[ActivityCount]) -> Result<(), StoreError>;
    /// Counts for `election` (and the all-elections key) from `since_minute` on.
    async fn activity(&self, election: &ElectionId, since_minute: i64) -> Result<Vec<ActivityCount>, StoreError>;
    async fn outbox_summary(&self, election: &ElectionId, now: Timestamp) -> Result<OutboxSummary, StoreError>;
    /// Newest first, before sequence `before` (exclusive) when given, at most `limit`
    /// rows (a page may hold more only when more rows share one sequence number than
    /// `limit`). Following `next_before` shows every row exactly once.
    async fn list_outbox(
        &self,
        election: &ElectionId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<OutboxPage, StoreError>;
    async fn report_status(
        &self,
        service: &str,
        ok: bool,
        detail: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    async fn service_status(&self) -> Result<Vec<ServiceStatus>, StoreError>;
}
