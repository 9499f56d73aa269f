//! A ballot profile: the candidates, the seats, and every ballot's ranking, as a count
//! reads it (from the ballot box's export or a BLT file). Candidates are numbered from 0.

use std::collections::BTreeSet;

/// All ballots' weights together, at most: far past any electorate, and small enough that
/// every count's fixed-point arithmetic stays exact.
pub const MAX_TOTAL_WEIGHT: u64 = 1_000_000_000_000;

/// One ranking, `weight` times over. Each rank holds one candidate, or several the voter
/// ranked equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot {
    pub weight: u64,
    pub ranks: Vec<Vec<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub title: String,
    pub candidates: Vec<String>,
    pub seats: usize,
    /// Candidates who withdrew: they are left out of every ranking.
    pub withdrawn: BTreeSet<usize>,
    /// An order to break ties "by lot" in, when the file gives one (`[tie …]`).
    pub tie_order: Option<Vec<usize>>,
    /// A candidate no rule excludes (the bye-law "RON is never excluded"): it stays in the
    /// count until elected or the seats are filled.
    pub never_excluded: Option<usize>,
    pub ballots: Vec<Ballot>,
}

impl Profile {
    /// The rankings as the rules count them: withdrawn candidates left out, a candidate
    /// ranked again later kept only where first ranked, and the ranking cut where the
    /// voter ranked several candidates equal (the legal rules count such a paper as not
    /// transferable from there on). Empty rankings are dropped.
    pub fn strict_rankings(&self) -> Vec<(u64, Vec<usize>)> {
        let mut out = Vec::with_capacity(self.ballots.len());
        for b in &self.ballots {
            let mut seen = BTreeSet::new();
            let mut ranking = Vec::new();
            for rank in &b.ranks {
                let mut live: Vec<usize> =
                    rank.iter().copied().filter(|c| !self.withdrawn.contains(c) && !seen.contains(c)).collect();
                // `2=2` is just 2.
                live.sort_unstable();
                live.dedup();
                match live.as_slice() {
                    [] => continue,
                    [one] => {
                        seen.insert(*one);
                        ranking.push(*one);
                    }
                    _ => break,
                }
            }
            if b.weight > 0 && !ranking.is_empty() {
                out.push((b.weight, ranking));
            }
        }
        out
    }

    /// What a count needs of a profile it did not read itself: at least one candidate and
    /// seat, every ranked candidate one of them, and weights whose total keeps every
    /// rule's fixed-point arithmetic exact.
    pub fn check(&self) -> Result<(), String> {
        let n = self.candidates.len();
        if n == 0 || self.seats == 0 {
            return Err("a count needs a candidate and a seat".into());
        }
        if self.ballots.iter().flat_map(|b| b.ranks.iter().flatten()).any(|&c| c >= n)
            || self.withdrawn.iter().any(|&c| c >= n)
        {
            return Err(format!("a ballot ranks a candidate who does not stand (there are {n})"));
        }
        let total = self.ballots.iter().try_fold(0u64, |t, b| t.checked_add(b.weight));
        if total.is_none_or(|t| t > MAX_TOTAL_WEIGHT) {
            return Err(format!("the weights add up to more than {}", MAX_TOTAL_WEIGHT));
        }
        Ok(())
    }

    /// Of `continuing`, those a rule may exclude (all but `never_excluded`).
    pub fn excludable(&self, continuing: &[usize]) -> Vec<usize> {
        continuing.iter().copied().filter(|&c| Some(c) != self.never_excluded).collect()
    }

    /// Candidates still standing (not withdrawn), by number.
    pub fn standing(&self) -> Vec<usize> {
        (0..self.candidates.len()).filter(|c| !self.withdrawn.contains(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(ballots: Vec<Ballot>) -> Profile {
        Profile {
            title: "t".into(),
            candidates: vec!["A".into(), "B".into(), "C".into(), "D".into()],
            seats: 1,
            withdrawn: [3].into_iter().collect(),
            tie_order: None,
            never_excluded: None,
            ballots,
        }
    }

    #[test]
    fn rankings_skip_the_withdrawn_and_repeats_and_stop_at_an_equal_rank() {
        let p = profile(vec![
            Ballot { weight: 2, ranks: vec![vec![3], vec![1], vec![1], vec![0]] },
            Ballot { weight: 1, ranks: vec![vec![2], vec![0, 1], vec![3]] },
            Ballot { weight: 1, ranks: vec![vec![1, 1], vec![2]] },
            Ballot { weight: 1, ranks: vec![vec![3]] },
            Ballot { weight: 0, ranks: vec![vec![0]] },
        ]);
        assert_eq!(p.strict_rankings(), vec![(2, vec![1, 0]), (1, vec![2]), (1, vec![1, 2])]);
        assert_eq!(p.standing(), vec![0, 1, 2]);
    }

    #[test]
    fn a_profile_a_count_could_not_count_exactly_is_refused() {
        let mut p =
            profile(vec![Ballot { weight: u64::MAX, ranks: vec![vec![0]] }, Ballot { weight: 1, ranks: vec![] }]);
        assert!(p.check().unwrap_err().contains("add up to more"));
        p.ballots = vec![Ballot { weight: 1, ranks: vec![vec![7]] }];
        assert!(p.check().unwrap_err().contains("does not stand"));
        p.ballots = vec![Ballot { weight: 1_000_000_000_000, ranks: vec![vec![0]] }];
        assert!(p.check().is_ok());
        assert!(crate::Method::Scottish.count(&p, &crate::Lot::Seed(vec![])).is_ok());
    }
}
