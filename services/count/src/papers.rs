//! The papers as a count moves them: each ranking with its multiplicity and its current
//! value, sitting with its next continuing preference; a pile per candidate.

use crate::Profile;
use crate::sheet::{Action, Sheet, Stage, State};

pub(crate) struct Paper {
    pub count: u64,
    /// The value of one such paper, in the rule's units.
    pub value: i64,
    ranking: Vec<usize>,
    at: usize,
}

pub(crate) struct Papers {
    pub papers: Vec<Paper>,
    pub piles: Vec<Vec<usize>>,
    /// Votes on papers with no continuing preference left.
    pub non_transferable: i64,
}

impl Papers {
    /// Every ranking at its first preference, worth `one` each.
    pub fn first_count(rankings: Vec<(u64, Vec<usize>)>, candidates: usize, one: i64) -> (Self, Vec<i64>) {
        let mut papers = Papers { papers: Vec::new(), piles: vec![Vec::new(); candidates], non_transferable: 0 };
        let mut votes = vec![0i64; candidates];
        for (count, ranking) in rankings {
            let first = ranking[0];
            votes[first] += count as i64 * one;
            papers.piles[first].push(papers.papers.len());
            papers.papers.push(Paper { count, value: one, ranking, at: 0 });
        }
        (papers, votes)
    }

    /// Moves every paper of `from` on to its next continuing preference (at the value
    /// `revalue` gives it), adding to `votes`; papers with none left are non-transferable.
    pub fn pass_on(&mut self, from: usize, states: &[State], votes: &mut [i64], revalue: impl Fn(i64) -> i64) {
        for i in std::mem::take(&mut self.piles[from]) {
            let paper = &mut self.papers[i];
            paper.value = revalue(paper.value);
            let worth = paper.count as i64 * paper.value;
            loop {
                paper.at += 1;
                match paper.ranking.get(paper.at) {
                    None => {
                        self.non_transferable += worth;
                        break;
                    }
                    Some(&c) if states[c] == State::Continuing => {
                        votes[c] += worth;
                        self.piles[c].push(i);
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// The tie-break most rules share: the most recent earlier stage at which exactly one of
/// `tied` had the most (`highest`) or the fewest votes; else the lot.
pub(crate) fn break_tie(
    tied: &[usize],
    highest: bool,
    history: &[Vec<i64>],
    lot: &crate::Lot,
    names: &[String],
    why: &str,
) -> (usize, Option<String>) {
    if tied.len() == 1 {
        return (tied[0], None);
    }
    let list = tied.iter().map(|&c| names[c].as_str()).collect::<Vec<_>>().join(", ");
    for (stage, votes) in history.iter().enumerate().rev() {
        let extreme = if highest { tied.iter().map(|&c| votes[c]).max() } else { tied.iter().map(|&c| votes[c]).min() };
        let at: Vec<usize> = tied.iter().copied().filter(|&c| Some(votes[c]) == extreme).collect();
        if let [one] = at.as_slice() {
            let note = format!("{why}: {list} tied; {} by the votes at stage {}", names[*one], stage + 1);
            return (*one, Some(note));
        }
    }
    let drawn = lot.draw(tied);
    (drawn, Some(format!("{why}: {list} tied at every stage; {} by {}", names[drawn], lot.describe())))
}

/// A count in progress: its stages so far, and who is elected.
pub(crate) struct Count<'a> {
    pub profile: &'a Profile,
    pub quota: Option<i64>,
    pub valid: u64,
    pub decimals: u32,
    pub stages: Vec<Stage>,
    /// Each stage's votes, for ties.
    pub history: Vec<Vec<i64>>,
    pub elected: Vec<usize>,
}

impl<'a> Count<'a> {
    pub fn new(profile: &'a Profile, quota: Option<i64>, valid: u64, decimals: u32) -> Self {
        Count { profile, quota, valid, decimals, stages: Vec::new(), history: Vec::new(), elected: Vec::new() }
    }

    /// Every seat filled, or no more continuing candidates than seats left.
    pub fn complete(&self, states: &[State]) -> bool {
        let left = self.profile.seats - self.elected.len();
        left == 0 || states.iter().filter(|s| **s == State::Continuing).count() <= left
    }

    pub fn record(
        &mut self,
        action: Action,
        votes: &[i64],
        states: &[State],
        elected: Vec<usize>,
        papers: &Papers,
        ties: &mut Vec<String>,
    ) {
        let one = 10i64.pow(self.decimals);
        let held: i64 = votes.iter().sum();
        let residual = self.valid as i64 * one - held - papers.non_transferable;
        self.history.push(votes.to_vec());
        self.stages.push(Stage {
            number: self.stages.len() + 1,
            action,
            votes: votes.to_vec(),
            states: states.to_vec(),
            elected,
            non_transferable: papers.non_transferable,
            residual,
            ties: std::mem::take(ties),
        });
    }

    pub fn sheet(self, method: &'static str) -> Sheet {
        Sheet {
            method,
            title: self.profile.title.clone(),
            seats: self.profile.seats,
            candidates: self.profile.candidates.clone(),
            decimals: self.decimals,
            valid_papers: self.valid,
            quota: self.quota,
            stages: self.stages,
            elected: self.elected,
        }
    }
}
