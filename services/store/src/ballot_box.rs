//! The ballot box: a voter's choices, the one atomic cast, receipts, turnout, and the
//! box's contents for the count.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Serialize;

use turnout_domain::schedule::WindowRefusal;
use turnout_domain::{ContestId, ElectionId, Receipt, Username};

use crate::{SealError, StoreError, StoreKeys, Vote, VoteError};

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

/// Everything in one election's box, read from one snapshot and opened with the server's
/// key, for the count, the export and `verify-box`: how many voted, every receipt (sorted)
/// and every ballot's choices (sorted by their canonical form), so neither list's order
/// says which receipt goes with which choices, nor anything about the order of casting.
#[derive(Debug, Clone, Default)]
pub struct BoxContents {
    pub participation: u64,
    pub receipts: Vec<Receipt>,
    pub ballots: Vec<Choices>,
    /// Ballots whose seal did not open (changed, copied or forged in the database, or
    /// opened with another secret), by their stored receipt: never counted. Not empty
    /// means the box was tampered with, or TURNOUT_SECRET is wrong.
    pub unopened: Vec<(String, SealError)>,
    /// Voters whose participation row has no valid tag (`StoreKeys::participation_tag`):
    /// rows added in the database, or written before tags (the upgrade tags those).
    pub untagged: Vec<String>,
}

impl BoxContents {
    /// True when every ballot opened, every participation is tagged and there is one
    /// ballot per participation.
    pub fn intact(&self) -> bool {
        self.unopened.is_empty() && self.untagged.is_empty() && self.participation == (self.receipts.len() as u64)
    }
}

/// Opens an election's sealed ballots as an adapter reads them, in any order: both
/// adapters build `BoxContents` through this, so they open and order it the same way.
pub struct BoxReader<'k> {
    keys: &'k StoreKeys,
    election: ElectionId,
    contents: BoxContents,
    /// Each opened ballot with its canonical form, for the sort.
    opened: Vec<(String, Choices)>,
}

impl<'k> BoxReader<'k> {
    pub fn new(keys: &'k StoreKeys, election: &ElectionId) -> Self {
        Self { keys, election: election.clone(), contents: BoxContents::default(), opened: Vec::new() }
    }

    /// One stored ballot: its receipt as stored (one that does not read as a receipt is
    /// an edit, reported as unopened) and its sealed choices.
    pub fn push(&mut self, receipt: &str, sealed: &[u8]) {
        let Ok(parsed) = Receipt::parse(receipt) else {
            self.contents.unopened.push((receipt.to_owned(), SealError::Malformed("not a receipt")));
            return;
        };
        match self.keys.open(&self.election, &parsed, sealed) {
            Ok(choices) => {
                let canonical = serde_json::to_string(&choices).expect("choices serialize");
                self.opened.push((canonical, choices));
            }
            Err(e) => self.contents.unopened.push((receipt.to_owned(), e)),
        }
        self.contents.receipts.push(parsed);
    }

    /// One participation row: the voter as stored and its tag, if any.
    pub fn push_participation(&mut self, voter: &str, tag: Option<&[u8]>) {
        self.contents.participation += 1;
        if !tag.is_some_and(|t| self.keys.participation_tag_ok(&self.election, voter, t)) {
            self.contents.untagged.push(voter.to_owned());
        }
    }

    pub fn finish(mut self) -> BoxContents {
        self.opened.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.contents.ballots = self.opened.into_iter().map(|(_, c)| c).collect();
        self.contents.receipts.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        self.contents.untagged.sort_unstable();
        self.contents
    }
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

    /// Every ballot opened, every receipt and the participation count, from one snapshot
    /// (read after close, for the count, the export and `verify-box`).
    async fn box_contents(&self, election: &ElectionId) -> Result<BoxContents, StoreError>;
}
