//! ERS97 STV: the Electoral Reform Society's rules for a hand count (*How to conduct an
//! election by the Single Transferable Vote*, 3rd edition, 1997, section 5), the rules
//! students' unions count by; fixed point with 2 decimal places.
//!
//! - Quota (5.1.6): the total valid vote ÷ (seats + 1), to two places; if inexact, the
//!   remainder ignored and 0.01 added. While nobody is elected it is recalculated without
//!   the non-transferable votes (5.4.8).
//! - Election (5.1.7, 5.3.13, 5.4.9): in descending order of votes, any candidate with the
//!   quota or (rarely less) the total active vote ÷ (places unfilled + 1), up to the places
//!   left. Candidates with equal votes for too few places go in the order of the first
//!   point where they differed; if they never did, none of them is elected then (5.6.2).
//! - Surpluses (5.2.2–5.2.4): the largest first, unless deferred: while all surpluses
//!   together could not lift the lowest candidate(s) that could be excluded (5.2.5) above
//!   the next, those are excluded instead. Only the last batch received, which gave rise
//!   to the surplus, is examined (5.3.2); its transferable papers go on at surplus ÷ their
//!   number, truncated to 0.01, or at their present value if worth no more than the
//!   surplus (5.3.7). Truncation's loss is the residual (6.11); an untransferred rest is
//!   non-transferable.
//! - Exclusion (5.2.5, 5.4): as many of the lowest together as leave enough candidates and,
//!   with the deferred surpluses, do not exceed the vote of the next above; else the
//!   lowest. Their papers go on in batches by transfer value, highest first; candidates
//!   may be elected after each batch, and then receive no more (5.4.10).
//! - Ties (5.2.3, 5.2.5): the first stage, or the earliest point after the transfer of a
//!   batch, at which the tied candidates were unequal; else by lot.
//! - End (5.5): when an exclusion would leave as many continuing candidates as places,
//!   they are elected (no transfer is needed); when every place is filled, no more
//!   transfers are made.
//!
//! A paper whose next preference is several candidates ranked equal goes no further
//! (6.10). Checked against OpenSTV 1.7's ERS97STV (tests/ers97_reference.rs); where the
//! two differ, `docs/counting-rules.md`.

use crate::papers::{Count, Paper, Papers, break_tie_over, initial_states, narrow, sure_losers};
use crate::sheet::{Action, Sheet, State};
use crate::{Lot, Profile};

pub const DECIMALS: u32 = 2;
const ONE: i64 = 100;

pub fn count(profile: &Profile, lot: &Lot) -> Sheet {
    let mut e = Ers97::new(profile, lot);
    if e.count.valid == 0 {
        // Nobody voted: nobody is elected.
        e.record(Action::FirstCount, Vec::new());
        return e.count.sheet("ers97");
    }
    e.point("stage 1".into());
    let newly = e.elect();
    e.record(Action::FirstCount, newly);
    while !e.count.complete(&e.states) {
        let deferred = e.surplus();
        let continuing = e.continuing();
        let places = profile.seats - e.count.elected.len();
        let losers = sure_losers(&e.votes, &e.excludable(), deferred, places, true);
        if deferred > 0 && losers.is_empty() {
            e.transfer_surplus();
            continue;
        }
        let excluded = e.choose_exclusion(losers, deferred);
        if continuing.len() - excluded.len() == places {
            // 5.5.1: the rest fill the places; the exclusion needs no transfer.
            for &c in &excluded {
                e.states[c] = State::Excluded;
            }
            break;
        }
        e.exclude(excluded);
    }
    e.finish();
    e.count.sheet("ers97")
}

struct Ers97<'a> {
    profile: &'a Profile,
    lot: &'a Lot,
    count: Count<'a>,
    papers: Vec<Paper>,
    /// Each candidate's batches of papers, in the order received (the last gave rise to
    /// any surplus).
    batches: Vec<Vec<Vec<usize>>>,
    votes: Vec<i64>,
    states: Vec<State>,
    quota: i64,
    /// Elected with a surplus not yet transferred.
    pending: Vec<usize>,
    non_transferable: i64,
    /// Everyone's votes at the first stage and after each batch, for ties.
    points: Vec<(String, Vec<i64>)>,
    first_exclusion: bool,
    ties: Vec<String>,
}

impl<'a> Ers97<'a> {
    fn new(profile: &'a Profile, lot: &'a Lot) -> Self {
        let n = profile.candidates.len();
        let rankings = profile.strict_rankings();
        let valid: u64 = rankings.iter().map(|(w, _)| w).sum();
        let (papers, votes) = Papers::first_count(rankings, n, ONE);
        let batches = papers.piles.into_iter().map(|pile| vec![pile]).collect();
        let quota = quota(valid as i64 * ONE, profile.seats);
        Ers97 {
            profile,
            lot,
            count: Count::new(profile, Some(quota), valid, DECIMALS),
            papers: papers.papers,
            batches,
            votes,
            states: initial_states(profile),
            quota,
            pending: Vec::new(),
            non_transferable: 0,
            points: Vec::new(),
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

    /// All surpluses not yet transferred.
    fn surplus(&self) -> i64 {
        self.pending.iter().map(|&c| self.votes[c] - self.quota).sum()
    }

    fn point(&mut self, label: String) {
        self.points.push((label, self.votes.clone()));
    }

    fn record(&mut self, action: Action, newly: Vec<usize>) {
        self.count.quota = Some(self.quota);
        self.count.record(action, &self.votes, &self.states, newly, self.non_transferable, &mut self.ties);
    }

    /// The tie-break of 5.2.3 and 5.2.5: forward from the first stage.
    fn tie(&mut self, tied: &[usize], highest: bool, why: &str) -> usize {
        let points = self.points.iter().map(|(label, votes)| (label.clone(), votes.as_slice()));
        let (c, note) = break_tie_over(tied, highest, points, self.lot, &self.profile.candidates, why);
        self.ties.extend(note);
        c
    }

    /// 5.1.7, 5.3.13, 5.4.9: deems elected, in descending order of votes, whoever has the
    /// quota or the total active vote ÷ (places unfilled + 1), up to the places left.
    fn elect(&mut self) -> Vec<usize> {
        let mut newly = Vec::new();
        loop {
            if self.count.elected.is_empty() {
                // 5.4.8: before anyone is elected, the quota leaves out non-transferable votes.
                self.quota = quota(self.votes.iter().sum(), self.profile.seats);
            }
            let places = self.profile.seats - self.count.elected.len();
            if places == 0 {
                break;
            }
            let active: i64 = (0..self.votes.len())
                .filter(|&c| matches!(self.states[c], State::Continuing | State::Excluded))
                .map(|c| self.votes[c])
                .sum::<i64>()
                + self.surplus();
            let bar = self.quota.min(quota(active, places)).max(1);
            let mut reached: Vec<usize> = self.continuing().into_iter().filter(|&c| self.votes[c] >= bar).collect();
            reached.sort_by_key(|&c| std::cmp::Reverse(self.votes[c]));
            let chosen = self.up_to(reached, places);
            if chosen.is_empty() {
                break;
            }
            for c in chosen {
                self.states[c] = State::Elected;
                self.count.elected.push(c);
                if self.votes[c] > self.quota {
                    self.pending.push(c);
                }
                newly.push(c);
            }
        }
        newly
    }

    /// `reached` (most votes first) cut to `places`; candidates tied across the cut go by
    /// the earliest point they differed, and none of those never unequal (5.6.2).
    fn up_to(&mut self, reached: Vec<usize>, places: usize) -> Vec<usize> {
        if reached.len() <= places {
            return reached;
        }
        let cut = self.votes[reached[places - 1]];
        let (mut chosen, rest): (Vec<usize>, Vec<usize>) = reached.into_iter().partition(|&c| self.votes[c] > cut);
        let mut tied: Vec<usize> = rest.into_iter().filter(|&c| self.votes[c] == cut).collect();
        let names = &self.profile.candidates;
        while chosen.len() < places {
            let points = self.points.iter().map(|(label, votes)| (label.clone(), votes.as_slice()));
            match narrow(&tied, true, points) {
                Ok((c, at)) => {
                    self.ties.push(format!("last places: {} by the votes at {at}", names[c]));
                    tied.retain(|&t| t != c);
                    chosen.push(c);
                }
                Err(never) => {
                    let list = never.iter().map(|&c| names[c].as_str()).collect::<Vec<_>>().join(", ");
                    let note = format!("last places: {list} equal at every point; none elected now (5.6.2)");
                    if !self.ties.contains(&note) {
                        self.ties.push(note);
                    }
                    break;
                }
            }
        }
        chosen
    }

    /// 5.2.3, 5.3: the largest surplus, from the last batch received.
    fn transfer_surplus(&mut self) {
        let high = self.pending.iter().map(|&c| self.votes[c]).max().expect("a surplus");
        let tied: Vec<usize> = self.pending.iter().copied().filter(|&c| self.votes[c] == high).collect();
        let from = self.tie(&tied, true, "largest surplus");
        self.pending.retain(|&c| c != from);
        let surplus = self.votes[from] - self.quota;
        let last = self.batches[from].pop().unwrap_or_default();
        self.batches[from].clear();
        let next: Vec<Option<(usize, usize)>> =
            last.iter().map(|&i| self.papers[i].next_continuing(&self.states)).collect();
        let (mut papers, mut value) = (0i64, 0i64);
        for (&i, _) in last.iter().zip(&next).filter(|(_, n)| n.is_some()) {
            papers += self.papers[i].count as i64;
            value += self.papers[i].count as i64 * self.papers[i].value;
        }
        // 5.3.7: a new transfer value only when the papers are worth more than the surplus.
        let revalue = (value > surplus).then(|| surplus / papers);
        let moved = self.move_papers(last.iter().copied().zip(next), revalue);
        if revalue.is_none() {
            self.non_transferable += surplus - moved;
        }
        self.votes[from] = self.quota;
        let stage = self.count.stages.len() + 1;
        self.point(format!("stage {stage}"));
        let newly = self.elect();
        self.record(Action::Surplus { from, surplus }, newly);
    }

    /// Moves papers to their next preference (at `revalue` when given), each receiving
    /// candidate's as a new batch; returns the value moved.
    fn move_papers(
        &mut self,
        moves: impl Iterator<Item = (usize, Option<(usize, usize)>)>,
        revalue: Option<i64>,
    ) -> i64 {
        let mut received: Vec<Vec<usize>> = vec![Vec::new(); self.votes.len()];
        let mut moved = 0;
        for (i, next) in moves {
            let paper = &mut self.papers[i];
            if let Some(v) = revalue {
                paper.value = v;
            }
            if let Some((at, to)) = next {
                paper.move_to(at);
                let worth = paper.count as i64 * paper.value;
                self.votes[to] += worth;
                moved += worth;
                received[to].push(i);
            }
        }
        for (c, batch) in received.into_iter().enumerate().filter(|(_, b)| !b.is_empty()) {
            self.batches[c].push(batch);
        }
        moved
    }

    /// 5.2.5: the sure losers (with OpenSTV, at the first exclusion those with no votes go
    /// together with the lowest of the rest), else the lowest.
    fn choose_exclusion(&mut self, mut losers: Vec<usize>, deferred: i64) -> Vec<usize> {
        let places = self.profile.seats - self.count.elected.len();
        if std::mem::replace(&mut self.first_exclusion, false)
            && deferred == 0
            && losers.iter().all(|&c| self.votes[c] == 0)
        {
            let rest: Vec<usize> = self.excludable().into_iter().filter(|c| !losers.contains(c)).collect();
            if rest.len() > places && !losers.is_empty() {
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

    fn lowest(&mut self, among: &[usize]) -> usize {
        let low = among.iter().map(|&c| self.votes[c]).min().expect("candidates");
        let tied: Vec<usize> = among.iter().copied().filter(|&c| self.votes[c] == low).collect();
        self.tie(&tied, false, "fewest votes")
    }

    /// 5.4: the excluded candidates' papers go on in batches of equal transfer value,
    /// highest first, electing after each; no more once every place is filled (5.5.2).
    fn exclude(&mut self, excluded: Vec<usize>) {
        let mut held: Vec<(usize, usize)> = Vec::new();
        for &c in &excluded {
            self.states[c] = State::Excluded;
            held.extend(std::mem::take(&mut self.batches[c]).into_iter().flatten().map(|i| (i, c)));
        }
        held.sort_by_key(|&(i, _)| std::cmp::Reverse(self.papers[i].value));
        let mut values: Vec<i64> = held.iter().map(|&(i, _)| self.papers[i].value).collect();
        values.dedup();
        let stage = self.count.stages.len() + 1;
        let mut newly = Vec::new();
        if values.is_empty() {
            self.point(format!("stage {stage}"));
            newly.extend(self.elect());
        }
        for (b, &value) in values.iter().enumerate() {
            let batch: Vec<(usize, usize)> =
                held.iter().copied().filter(|&(i, _)| self.papers[i].value == value).collect();
            self.transfer_batch(&batch);
            let label = if values.len() == 1 {
                format!("stage {stage}")
            } else {
                format!("stage {stage} (batch {} of {})", b + 1, values.len())
            };
            self.point(label);
            newly.extend(self.elect());
            if self.count.elected.len() == self.profile.seats {
                break;
            }
        }
        self.record(Action::Exclusion { excluded }, newly);
    }

    /// One batch of an exclusion: each paper from its holder to its next continuing
    /// preference, or non-transferable.
    fn transfer_batch(&mut self, batch: &[(usize, usize)]) {
        let next: Vec<Option<(usize, usize)>> =
            batch.iter().map(|&(i, _)| self.papers[i].next_continuing(&self.states)).collect();
        for (&(i, holder), n) in batch.iter().zip(&next) {
            let worth = self.papers[i].count as i64 * self.papers[i].value;
            self.votes[holder] -= worth;
            if n.is_none() {
                self.non_transferable += worth;
            }
        }
        self.move_papers(batch.iter().map(|&(i, _)| i).zip(next), None);
    }

    /// 5.5: the continuing candidates elected when they fit the places left, most votes
    /// first, else (every place filled) excluded.
    fn finish(&mut self) {
        if let Some(newly) = self.count.finish(&mut self.states, &self.votes) {
            self.record(Action::ElectRemaining, newly);
        }
    }
}

/// `total` ÷ (`seats` + 1), rounded up to the unit (5.1.6).
fn quota(total: i64, seats: usize) -> i64 {
    let d = seats as i64 + 1;
    (total + d - 1) / d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ballot;

    fn profile(seats: usize, ballots: &[(u64, &str)]) -> Profile {
        let names = ["A", "B", "C", "D", "E"];
        Profile {
            title: "t".into(),
            candidates: names.map(String::from).to_vec(),
            seats,
            withdrawn: Default::default(),
            tie_order: None,
            never_excluded: None,
            ballots: ballots
                .iter()
                .map(|(w, r)| Ballot {
                    weight: *w,
                    ranks: r.chars().map(|c| vec![names.iter().position(|n| n.starts_with(c)).unwrap()]).collect(),
                })
                .collect(),
        }
    }

    fn order() -> Lot {
        Lot::Order((0..5).collect())
    }

    #[test]
    fn a_later_surplus_goes_on_from_the_last_batch_only_at_a_value_truncated_to_two_places() {
        let p = profile(3, &[(24, "ABC"), (16, "A"), (14, "BD"), (10, "C"), (9, "D")]);
        let s = count(&p, &order());
        assert_eq!(s.quota, Some(1825), "73 ÷ 4 = 18.25");
        // A's 24 transferable papers carry the surplus of 21.75 at 0.90 (not 0.906...).
        assert_eq!(s.stages[1].action, Action::Surplus { from: 0, surplus: 2175 });
        assert_eq!(s.stages[1].votes[1], 1400 + 2160);
        // B's surplus of 17.35 comes from the 24 papers A gave (at 0.72), none of B's own:
        // D, B's own voters' next choice, gets nothing.
        assert_eq!(s.stages[2].action, Action::Surplus { from: 1, surplus: 1735 });
        assert_eq!(s.stages[2].votes, [1825, 1825, 1000 + 1728, 900, 0]);
        assert_eq!(s.elected_names(), ["A", "B", "C"]);
        let last = s.stages.last().unwrap();
        assert_eq!((last.residual, last.non_transferable), (15 + 7, 0));
    }

    #[test]
    fn a_surplus_that_cannot_save_the_lowest_is_deferred_and_the_lowest_go_together() {
        // A's surplus of 5 does not exceed D − E = 5 (5.2.2 a): E is excluded first.
        let p = profile(2, &[(31, "AB"), (20, "B"), (12, "CB"), (10, "DC"), (5, "ED")]);
        let s = count(&p, &order());
        assert_eq!(s.quota, Some(2600));
        assert_eq!(s.stages[1].action, Action::Exclusion { excluded: vec![4] });
        assert_eq!(s.stages[2].action, Action::Surplus { from: 0, surplus: 500 });
        assert_eq!(s.stages[2].votes[1], 2000 + 496, "5 ÷ 31 papers = 0.16 each");
        assert_eq!(s.elected_names(), ["A", "B"]);
        // C, D and E together (3) do not exceed B (8): one exclusion (5.2.5), and B then
        // has the quota of 10.50.
        let p = profile(1, &[(10, "A"), (8, "B"), (2, "CB"), (1, "DB")]);
        let s = count(&p, &order());
        assert_eq!(s.stages[1].action, Action::Exclusion { excluded: vec![2, 3, 4] });
        assert_eq!((s.quota, s.elected_names()), (Some(1050), vec!["B"]));
    }

    #[test]
    fn the_total_active_vote_elects_below_the_quota() {
        // After A's surplus and D's exclusion, B's 19.50 is over the active 30.50 ÷ 2.
        let p = profile(2, &[(30, "AB"), (10, "A"), (11, "C"), (10, "D")]);
        let s = count(&p, &order());
        assert_eq!(s.quota, Some(2034), "61 ÷ 3 = 20.333…, rounded up");
        assert_eq!(s.stages[1].votes[1], 1950, "19.66 ÷ 30 = 0.65 a paper");
        assert_eq!(s.stages[2].action, Action::Exclusion { excluded: vec![3, 4] }, "D with E, who has none");
        assert_eq!(s.stages[2].elected, [1]);
        assert_eq!(s.elected_names(), ["A", "B"]);
    }

    #[test]
    fn candidates_equal_at_every_point_for_too_few_places_are_not_elected_then() {
        // A's surplus is non-transferable; B and C then both have the active 30 ÷ 2 but
        // one place is left: neither is elected (5.6.2); the lot then excludes B (5.2.5)
        // and C fills the place (5.5.1).
        let mut p = profile(2, &[(30, "A"), (15, "B"), (15, "C")]);
        p.withdrawn = [3, 4].into_iter().collect();
        let s = count(&p, &order());
        assert_eq!(s.stages[1].action, Action::Surplus { from: 0, surplus: 1000 });
        assert!(s.stages[1].elected.is_empty());
        assert!(s.stages[1].ties[0].contains("5.6.2"), "{:?}", s.stages[1].ties);
        assert_eq!(s.stages[2].action, Action::ElectRemaining);
        assert_eq!(s.stages[2].states[1], State::Excluded);
        assert!(s.stages[2].ties[0].contains("tied at every stage"), "{:?}", s.stages[2].ties);
        assert_eq!(s.elected_names(), ["A", "C"]);
    }
}
