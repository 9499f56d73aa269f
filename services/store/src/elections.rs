//! Elections: what an admin defines (window, zone, contests, candidates, who may vote),
//! the checks types alone can't make, and the changes made before or while one runs.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use turnout_domain::schedule::Schedule;
use turnout_domain::{CandidateId, ContestId, ElectionId};

use crate::{
    AuditEntry, ChoiceError, Choices, ContestRules, InvalidField, NominationPeriod, PhotoHash, RON, RON_NAME,
    StoreError, check_vote, reserved_id,
};

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
    pub fn validate(&self) -> Result<(), InvalidField> {
        match self {
            Eligibility::LdapGroup { group_dn } if group_dn.trim().is_empty() || group_dn.len() > 500 => {
                Err(InvalidField::new("eligibility.group_dn", "a group DN of at most 500 characters"))
            }
            Eligibility::LdapFilter { filter }
                if !(filter.starts_with('(') && filter.ends_with(')')) || filter.len() > 500 =>
            {
                Err(InvalidField::new("eligibility.filter", "an LDAP filter in parentheses, at most 500 characters"))
            }
            _ => Ok(()),
        }
    }
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
    /// Each voter sees the candidates in an order of their own (no ballot-order advantage).
    #[serde(default)]
    pub shuffle_candidates: bool,
    /// When students may nominate themselves, and what a nomination needs; none = only
    /// admins add candidates.
    #[serde(default)]
    pub nominations: Option<NominationPeriod>,
    pub contests: Vec<NewContest>,
}

impl NewElection {
    /// Checks what types alone can't: window order, zone, sizes, unique ids.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let bad = |field: &'static str, why: &'static str| Err(InvalidField::new(field, why));
        if self.title.trim().is_empty() || self.title.len() > 200 {
            return bad("title", "1-200 characters");
        }
        if self.closes_at <= self.opens_at {
            return bad("closes_at", "must be after opens_at");
        }
        if !turnout_domain::schedule::valid_time_zone(&self.time_zone) {
            return bad("time_zone", "not a known IANA time zone (e.g. Europe/London)");
        }
        if self.grace_secs > 3600 {
            return bad("grace_secs", "at most 3600");
        }
        self.eligibility.validate()?;
        valid_quorum(self.quorum_pct)?;
        valid_validity(self.otp_validity_secs)?;
        if let Some(period) = &self.nominations {
            period.validate(self.opens_at)?;
        }
        if self.contests.is_empty() || self.contests.len() > 50 {
            return bad("contests", "1-50 contests");
        }
        valid_constituency_count(self.contests.iter().map(|c| &c.rules))?;
        let mut contest_ids = std::collections::HashSet::new();
        for contest in &self.contests {
            if !contest_ids.insert(&contest.id) {
                return bad("contests", "contest ids must be unique");
            }
            if contest.title.trim().is_empty() || contest.title.len() > 200 {
                return bad("contests.title", "1-200 characters");
            }
            contest.rules.validate()?;
            if contest.candidates.len() > 200 {
                return bad("contests.candidates", "at most 200 per contest");
            }
            let mut ids = std::collections::HashSet::new();
            for c in &contest.candidates {
                if !ids.insert(&c.id) {
                    return bad("candidates", "candidate ids must be unique within a contest");
                }
                c.validate()?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContest {
    pub id: ContestId,
    pub title: String,
    /// How it is voted and counted, and who may vote in it (default: one-seat plurality,
    /// everyone).
    #[serde(default)]
    pub rules: ContestRules,
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

impl NewCandidate {
    pub fn validate(&self) -> Result<(), InvalidField> {
        if reserved_id(&self.id) {
            return Err(InvalidField::new("id", "ron and abstain are reserved: choose another id"));
        }
        if self.id.as_str().starts_with("n-") {
            return Err(InvalidField::new("id", "ids starting n- are kept for students' nominations"));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(InvalidField::new("name", "1-200 characters"));
        }
        if self.statement.len() > 5000 {
            return Err(InvalidField::new("statement", "at most 5000 characters"));
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
    /// The photo of a candidate who came through nomination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo: Option<PhotoHash>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Contest {
    pub id: ContestId,
    pub title: String,
    pub rules: ContestRules,
    pub candidates: Vec<Candidate>,
}

/// RON's id, made once.
static RON_ID: std::sync::LazyLock<CandidateId> =
    std::sync::LazyLock::new(|| CandidateId::parse(RON).expect("ron is an id"));

impl Contest {
    /// The ids a vote in this contest may mark: the approved candidates, then RON where the
    /// contest has it (what `options` lists, without copying names and statements).
    pub fn option_ids(&self) -> Vec<&CandidateId> {
        let approved = self.candidates.iter().filter(|c| c.status == CandidateStatus::Approved).map(|c| &c.id);
        approved.chain(self.rules.ron.then_some(&*RON_ID)).collect()
    }

    /// What the ballot offers: the approved candidates, then RON where the contest has it.
    pub fn options(&self) -> Vec<Candidate> {
        let mut options: Vec<Candidate> =
            self.candidates.iter().filter(|c| c.status == CandidateStatus::Approved).cloned().collect();
        if self.rules.ron {
            options.push(Candidate {
                id: RON_ID.clone(),
                name: RON_NAME.to_owned(),
                statement: String::new(),
                status: CandidateStatus::Approved,
                photo: None,
            });
        }
        options
    }
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
    /// Each voter sees the candidates in an order of their own.
    pub shuffle_candidates: bool,
    /// The nomination period, if students nominate themselves.
    pub nominations: Option<NominationPeriod>,
}

impl Election {
    /// How long after issue a code for this election verifies: its own validity (or the
    /// configured one) plus whatever officers added while mail was slow.
    pub fn code_acceptance(&self, configured: Duration) -> Duration {
        self.otp_validity.unwrap_or(configured) + self.otp_extra
    }

    /// The choices as a ballot stores them: a ranked contest's marks in the voter's order
    /// of preference, any other contest's sorted by id, so a ballot keeps no trace of the
    /// order its boxes stood on the voter's page or were ticked in.
    pub fn canonical(&self, mut choices: Choices) -> Choices {
        for (id, vote) in choices.iter_mut() {
            let ranked = self.contests.iter().any(|c| &c.id == id && c.rules.kind == crate::ContestKind::Ranked);
            if let (false, crate::Vote::Marks(marks)) = (ranked, vote) {
                marks.sort();
            }
        }
        choices
    }

    /// Each vote by its contest's rules, among the contest's options (approved candidates
    /// and RON where offered); unknown contests are refused.
    pub fn check_choices(&self, choices: &Choices) -> Result<(), ChoiceError> {
        for (contest_id, vote) in choices {
            let contest = self
                .contests
                .iter()
                .find(|c| &c.id == contest_id)
                .ok_or_else(|| ChoiceError::UnknownContest(contest_id.to_string()))?;
            check_vote(&contest.rules, &contest.option_ids(), vote)
                .map_err(|reason| ChoiceError::Vote { contest: contest_id.clone(), reason })?;
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
    /// The contests with voters of their own (a constituency), and who those are: what
    /// sign-in decides beside the election's eligibility.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constituencies: Vec<(ContestId, crate::Constituency)>,
    /// The nomination period, if the election takes nominations: sign-in decides
    /// eligibility for an election whose period runs, even if voting is far off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nominations: Option<NominationPeriod>,
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
    pub shuffle_candidates: Option<bool>,
    /// A new nomination period (replacing the old); it must end before voting opens.
    pub nominations: Option<NominationPeriod>,
    /// The contests in order; existing ones keep their candidates. A contest with
    /// candidates can't be dropped.
    pub contests: Option<Vec<ContestEdit>>,
}

impl ElectionEdit {
    pub fn validate(&self) -> Result<(), InvalidField> {
        if let Some(t) = &self.title
            && (t.trim().is_empty() || t.len() > 200)
        {
            return Err(InvalidField::new("title", "1-200 characters"));
        }
        if let Some(tz) = &self.time_zone
            && !turnout_domain::schedule::valid_time_zone(tz)
        {
            return Err(InvalidField::new("time_zone", "not a known IANA time zone (e.g. Europe/London)"));
        }
        if self.grace_secs.is_some_and(|g| g > 3600) {
            return Err(InvalidField::new("grace_secs", "at most 3600"));
        }
        if let Some(q) = self.quorum_pct {
            valid_quorum(q)?;
        }
        if let Some(v) = self.otp_validity_secs {
            valid_validity(v)?;
        }
        if let Some(contests) = &self.contests {
            if contests.is_empty() || contests.len() > 50 {
                return Err(InvalidField::new("contests", "1-50 contests"));
            }
            valid_constituency_count(contests.iter().filter_map(|c| c.rules.as_ref()))?;
            let mut ids = std::collections::HashSet::new();
            for c in contests {
                if !ids.insert(&c.id) {
                    return Err(InvalidField::new("contests", "contest ids must be unique"));
                }
                if c.title.trim().is_empty() || c.title.len() > 200 {
                    return Err(InvalidField::new("contests.title", "1-200 characters"));
                }
                if let Some(rules) = &c.rules {
                    rules.validate()?;
                }
            }
        }
        Ok(())
    }
}

impl ElectionEdit {
    /// The nomination period this edit leaves (its new one, or the current one), checked
    /// against the voting opening it leaves: adapters call it with the merged opening.
    pub fn nominations_after(
        &self,
        current: Option<NominationPeriod>,
        opens_at: Timestamp,
    ) -> Result<Option<NominationPeriod>, InvalidField> {
        let period = self.nominations.clone().or(current);
        if let Some(p) = &period {
            p.validate(opens_at)?;
        }
        Ok(period)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContestEdit {
    pub id: ContestId,
    pub title: String,
    /// New rules; left out, an existing contest keeps its own and a new one is plurality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<ContestRules>,
}

/// Most contests with a constituency in one election: the voter's session carries the
/// ones they are in, and a session token has a size limit.
pub const MAX_CONSTITUENCIES: usize = 20;

fn valid_constituency_count<'a>(rules: impl Iterator<Item = &'a ContestRules>) -> Result<(), InvalidField> {
    if rules.filter(|r| !r.voters.is_everyone()).count() > MAX_CONSTITUENCIES {
        return Err(InvalidField::new("contests.voters", "at most 20 contests with a constituency in one election"));
    }
    Ok(())
}

pub fn valid_quorum(q: f64) -> Result<(), InvalidField> {
    if !(0.0..=100.0).contains(&q) {
        return Err(InvalidField::new("quorum_pct", "a percentage from 0 to 100"));
    }
    Ok(())
}

pub fn valid_validity(secs: u64) -> Result<(), InvalidField> {
    if secs != 0 && !(60..=86_400).contains(&secs) {
        return Err(InvalidField::new("otp_validity_secs", "0 (the default) or 60-86400 seconds"));
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

/// Elections: their definition, and every change an admin or officer makes to one before
/// or while it runs (each refused or applied with its audit line).
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

#[async_trait]
pub trait Elections: Send + Sync {
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
}
