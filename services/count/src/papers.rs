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

impl Paper {
    /// The next continuing candidate this paper prefers, and where on its ranking.
    pub fn next_continuing(&self, states: &[State]) -> Option<(usize, usize)> {
        (self.at + 1..self.ranking.len())
            .map(|at| (at, self.ranking[at]))
            .find(|&(_, c)| states[c] == State::Continuing)
    }

    /// Moves the paper on to the preference at `at` (from `next_continuing`).
    pub fn move_to(&mut self, at: usize) {
        self.at = at;
    }
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

/// Every candidate continuing, except the withdrawn.
pub(crate) fn initial_states(profile: &Profile) -> Vec<State> {
    (0..profile.candidates.len())
        .map(|c| if profile.withdrawn.contains(&c) { State::Withdrawn } else { State::Continuing })
        .collect()
}

/// The tie-break most rules share: back through the earlier stages, those still tied are
/// narrowed at each stage where they differed to the ones with the most (`highest`) or
/// the fewest votes, until one is left; else the lot draws among the rest.
pub(crate) fn break_tie(
    tied: &[usize],
    highest: bool,
    history: &[Vec<i64>],
    lot: &crate::Lot,
    names: &[String],
    why: &str,
) -> (usize, Option<String>) {
    let points = history.iter().enumerate().rev().map(|(i, votes)| (format!("stage {}", i + 1), votes.as_slice()));
    break_tie_over(tied, highest, points, lot, names, why)
}

/// `break_tie` over `points` (a label and everyone's votes) in the order given: ERS97
/// looks forward from the first stage, Meek back through its iterations.
pub(crate) fn break_tie_over<'h>(
    tied: &[usize],
    highest: bool,
    points: impl Iterator<Item = (String, &'h [i64])>,
    lot: &crate::Lot,
    names: &[String],
    why: &str,
) -> (usize, Option<String>) {
    if tied.len() == 1 {
        return (tied[0], None);
    }
    let list = tied.iter().map(|&c| names[c].as_str()).collect::<Vec<_>>().join(", ");
    match narrow(tied, highest, points) {
        Ok((one, at)) => (one, Some(format!("{why}: {list} tied; {} by the votes at {at}", names[one]))),
        Err(still) => {
            let drawn = lot.draw(&still);
            (drawn, Some(format!("{why}: {list} tied at every stage; {} by {}", names[drawn], lot.describe())))
        }
    }
}

/// Narrows `tied` point by point to those with the most (or fewest) votes: the one left
/// and the label of the point that decided, or those still tied at the end.
pub(crate) fn narrow<'h>(
    tied: &[usize],
    highest: bool,
    points: impl Iterator<Item = (String, &'h [i64])>,
) -> Result<(usize, String), Vec<usize>> {
    let mut still: Vec<usize> = tied.to_vec();
    for (label, votes) in points {
        let extreme =
            if highest { still.iter().map(|&c| votes[c]).max() } else { still.iter().map(|&c| votes[c]).min() };
        still.retain(|&c| Some(votes[c]) == extreme);
        if let [one] = still.as_slice() {
            return Ok((*one, label));
        }
    }
    Err(still)
}

/// Candidates who cannot avoid exclusion (ERS97 5.2.2 and 5.2.5, OpenSTV's "sure
/// losers"): the largest group of the lowest, candidates with equal votes always together,
/// whose votes with `surplus` (all surpluses not yet transferred) are below the next
/// candidate's (`or_equal`: not above it), leaving more than `places` candidates.
pub(crate) fn sure_losers(
    votes: &[i64],
    continuing: &[usize],
    surplus: i64,
    places: usize,
    or_equal: bool,
) -> Vec<usize> {
    let mut by_votes = continuing.to_vec();
    by_votes.sort_by_key(|&c| (votes[c], c));
    let most = continuing.len().saturating_sub(places);
    let mut total = surplus;
    let mut losers = Vec::new();
    let mut i = 0;
    while i < by_votes.len() {
        let v = votes[by_votes[i]];
        let end = by_votes[i..].iter().position(|&c| votes[c] != v).map_or(by_votes.len(), |k| i + k);
        let Some(&next) = by_votes.get(end) else { break };
        total += (end - i) as i64 * v;
        let beaten = if or_equal { total <= votes[next] } else { total < votes[next] };
        if beaten && end <= most {
            losers = by_votes[..end].to_vec();
        }
        i = end;
    }
    losers.sort_unstable();
    losers
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
    /// The end of a count: the continuing candidates elected when they fit the seats left,
    /// most votes first, else (every seat filled) excluded. Those elected here, or `None`
    /// when nobody was continuing (no stage to record).
    pub fn finish(&mut self, states: &mut [State], votes: &[i64]) -> Option<Vec<usize>> {
        let continuing: Vec<usize> = (0..states.len()).filter(|&c| states[c] == State::Continuing).collect();
        if continuing.is_empty() {
            return None;
        }
        let mut newly = Vec::new();
        if continuing.len() <= self.profile.seats - self.elected.len() {
            let mut by_votes = continuing.clone();
            by_votes.sort_by_key(|&c| std::cmp::Reverse(votes[c]));
            for c in by_votes {
                states[c] = State::Elected;
                self.elected.push(c);
                newly.push(c);
            }
        }
        for c in continuing {
            if states[c] == State::Continuing {
                states[c] = State::Excluded;
            }
        }
        Some(newly)
    }

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
        non_transferable: i64,
        ties: &mut Vec<String>,
    ) {
        let one = 10i64.pow(self.decimals);
        let held: i64 = votes.iter().sum();
        let residual = self.valid as i64 * one - held - non_transferable;
        self.history.push(votes.to_vec());
        self.stages.push(Stage {
            number: self.stages.len() + 1,
            action,
            votes: votes.to_vec(),
            states: states.to_vec(),
            elected,
            quota: self.quota,
            non_transferable,
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

#[cfg(test)]
mod tests {
    use super::{break_tie, sure_losers};
    use crate::Lot;

    #[test]
    fn sure_losers_are_the_largest_group_of_the_lowest_that_cannot_overtake_the_next() {
        // Votes 0, 3, 3, 7, 20: {0} (0 ≤ 3), {0, 3, 3} (6 ≤ 7) and all but 20 (13 ≤ 20).
        let votes = [7, 3, 0, 20, 3];
        let all = [0, 1, 2, 3, 4];
        assert_eq!(sure_losers(&votes, &all, 0, 1, true), vec![0, 1, 2, 4]);
        assert_eq!(sure_losers(&votes, &all, 0, 2, true), vec![1, 2, 4], "two must stay for two places");
        assert_eq!(sure_losers(&votes, &all, 2, 2, true), vec![2], "a surplus of 2 could lift 3 and 3 over 7");
        assert_eq!(sure_losers(&votes, &all, 8, 1, true), Vec::<usize>::new());
        assert_eq!(sure_losers(&[4, 4], &[0, 1], 0, 1, true), Vec::<usize>::new(), "no one is above a tie");
        assert_eq!(sure_losers(&[3, 3, 0], &[0, 1, 2], 3, 1, false), Vec::<usize>::new(), "3 < 3 is false");
        assert_eq!(sure_losers(&[3, 3, 0], &[0, 1, 2], 3, 1, true), vec![2]);
    }

    #[test]
    fn a_tie_of_three_narrows_stage_by_stage_and_the_lot_draws_among_the_rest() {
        let names: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        // Now A, B and C tie; a stage before, C had more; before that A and B were equal.
        let history = vec![vec![4, 4, 3], vec![4, 4, 5], vec![5, 5, 5]];
        let lot = Lot::Order(vec![2, 1, 0]);
        let (out, note) = break_tie(&[0, 1, 2], false, &history, &lot, &names, "fewest votes");
        assert_eq!(out, 1, "C had more at stage 2, so it is A or B; the lot (C, B, A) draws B");
        assert!(note.unwrap().contains("tied at every stage"));
        let (out, note) = break_tie(&[0, 1, 2], true, &history, &lot, &names, "largest surplus");
        assert_eq!(out, 2, "C had the most at stage 2");
        assert!(note.unwrap().contains("stage 2"));
    }
}
