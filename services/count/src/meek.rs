//! Meek STV as OpenSTV 1.7 counts it (`MeekSTV`, on `RecursiveSTV` in `openstv/STV.py`;
//! the method OpaVote offers as Meek), in fixed point with 6 decimal places; B. L. Meek's
//! method (*Voting matters* 1, 1994) in I. D. Hill's form (*Voting matters* 22, 2006).
//!
//! - Every candidate has a keep value, 1 to begin with. Each paper gives every candidate it
//!   reaches the keep value of what is left of it (truncated to 10⁻⁶) and passes the rest
//!   on (truncated), skipping the excluded as if they had never stood; a continuing
//!   candidate keeps it all. Papers are counted together while they pass the same
//!   candidates, as OpenSTV's ballot tree counts them, so the truncation is the same.
//! - Quota: the votes still counting ÷ (seats + 1), truncated, plus 10⁻⁶, recomputed after
//!   every iteration. Elected on reaching it.
//! - Iteration: each elected candidate's keep value becomes keep × quota ÷ votes, rounded
//!   up; then the papers are counted again. It goes on while the surplus is at least
//!   10⁻⁶ (OpenSTV's omega), no candidates are sure to lose, and the keep values changed.
//! - Exclusion: the sure losers (the lowest candidates, equal votes together, whose votes
//!   with all surpluses are below the next candidate's, leaving enough for the seats;
//!   with OpenSTV, at the first exclusion, those with no votes go together with the lowest
//!   of the rest), else the lowest; when the keep values stopped changing, the lowest.
//! - Ties: the most recent earlier round (the first count or an iteration) at which the tied candidates were unequal,
//!   else by lot.
//! - End: when as many continuing candidates remain as seats, they are elected.
//!
//! A paper whose next preference is several candidates ranked equal goes no further.
//! Checked against OpenSTV 1.7's MeekSTV (tests/meek_reference.rs); where the tools
//! differ, `docs/counting-rules.md`.

use crate::papers::{Count, break_tie_over, initial_states, sure_losers};
use crate::sheet::{Action, Sheet, State};
use crate::{Lot, Profile};

pub const DECIMALS: u32 = 6;
const ONE: i64 = 1_000_000;

pub fn count(profile: &Profile, lot: &Lot) -> Sheet {
    let mut m = Meek::new(profile, lot);
    if m.count.valid == 0 {
        // Nobody voted: nobody is elected.
        m.record(Action::FirstCount, Vec::new());
        return m.count.sheet("meek");
    }
    let newly = m.round();
    m.record(Action::FirstCount, newly);
    while !m.count.complete(&m.states) {
        let stable = m.previous_keep.as_ref() == Some(&m.keep);
        let places = profile.seats - m.count.elected.len();
        let losers = sure_losers(&m.votes, &m.excludable(), m.surplus, places, false);
        if m.surplus >= 1 && losers.is_empty() && !stable {
            m.iterate();
            continue;
        }
        m.end_iterations();
        let excluded = if stable { vec![m.lowest(&m.excludable())] } else { m.choose_exclusion(losers) };
        m.exclude(excluded);
    }
    m.end_iterations();
    m.finish();
    m.count.sheet("meek")
}

/// The rankings as OpenSTV's tree holds them: papers together while they pass the same
/// elected candidates, up to the continuing candidate that keeps them.
struct Tree {
    nodes: Vec<Node>,
    /// The weight of papers with no candidate left at all.
    exhausted: u64,
}

struct Node {
    candidate: usize,
    weight: u64,
    children: Vec<usize>,
}

impl Tree {
    fn build(rankings: &[(u64, Vec<usize>)], states: &[State]) -> Self {
        let mut tree =
            Tree { nodes: vec![Node { candidate: usize::MAX, weight: 0, children: Vec::new() }], exhausted: 0 };
        for (weight, ranking) in rankings {
            let mut at = 0;
            for &c in ranking.iter().filter(|&&c| matches!(states[c], State::Continuing | State::Elected)) {
                at = tree.child(at, c);
                tree.nodes[at].weight += weight;
                if states[c] == State::Continuing {
                    break;
                }
            }
            if at == 0 {
                tree.exhausted += weight;
            }
        }
        tree
    }

    fn child(&mut self, of: usize, candidate: usize) -> usize {
        if let Some(&i) = self.nodes[of].children.iter().find(|&&i| self.nodes[i].candidate == candidate) {
            return i;
        }
        self.nodes.push(Node { candidate, weight: 0, children: Vec::new() });
        let i = self.nodes.len() - 1;
        self.nodes[of].children.push(i);
        i
    }

    /// Everyone's votes under `keep`, and the votes of papers that ran out of candidates.
    fn tally(&self, keep: &[i64]) -> (Vec<i64>, i64) {
        let mut votes = vec![0i64; keep.len()];
        let mut exhausted = self.exhausted as i64 * ONE;
        self.walk(0, ONE, keep, &mut votes, &mut exhausted);
        (votes, exhausted)
    }

    /// Gives each candidate below `node` its share of `left` (what remains of each paper).
    fn walk(&self, node: usize, left: i64, keep: &[i64], votes: &mut [i64], exhausted: &mut i64) {
        for &i in &self.nodes[node].children {
            let Node { candidate: c, weight, ref children } = self.nodes[i];
            let (left, kf, weight) = (i128::from(left), i128::from(keep[c]), i128::from(weight));
            votes[c] += (left * kf * weight / i128::from(ONE)) as i64;
            let passed = (left * (i128::from(ONE) - kf) / i128::from(ONE)) as i64;
            if passed > 0 {
                let onward: u64 = children.iter().map(|&k| self.nodes[k].weight).sum();
                *exhausted += passed * (weight as i64 - onward as i64);
                self.walk(i, passed, keep, votes, exhausted);
            }
        }
    }
}

struct Meek<'a> {
    profile: &'a Profile,
    lot: &'a Lot,
    count: Count<'a>,
    rankings: Vec<(u64, Vec<usize>)>,
    tree: Tree,
    /// The states the tree was built for.
    built: Vec<State>,
    votes: Vec<i64>,
    states: Vec<State>,
    keep: Vec<i64>,
    /// The keep values of the iteration before, to see them stop changing.
    previous_keep: Option<Vec<i64>>,
    quota: i64,
    surplus: i64,
    non_transferable: i64,
    /// Everyone's votes after every iteration, for ties.
    history: Vec<Vec<i64>>,
    /// Iterations since the last stage recorded, and who they elected.
    iterations: usize,
    elected_since: Vec<usize>,
    first_exclusion: bool,
    ties: Vec<String>,
}

impl<'a> Meek<'a> {
    fn new(profile: &'a Profile, lot: &'a Lot) -> Self {
        let n = profile.candidates.len();
        let rankings = profile.strict_rankings();
        let valid: u64 = rankings.iter().map(|(w, _)| w).sum();
        let states = initial_states(profile);
        Meek {
            profile,
            lot,
            count: Count::new(profile, None, valid, DECIMALS),
            tree: Tree::build(&rankings, &states),
            built: states.clone(),
            rankings,
            votes: vec![0; n],
            states,
            keep: vec![ONE; n],
            previous_keep: None,
            quota: 0,
            surplus: 0,
            non_transferable: 0,
            history: Vec::new(),
            iterations: 0,
            elected_since: Vec::new(),
            first_exclusion: true,
            ties: Vec::new(),
        }
    }

    fn continuing(&self) -> Vec<usize> {
        (0..self.votes.len()).filter(|&c| self.states[c] == State::Continuing).collect()
    }

    /// The continuing candidates a rule may exclude: all but the protected one (RON, by
    /// bye-law), who is never a loser.
    fn excludable(&self) -> Vec<usize> {
        self.profile.excludable(&self.continuing())
    }

    fn record(&mut self, action: Action, newly: Vec<usize>) {
        self.count.quota = Some(self.quota);
        self.count.record(action, &self.votes, &self.states, newly, self.non_transferable, &mut self.ties);
    }

    /// Counts the papers under the current keep values, recomputes the quota and the
    /// surplus, and elects whoever reached the quota, most votes first.
    fn round(&mut self) -> Vec<usize> {
        if self.built != self.states {
            self.tree = Tree::build(&self.rankings, &self.states);
            self.built = self.states.clone();
        }
        let (votes, exhausted) = self.tree.tally(&self.keep);
        self.votes = votes;
        self.non_transferable = exhausted;
        let counting: i64 = self.votes.iter().sum();
        self.quota = counting / (self.profile.seats as i64 + 1) + 1;
        let mut reached: Vec<usize> = self.continuing().into_iter().filter(|&c| self.votes[c] >= self.quota).collect();
        reached.sort_by_key(|&c| std::cmp::Reverse(self.votes[c]));
        self.cut(&mut reached);
        for &c in &reached {
            self.states[c] = State::Elected;
            self.count.elected.push(c);
        }
        let live = (0..self.votes.len()).filter(|&c| matches!(self.states[c], State::Continuing | State::Elected));
        self.surplus = live.map(|c| (self.votes[c] - self.quota).max(0)).sum();
        self.history.push(self.votes.clone());
        reached
    }

    /// `reached` (most votes first) cut to the seats left: an elected candidate can fall
    /// below the quota while others reach it, but no more are elected than seats. A tie
    /// across the cut goes back through the rounds, then to the lot.
    fn cut(&mut self, reached: &mut Vec<usize>) {
        let places = self.profile.seats - self.count.elected.len();
        while reached.len() > places {
            let out = self.lowest(reached);
            reached.retain(|&c| c != out);
        }
    }

    /// One iteration: new keep values for the elected over the quota, then a recount. A
    /// stage is recorded when it elects someone.
    fn iterate(&mut self) {
        let mut keep = self.keep.clone();
        for c in (0..keep.len()).filter(|&c| self.states[c] == State::Elected && self.votes[c] > self.quota) {
            let (kf, quota, votes) = (i128::from(keep[c]), i128::from(self.quota), i128::from(self.votes[c]));
            keep[c] = ((kf * quota + votes - 1) / votes) as i64;
        }
        self.previous_keep = Some(std::mem::replace(&mut self.keep, keep));
        let newly = self.round();
        self.iterations += 1;
        self.elected_since.extend(newly);
        if !self.elected_since.is_empty() {
            self.end_iterations();
        }
    }

    /// Records the iterations since the last stage as one.
    fn end_iterations(&mut self) {
        if self.iterations > 0 {
            let action = Action::Iterate { iterations: std::mem::take(&mut self.iterations), surplus: self.surplus };
            let newly = std::mem::take(&mut self.elected_since);
            self.record(action, newly);
        }
    }

    /// The sure losers; at the first exclusion, with no surplus, those with no votes go
    /// together with the lowest of the rest (as OpenSTV does); else the lowest.
    fn choose_exclusion(&mut self, mut losers: Vec<usize>) -> Vec<usize> {
        let places = self.profile.seats - self.count.elected.len();
        if std::mem::replace(&mut self.first_exclusion, false)
            && self.surplus == 0
            && !losers.is_empty()
            && losers.iter().all(|&c| self.votes[c] == 0)
        {
            let rest: Vec<usize> = self.excludable().into_iter().filter(|c| !losers.contains(c)).collect();
            if rest.len() > places {
                let low = self.lowest(&rest);
                losers.push(low);
            }
        }
        if losers.is_empty() {
            let excludable = self.excludable();
            losers.push(self.lowest(&excludable));
        }
        losers.sort_unstable();
        losers
    }

    /// The candidate of `among` with the fewest votes; a tie goes back through the
    /// iterations, then to the lot.
    fn lowest(&mut self, among: &[usize]) -> usize {
        let low = among.iter().map(|&c| self.votes[c]).min().expect("candidates");
        let tied: Vec<usize> = among.iter().copied().filter(|&c| self.votes[c] == low).collect();
        let points =
            self.history.iter().enumerate().rev().map(|(i, votes)| (format!("round {}", i + 1), votes.as_slice()));
        let (c, note) = break_tie_over(&tied, false, points, self.lot, &self.profile.candidates, "fewest votes");
        self.ties.extend(note);
        c
    }

    /// Excludes `excluded` (as if they had never stood) and counts again.
    fn exclude(&mut self, excluded: Vec<usize>) {
        self.first_exclusion = false;
        let mut keep = self.keep.clone();
        for &c in &excluded {
            self.states[c] = State::Excluded;
            keep[c] = 0;
        }
        self.previous_keep = Some(std::mem::replace(&mut self.keep, keep));
        let newly = self.round();
        self.record(Action::Exclusion { excluded }, newly);
    }

    /// The continuing candidates elected when they fit the seats left, most votes first,
    /// else (every seat filled) excluded.
    fn finish(&mut self) {
        if let Some(newly) = self.count.finish(&mut self.states, &self.votes) {
            self.record(Action::ElectRemaining, newly);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ballot;

    fn profile(seats: usize, ballots: &[(u64, &[usize])]) -> Profile {
        Profile {
            title: "t".into(),
            candidates: ["A", "B", "C"].map(String::from).to_vec(),
            seats,
            withdrawn: Default::default(),
            tie_order: None,
            never_excluded: None,
            ballots: ballots
                .iter()
                .map(|(w, r)| Ballot { weight: *w, ranks: r.iter().map(|&c| vec![c]).collect() })
                .collect(),
        }
    }

    #[test]
    fn a_keep_value_passes_the_surplus_on_and_the_quota_follows_the_votes() {
        let p = profile(2, &[(6, &[0, 1]), (2, &[1]), (3, &[2])]);
        let s = count(&p, &Lot::Order(vec![0, 1, 2]));
        assert_eq!(s.stages[0].quota, Some(3_666_667), "11 ÷ 3, truncated, plus 10⁻⁶");
        assert_eq!(s.stages[0].elected, [0]);
        // A keeps ⌈3.666667 ÷ 6⌉ = 0.611112 of each paper and passes 0.388888 to B.
        assert_eq!(s.stages[1].action, Action::Iterate { iterations: 1, surplus: 5 + 666_661 });
        assert_eq!(s.stages[1].votes, [3_666_672, 2_000_000 + 2_333_328, 3_000_000]);
        assert_eq!(s.elected_names(), ["A", "B"]);
    }

    #[test]
    fn an_excluded_candidate_is_counted_as_if_they_had_never_stood() {
        // C (2) cannot overtake B (3): excluded at once; C's papers count for A in full.
        let p = profile(1, &[(4, &[0]), (3, &[1]), (2, &[2, 0])]);
        let s = count(&p, &Lot::Order(vec![0, 1, 2]));
        assert_eq!(s.stages[1].action, Action::Exclusion { excluded: vec![2] });
        assert_eq!(s.stages[1].votes, [6_000_000, 3_000_000, 0]);
        assert_eq!((s.stages[1].elected.as_slice(), s.quota), (&[0][..], Some(4_500_001)));
    }
}
