//! The ballot box: a voter's choices, the one atomic cast, receipts, turnout and the tally.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use turnout_domain::schedule::WindowRefusal;
use turnout_domain::{CandidateId, ContestId, ElectionId, Receipt, Username};

use crate::StoreError;

/// A voter's choices: at most one candidate per contest; a contest left out is a blank.
pub type Choices = BTreeMap<ContestId, CandidateId>;

/// Why a set of choices can't go in the box.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("there is no contest {0} in this election")]
    UnknownContest(String),
    #[error("{candidate} is not an approved candidate in {contest}")]
    UnknownCandidate { contest: String, candidate: String },
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
    OutsideWindow(WindowRefusal),
    #[error("no such election")]
    UnknownElection,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Turnout {
    pub participation: u64,
    pub ballots: u64,
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

/// The ballot box: one ballot per voter, receipts, and the counts.
#[async_trait]
pub trait BallotBox: Send + Sync {
    /// Checks the window as stored now, records participation and stores the ballot (no
    /// voter, no time) in one atomic step; answered only once it is durable.
    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError>;

    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError>;

    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError>;

    /// Counts per contest and candidate, with participation and ballots from one snapshot.
    async fn tally(&self, election: &ElectionId) -> Result<Tally, StoreError>;
}
