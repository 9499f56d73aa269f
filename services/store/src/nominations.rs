//! Nominations: during an election's nomination period a student puts themselves forward
//! for a contest they may vote in (a name, a manifesto, a photo), other eligible students
//! second it, and an admin approves it (the nominee becomes a candidate on the ballot) or
//! rejects it with a reason the nominee sees. Every version a nominee saves is kept, and a
//! decision names the version it was made on: one made on a version the nominee has
//! since replaced is refused, so what was approved is what the ballot shows.
//!
//! Each operation is one atomic step with its audit line, and each bound an attacker
//! could push (versions, nominations per contest, photo size) is checked here, whoever
//! calls.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use turnout_domain::{CandidateId, ContestId, ElectionId, Username, VoterEmail};

use crate::{AuditEntry, Decision, InvalidField, StoreError};

/// Longest manifesto, in characters.
pub const MAX_MANIFESTO_CHARS: usize = 5000;
/// Longest display name, in characters.
pub const MAX_NOMINEE_NAME_CHARS: usize = 100;
/// Most versions one nomination keeps (its submission and its edits): each may carry a
/// photo, so an endless run of edits must not grow the store without end.
pub const MAX_VERSIONS: u32 = 20;
/// Most live nominations in one contest (as many as a contest may have candidates).
pub const MAX_NOMINATIONS_PER_CONTEST: u32 = 200;
/// Most nominations one student may make in one election, withdrawn ones included: a
/// withdraw-and-submit-again loop can't grow the store (each keeps its versions and photo).
pub const MAX_NOMINATIONS_PER_NOMINEE: u32 = 10;
/// Most proposers an election may ask for.
pub const MAX_PROPOSERS: u32 = 20;
/// The largest stored photo: processed photos are a few tens of KB; this is the store's
/// own guard against a caller that skipped the processing.
pub const MAX_PHOTO_BYTES: usize = 1024 * 1024;
/// Most characters in a decision's reason.
pub const MAX_REASON_CHARS: usize = 500;

/// When students may nominate, and what a nomination needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NominationPeriod {
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    /// Seconds (from other eligible students) a nomination needs before it can be
    /// approved; 0 = none.
    #[serde(default)]
    pub proposers: u32,
    /// Most nominations one student may second in one contest; 0 = no limit.
    #[serde(default)]
    pub max_seconds: u32,
}

impl NominationPeriod {
    /// The period must end before voting opens (nominations lock, then candidates do).
    pub fn validate(&self, voting_opens: Timestamp) -> Result<(), InvalidField> {
        if self.closes_at <= self.opens_at {
            return Err(InvalidField::new("nominations.closes_at", "must be after the nominations open"));
        }
        // Whole seconds: stores keep the opening to the second.
        if self.closes_at.as_second() > voting_opens.as_second() {
            return Err(InvalidField::new("nominations.closes_at", "nominations must close before voting opens"));
        }
        if self.proposers > MAX_PROPOSERS {
            return Err(InvalidField::new("nominations.proposers", "at most 20 proposers"));
        }
        if self.max_seconds > 50 {
            return Err(InvalidField::new("nominations.max_seconds", "0 (no limit) or at most 50"));
        }
        Ok(())
    }

    pub fn is_open(&self, now: Timestamp) -> bool {
        self.opens_at <= now && now < self.closes_at
    }
}

/// A nomination's id: 128 random bits as 32 lowercase hex digits. It is the share link's
/// address, so it is not guessable from another one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NominationId(String);

impl NominationId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    /// The id of `nominee`'s submission of the form drawn with `token`: the same form sent
    /// twice is one nomination, but the id is never the client's to choose (a chosen id
    /// could copy another nomination's, or its candidate id's, digits).
    pub fn for_submission(nominee: &Username, token: &str) -> Self {
        let digest = Sha256::new().chain_update(nominee.as_str()).chain_update([0]).chain_update(token).finalize();
        Self(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
    }
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        if raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidField::new("nomination", "not a nomination id"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The candidate id an approved nomination stands under on the ballot: all of the id,
    /// so no other nomination's candidate can share it.
    pub fn candidate_id(&self) -> CandidateId {
        CandidateId::parse(&format!("n-{}", self.0)).expect("n- and hex digits make a slug")
    }
}

impl TryFrom<String> for NominationId {
    type Error = InvalidField;
    fn try_from(raw: String) -> Result<Self, InvalidField> {
        Self::parse(&raw)
    }
}

impl From<NominationId> for String {
    fn from(id: NominationId) -> String {
        id.0
    }
}

impl std::fmt::Display for NominationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored photo's name: the SHA-256 of its bytes as 64 lowercase hex digits, so its
/// address changes whenever its content does (and may be cached for ever).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhotoHash(String);

impl PhotoHash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect())
    }
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidField::new("photo", "not a photo name"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhotoHash {
    type Error = InvalidField;
    fn try_from(raw: String) -> Result<Self, InvalidField> {
        Self::parse(&raw)
    }
}

impl From<PhotoHash> for String {
    fn from(h: PhotoHash) -> String {
        h.0
    }
}

/// What a nominee writes: the name on the ballot, the manifesto, the photo (by hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NominationContent {
    pub name: String,
    pub manifesto: String,
    pub photo: Option<PhotoHash>,
}

impl NominationContent {
    pub fn validate(&self) -> Result<(), InvalidField> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NOMINEE_NAME_CHARS || name != self.name {
            return Err(InvalidField::new("name", "1-100 characters, without spaces at either end"));
        }
        if self.name.chars().any(char::is_control) {
            return Err(InvalidField::new("name", "one line of text"));
        }
        if self.manifesto.chars().count() > MAX_MANIFESTO_CHARS {
            return Err(InvalidField::new("manifesto", "at most 5,000 characters"));
        }
        if self.manifesto.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            return Err(InvalidField::new("manifesto", "plain text (no control characters)"));
        }
        Ok(())
    }
}

/// A photo to store with a submission or an edit, in the same atomic step (so a refused
/// one leaves no photo behind). Its bytes are the processed photo, never an upload.
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub bytes: Vec<u8>,
}

impl NewPhoto {
    pub fn hash(&self) -> PhotoHash {
        PhotoHash::of(&self.bytes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NominationStatus {
    Pending,
    Approved,
    Rejected,
    Withdrawn,
}

impl NominationStatus {
    /// Pending or approved: a nomination that stands, whose share link shows its content
    /// and takes seconds (the stores' `status IN ('pending', 'approved')`).
    pub fn stands(self) -> bool {
        matches!(self, Self::Pending | Self::Approved)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected, Self::Withdrawn].into_iter().find(|s| s.as_str() == raw)
    }
}

/// A new nomination as the nominee submits it (the id is made by the caller, so a retry
/// of the same submission is recognised).
#[derive(Debug, Clone)]
pub struct NewNomination {
    pub id: NominationId,
    pub election: ElectionId,
    pub contest: ContestId,
    pub nominee: Username,
    /// Where the decision is mailed: the address the nominee signed in with.
    pub email: VoterEmail,
    pub content: NominationContent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Second {
    pub by: Username,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nomination {
    pub id: NominationId,
    pub election: ElectionId,
    pub contest: ContestId,
    pub nominee: Username,
    #[serde(skip)]
    pub email: VoterEmail,
    /// The current version (1 for the submission, +1 per edit).
    pub version: u32,
    pub content: NominationContent,
    pub status: NominationStatus,
    /// The reason given with the last decision.
    pub reason: Option<String>,
    /// The version the current decision was made on.
    pub decided_version: Option<u32>,
    /// Who seconded it, oldest first.
    pub seconds: Vec<Second>,
    pub submitted_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Nomination {
    /// The candidate id this nomination stands under once approved.
    pub fn candidate_id(&self) -> CandidateId {
        self.id.candidate_id()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NominationVersion {
    pub version: u32,
    pub content: NominationContent,
    pub at: Timestamp,
}

/// Why a nomination step was not taken: each a rule the nominee, a proposer or an admin
/// can act on.
#[derive(Debug, thiserror::Error)]
pub enum NominationError {
    #[error("no such election")]
    UnknownElection,
    #[error("no such contest in this election")]
    UnknownContest,
    #[error("no such nomination")]
    UnknownNomination,
    /// The election takes no nominations, or its period is not running (the message says
    /// when it opens or closed, in the election's time zone).
    #[error("{0}")]
    PeriodClosed(String),
    #[error("You have already been nominated for this contest.")]
    AlreadyNominated,
    #[error("Only the nominee can change or withdraw this nomination.")]
    NotYours,
    #[error("You cannot second your own nomination.")]
    OwnNomination,
    #[error("You have already seconded this nomination.")]
    AlreadySeconded,
    #[error("You may second at most {max} nominations in this contest.")]
    SecondLimit { max: u32 },
    #[error("This nomination was withdrawn.")]
    Withdrawn,
    #[error("The nominee changed this nomination after you opened it (now version {current}); review it again.")]
    Stale { current: u32 },
    #[error("This nomination has {have} of the {need} proposers it needs.")]
    TooFewProposers { have: u32, need: u32 },
    /// A bound or a lock (versions, nominations per contest, voting opened).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait Nominations: Send + Sync {
    /// Submits a nomination (version 1), inside the period, for a contest of the election,
    /// at most one live (not withdrawn) nomination per nominee and contest. The same id
    /// again (a retried request) returns the stored nomination.
    async fn submit_nomination(
        &self,
        nomination: &NewNomination,
        photo: Option<&NewPhoto>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError>;

    /// A new version by the nominee, inside the period; an approved or rejected nomination
    /// goes back to pending (and an approved one leaves the ballot until decided again).
    /// The seconds are set aside with the old version: proposers endorse what they read, so
    /// they second the new one again. The same content again (a resent form) is no new
    /// version and keeps the seconds, unless the nomination was rejected: then it is the
    /// nominee standing again, and goes back to pending as a new version.
    async fn edit_nomination(
        &self,
        id: &NominationId,
        nominee: &Username,
        content: &NominationContent,
        photo: Option<&NewPhoto>,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError>;

    /// Withdrawn by the nominee, inside the period (an approved one leaves the ballot).
    async fn withdraw_nomination(
        &self,
        id: &NominationId,
        nominee: &Username,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError>;

    /// Seconded by another student, inside the period: once each, never one's own, and at
    /// most the period's `max_seconds` live nominations per contest per student. `version`
    /// is the one the seconder read: refused as stale if the nominee has saved another
    /// since (a second endorses what it names). Whether the seconder may vote in the
    /// contest is the caller's to check (it is in their session).
    async fn second_nomination(
        &self,
        id: &NominationId,
        version: u32,
        seconder: &Username,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError>;

    /// An admin's decision on `version` (refused as stale if the nominee has saved another
    /// since), before voting opens. Approving needs the period's proposers and puts the
    /// nominee on the ballot (candidate `n-…`, approved, with the manifesto and photo);
    /// rejecting needs a reason, takes them off and sets the seconds aside (they stop
    /// counting against the seconders' limits, so they can't count for it again: a
    /// rejected nomination stands again by a new version, seconded anew). The same
    /// decision on the same version again changes nothing and returns the nomination (a
    /// retried request).
    #[allow(clippy::too_many_arguments)]
    async fn decide_nomination(
        &self,
        id: &NominationId,
        version: u32,
        decision: Decision,
        reason: &str,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<Nomination, NominationError>;

    async fn nomination(&self, id: &NominationId) -> Result<Option<Nomination>, StoreError>;

    /// Every version, oldest first (at most `MAX_VERSIONS`).
    async fn nomination_versions(&self, id: &NominationId) -> Result<Vec<NominationVersion>, StoreError>;

    /// This student's nominations in the election, by contest (withdrawn ones too).
    async fn nominations_of(&self, election: &ElectionId, nominee: &Username) -> Result<Vec<Nomination>, StoreError>;

    /// The election's nominations ordered by (contest, id), after the given pair, at most
    /// `limit` (capped at `MAX_PAGE`); only those with `status` when given.
    async fn list_nominations(
        &self,
        election: &ElectionId,
        status: Option<NominationStatus>,
        after: Option<(&ContestId, &NominationId)>,
        limit: u32,
    ) -> Result<Vec<Nomination>, StoreError>;

    /// A stored photo (JPEG) and where it is used at `now`, so it is shown only to whom
    /// may see it (`StoredPhoto::visible`); `viewer` is the signed-in student asking,
    /// if any (whether it is one of their own nominations' photos is asked only when the
    /// photo is not public).
    async fn photo(
        &self,
        hash: &PhotoHash,
        viewer: Option<&Username>,
        now: Timestamp,
    ) -> Result<Option<StoredPhoto>, StoreError>;
}

/// Most seconds one nomination takes. With `max_seconds` 0 (no limit) every eligible
/// student may second; a nomination must not grow without end (the proposers needed are at
/// most `MAX_PROPOSERS`, far below).
pub const MAX_SECONDS_KEPT: usize = 500;

/// Who may see a photo: everyone while it is on a ballot or on a standing nomination
/// (pending or approved: its share link is public), else only the nominees whose
/// nominations used it (an earlier version, a rejected or withdrawn one) and admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoShown {
    /// A candidate's photo on a ballot whose voting has opened: candidates are locked, so
    /// its address shows it for good.
    Locked,
    /// A candidate's photo before voting opens, or the current photo of a pending or
    /// approved nomination: public, but an edit, a rejection or a withdrawal may yet set
    /// it aside, so not cached for long.
    Public,
    /// Set aside: no longer shown on any page but the nominee's and the review queue's.
    Private,
}

impl PhotoShown {
    /// Whether a candidate on a ballot whose voting has opened uses it, and whether any
    /// candidate or a pending or approved nomination's current version does.
    pub fn of(locked: bool, public: bool) -> Self {
        if locked {
            Self::Locked
        } else if public {
            Self::Public
        } else {
            Self::Private
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredPhoto {
    pub bytes: Vec<u8>,
    pub shown: PhotoShown,
    /// The photo is not public and the viewer's own nominations used it in some version.
    pub viewers_own: bool,
}

impl StoredPhoto {
    /// Whether the viewer (an admin or not) may load it.
    pub fn visible(&self, admin: bool) -> bool {
        self.shown != PhotoShown::Private || admin || self.viewers_own
    }
}

/// The rules every adapter applies the same way, given what it read inside its
/// transaction: the period, the lock at opening, and each step's checks.
pub mod rules {
    use jiff::Timestamp;
    use turnout_domain::Username;
    use turnout_domain::schedule::local_in;

    use super::{MAX_VERSIONS, Nomination, NominationContent, NominationError, NominationPeriod, NominationStatus};
    use crate::Decision;

    /// Refused once a student has made `super::MAX_NOMINATIONS_PER_NOMINEE` nominations in
    /// the election (`made` counts withdrawn ones too).
    pub fn nominee_bound(made: u32) -> Result<(), NominationError> {
        if made >= super::MAX_NOMINATIONS_PER_NOMINEE {
            return Err(NominationError::Refused(format!(
                "You have made {} nominations in this election, the most one student may make.",
                super::MAX_NOMINATIONS_PER_NOMINEE
            )));
        }
        Ok(())
    }

    /// Refused unless the nomination period is running (messages in the election's zone).
    pub fn in_period(period: Option<&NominationPeriod>, zone: &str, now: Timestamp) -> Result<(), NominationError> {
        let Some(p) = period else {
            return Err(NominationError::PeriodClosed("This election takes no nominations.".into()));
        };
        if now < p.opens_at {
            return Err(NominationError::PeriodClosed(format!("Nominations open at {}.", local_in(zone, p.opens_at))));
        }
        if now >= p.closes_at {
            return Err(NominationError::PeriodClosed(format!(
                "Nominations closed at {}.",
                local_in(zone, p.closes_at)
            )));
        }
        Ok(())
    }

    /// Candidates lock when voting opens: no decision after that.
    pub fn before_voting(opens_at: Timestamp, zone: &str, now: Timestamp) -> Result<(), NominationError> {
        if now >= opens_at {
            return Err(NominationError::Refused(format!(
                "Voting opened at {}; candidates can no longer change.",
                local_in(zone, opens_at)
            )));
        }
        Ok(())
    }

    /// The nominee's own change (edit or withdrawal) of a nomination still standing.
    pub fn nominee_change(n: &Nomination, nominee: &Username) -> Result<(), NominationError> {
        if &n.nominee != nominee {
            return Err(NominationError::NotYours);
        }
        if n.status == NominationStatus::Withdrawn {
            return Err(NominationError::Withdrawn);
        }
        Ok(())
    }

    /// A submission whose id is already stored (the same form sent again): the stored
    /// nomination if it is this nominee's for this contest, else refused (the form's token
    /// reused for another contest, or another student's id).
    pub fn resubmitted(done: Nomination, new: &super::NewNomination) -> Result<Nomination, NominationError> {
        if done.nominee != new.nominee {
            Err(NominationError::UnknownNomination)
        } else if done.contest != new.contest {
            Err(NominationError::Refused(
                "This form was already sent, for another contest. Open the nomination form again.".into(),
            ))
        } else {
            Ok(done)
        }
    }

    /// Whether an edit's content may name `hash` without uploading it: only a photo this
    /// nomination has had (keeping it, or going back to an earlier one), never another
    /// student's photo the store happens to hold.
    pub fn own_photo(versions_with_it: bool) -> Result<(), NominationError> {
        if versions_with_it {
            Ok(())
        } else {
            Err(crate::InvalidField::new("photo", "no such photo in this nomination").into())
        }
    }

    /// What an edit does: nothing (the content it already has, e.g. a form sent twice), or
    /// a new version, its seconds cleared.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum EditPlan {
        Unchanged,
        NewVersion,
    }

    pub fn edit(n: &Nomination, nominee: &Username, content: &NominationContent) -> Result<EditPlan, NominationError> {
        nominee_change(n, nominee)?;
        if &n.content == content && n.status != NominationStatus::Rejected {
            return Ok(EditPlan::Unchanged);
        }
        if n.version >= MAX_VERSIONS {
            return Err(NominationError::Refused(format!(
                "A nomination keeps at most {MAX_VERSIONS} versions; this one has them all."
            )));
        }
        Ok(EditPlan::NewVersion)
    }

    /// `given` is how many live nominations in this contest the seconder has seconded;
    /// `version` is the one they read.
    pub fn second(
        n: &Nomination,
        version: u32,
        seconder: &Username,
        given: u32,
        max: u32,
    ) -> Result<(), NominationError> {
        match n.status {
            NominationStatus::Withdrawn => return Err(NominationError::Withdrawn),
            // A rejected nomination takes no more seconds: each would use up one of the
            // seconder's few in the contest for nothing.
            NominationStatus::Rejected => {
                return Err(NominationError::Refused(
                    "This nomination was not approved; it takes no more seconds.".into(),
                ));
            }
            NominationStatus::Pending | NominationStatus::Approved => {}
        }
        if &n.nominee == seconder {
            return Err(NominationError::OwnNomination);
        }
        if version != n.version {
            return Err(NominationError::Stale { current: n.version });
        }
        if n.seconds.iter().any(|s| &s.by == seconder) {
            return Err(NominationError::AlreadySeconded);
        }
        if max > 0 && given >= max {
            return Err(NominationError::SecondLimit { max });
        }
        if n.seconds.len() >= super::MAX_SECONDS_KEPT {
            return Err(NominationError::Refused(format!(
                "This nomination has {} seconds, the most it takes.",
                super::MAX_SECONDS_KEPT
            )));
        }
        Ok(())
    }

    /// What a decision does: nothing (the same decision on the same version again), or
    /// apply it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DecisionPlan {
        Unchanged,
        Apply,
    }

    pub fn decide(
        n: &Nomination,
        version: u32,
        decision: Decision,
        proposers: u32,
    ) -> Result<DecisionPlan, NominationError> {
        if n.status == NominationStatus::Withdrawn {
            return Err(NominationError::Withdrawn);
        }
        if version != n.version {
            return Err(NominationError::Stale { current: n.version });
        }
        let status = match decision {
            Decision::Approve => NominationStatus::Approved,
            Decision::Reject => NominationStatus::Rejected,
        };
        if n.status == status && n.decided_version == Some(version) {
            return Ok(DecisionPlan::Unchanged);
        }
        let have = n.seconds.len() as u32;
        if decision == Decision::Approve && have < proposers {
            return Err(NominationError::TooFewProposers { have, need: proposers });
        }
        Ok(DecisionPlan::Apply)
    }
}

/// The checks every adapter makes on a photo before storing it.
pub fn check_photo(photo: &NewPhoto) -> Result<(), InvalidField> {
    if photo.bytes.is_empty() || photo.bytes.len() > MAX_PHOTO_BYTES {
        return Err(InvalidField::new("photo", "a processed photo of at most 1 MB"));
    }
    Ok(())
}

/// The checks every adapter makes on a decision's reason.
pub fn check_reason(decision: Decision, reason: &str) -> Result<(), InvalidField> {
    if decision == Decision::Reject && reason.trim().is_empty() {
        return Err(InvalidField::new("reason", "a rejection needs a reason; the nominee will be told"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(InvalidField::new("reason", "at most 500 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(name: &str, manifesto: &str) -> NominationContent {
        NominationContent { name: name.into(), manifesto: manifesto.into(), photo: None }
    }

    #[test]
    fn content_bounds() {
        assert!(content("Ada Lovelace", "Vote for me.\n\nhttps://example.org").validate().is_ok());
        assert!(content("", "x").validate().is_err());
        assert!(content(" Ada", "x").validate().is_err());
        assert!(content("Ada\u{7}", "x").validate().is_err());
        assert!(content(&"a".repeat(101), "x").validate().is_err());
        assert!(content("Ada", &"é".repeat(5000)).validate().is_ok(), "characters, not bytes");
        assert!(content("Ada", &"a".repeat(5001)).validate().is_err());
        assert!(content("Ada", "a\u{0}b").validate().is_err());
    }

    #[test]
    fn ids_and_hashes_parse_strictly() {
        let id = NominationId::random();
        assert_eq!(NominationId::parse(id.as_str()).unwrap(), id);
        assert!(NominationId::parse("../etc/passwd").is_err());
        assert!(NominationId::parse(&"A".repeat(32)).is_err());
        assert_eq!(id.candidate_id().as_str(), format!("n-{}", id.as_str()), "the whole id, not a prefix");
        let ada = Username::parse("ada").unwrap();
        let bob = Username::parse("bob").unwrap();
        let token = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            NominationId::for_submission(&ada, token),
            NominationId::for_submission(&ada, token),
            "a retry is the same nomination"
        );
        assert_ne!(
            NominationId::for_submission(&ada, token),
            NominationId::for_submission(&bob, token),
            "one token, two students, two ids"
        );
        assert!(NominationId::parse(NominationId::for_submission(&ada, token).as_str()).is_ok());
        let h = PhotoHash::of(b"photo");
        assert_eq!(PhotoHash::parse(h.as_str()).unwrap(), h);
        assert!(PhotoHash::parse("x.jpg").is_err());
    }

    #[test]
    fn the_period_ends_before_voting() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let p = NominationPeriod { opens_at: t(100), closes_at: t(200), proposers: 2, max_seconds: 1 };
        assert!(p.validate(t(200)).is_ok());
        assert!(p.validate(t(199)).is_err());
        assert!(NominationPeriod { closes_at: t(100), ..p.clone() }.validate(t(300)).is_err());
        assert!(NominationPeriod { proposers: 21, ..p.clone() }.validate(t(300)).is_err());
        assert!(p.is_open(t(100)) && !p.is_open(t(200)) && !p.is_open(t(99)));
    }

    #[test]
    fn a_nomination_takes_a_bounded_number_of_seconds() {
        let user = |n: usize| Username::parse(&format!("s{n}")).unwrap();
        let at = Timestamp::UNIX_EPOCH;
        let mut n = Nomination {
            id: NominationId::random(),
            election: ElectionId::parse("e").unwrap(),
            contest: ContestId::parse("c").unwrap(),
            nominee: user(0),
            email: VoterEmail::parse("s0@example.org").unwrap(),
            version: 1,
            content: content("Ada", "Hi"),
            status: NominationStatus::Pending,
            reason: None,
            decided_version: None,
            seconds: (1..MAX_SECONDS_KEPT).map(|i| Second { by: user(i), at }).collect(),
            submitted_at: at,
            updated_at: at,
        };
        assert!(rules::second(&n, 1, &user(MAX_SECONDS_KEPT), 0, 0).is_ok(), "the last place");
        assert!(matches!(rules::second(&n, 2, &user(MAX_SECONDS_KEPT), 0, 0), Err(NominationError::Stale { .. })));
        n.seconds.push(Second { by: user(MAX_SECONDS_KEPT), at });
        let full = rules::second(&n, 1, &user(MAX_SECONDS_KEPT + 1), 0, 0);
        assert!(matches!(full, Err(NominationError::Refused(_))), "{full:?}");
    }
}
