//! The ballot box: a voter's choices, the one atomic cast, receipts, turnout, and the
//! box's contents for the count.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use turnout_domain::schedule::WindowRefusal;
use turnout_domain::{ContestId, ElectionId, Receipt, Username};

use crate::{StoreError, Vote, VoteError};

/// A voter's choices: a vote per contest; a contest left out is a blank.
pub type Choices = BTreeMap<ContestId, Vote>;

/// Why a set of choices can't go in the box.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("there is no contest {0} in this election")]
    UnknownContest(String),
    #[error("{reason}")]
    Vote { contest: ContestId, reason: VoteError },
    /// The contest is another constituency's: this voter may not vote in it.
    #[error("You may not vote in {0}: it is for another constituency.")]
    NotInConstituency(ContestId),
}

/// One ballot to cast: who, where, what, and the times the window rule needs.
#[derive(Debug, Clone)]
pub struct CastBallot {
    pub election: ElectionId,
    pub voter: Username,
    pub choices: Choices,
    /// The contests with a directory constituency (LDAP group or filter) that the voter's
    /// sign-in found them in. The store checks roll-column constituencies against the
    /// roll itself, inside the cast's transaction.
    pub constituencies: Vec<ContestId>,
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
    /// A contest the ballot names is not in the election, or not this voter's.
    #[error(transparent)]
    Choice(ChoiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Turnout {
    pub participation: u64,
    pub ballots: u64,
}

/// Everything in one election's box, read from one snapshot, for the count and the
/// export: how many voted and every ballot's choices, in no meaningful order (no
/// receipts: nothing here ties a ballot to anything else).
#[derive(Debug, Clone)]
pub struct BoxContents {
    pub participation: u64,
    pub ballots: Vec<Choices>,
}

/// The ballot box: one ballot per voter, receipts, and the counts.
#[async_trait]
pub trait BallotBox: Send + Sync {
    /// Checks the window as stored now, records participation and stores the ballot (no
    /// voter, no time) in one atomic step; answered only once it is durable.
    async fn cast_ballot(&self, cast: CastBallot) -> Result<Receipt, CastError>;

    async fn receipt_in_box(&self, election: &ElectionId, receipt: &Receipt) -> Result<bool, StoreError>;

    async fn turnout(&self, election: &ElectionId) -> Result<Turnout, StoreError>;

    /// Per contest with a constituency: how many of its voters have cast a ballot.
    async fn constituency_turnout(&self, election: &ElectionId) -> Result<Vec<(ContestId, u64)>, StoreError>;

    /// Every ballot's choices and the participation count, from one snapshot (read after
    /// close, for the count and the export).
    async fn box_contents(&self, election: &ElectionId) -> Result<BoxContents, StoreError>;
}
