//! Plurality and approval contests: each ballot names a set of candidates (at most `seats`
//! for plurality, any number up to the contest's limit for approval), every named
//! candidate gets the ballot's weight, and the `seats` with the most votes are elected. A
//! tie for the last seat is broken by lot, written on the sheet. Whole votes.

use crate::Profile;
use crate::lot::Lot;
use crate::papers::{Count, initial_states};
use crate::sheet::{Action, Sheet, State};

/// Counts `profile` as a choose-up-to contest: each ballot's ranks are read as the set of
/// candidates it names (an order or an equal rank makes no difference).
pub fn count(profile: &Profile, lot: &Lot, method: &'static str) -> Sheet {
    let n = profile.candidates.len();
    let mut votes = vec![0i64; n];
    let mut valid = 0u64;
    for b in &profile.ballots {
        let mut named: Vec<usize> =
            b.ranks.iter().flatten().copied().filter(|c| !profile.withdrawn.contains(c)).collect();
        named.sort_unstable();
        named.dedup();
        if named.is_empty() || b.weight == 0 {
            continue;
        }
        valid += b.weight;
        for c in named {
            votes[c] += b.weight as i64;
        }
    }
    let mut states = initial_states(profile);
    let mut count = Count::new(profile, None, valid, 0);
    let mut ties = Vec::new();
    let mut standing: Vec<usize> = (0..n).filter(|&c| states[c] == State::Continuing && votes[c] > 0).collect();
    standing.sort_by_key(|&c| std::cmp::Reverse(votes[c]));
    let mut elected = Vec::new();
    while elected.len() < profile.seats && !standing.is_empty() {
        let top = votes[standing[0]];
        let tied: Vec<usize> = standing.iter().copied().filter(|&c| votes[c] == top).collect();
        let seats_left = profile.seats - elected.len();
        let group: Vec<usize> = if tied.len() <= seats_left {
            tied.clone()
        } else {
            // More tied than seats: the lot fills them one by one.
            let mut pool = tied.clone();
            let mut drawn = Vec::new();
            while drawn.len() < seats_left {
                let c = lot.draw(&pool);
                pool.retain(|&p| p != c);
                drawn.push(c);
            }
            let names =
                |cs: &[usize]| cs.iter().map(|&c| profile.candidates[c].as_str()).collect::<Vec<_>>().join(", ");
            ties.push(format!("last seats: {} tied on {top}; {} by {}", names(&tied), names(&drawn), lot.describe()));
            drawn
        };
        for &c in &group {
            states[c] = State::Elected;
            elected.push(c);
        }
        standing.retain(|c| !tied.contains(c));
    }
    for s in states.iter_mut().filter(|s| **s == State::Continuing) {
        *s = State::Excluded;
    }
    count.elected = elected.clone();
    count.record(Action::FirstCount, &votes, &states, elected, 0, &mut ties);
    count.sheet(method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ballot;

    fn profile(seats: usize, ballots: &[(u64, &[usize])]) -> Profile {
        Profile {
            title: "t".into(),
            candidates: ["A", "B", "C", "D"].map(String::from).to_vec(),
            seats,
            withdrawn: [3].into_iter().collect(),
            tie_order: None,
            never_excluded: None,
            ballots: ballots
                .iter()
                .map(|(w, r)| Ballot { weight: *w, ranks: r.iter().map(|&c| vec![c]).collect() })
                .collect(),
        }
    }

    #[test]
    fn the_most_voted_fill_the_seats_and_a_tie_for_the_last_is_drawn() {
        let p = profile(2, &[(5, &[0, 1]), (3, &[1, 2]), (3, &[2, 3]), (1, &[]), (2, &[0, 0])]);
        let s = count(&p, &Lot::Order(vec![2, 1, 0, 3]), "approval");
        assert_eq!(s.stages[0].votes, [7, 8, 6, 0], "a repeated name counts once; D withdrew");
        assert_eq!(s.elected_names(), ["B", "A"]);
        assert_eq!(s.valid_papers, 13, "the blank ballot is not a valid paper");
        assert!(s.stages[0].ties.is_empty());

        let p = profile(2, &[(4, &[0]), (3, &[1]), (3, &[2])]);
        let s = count(&p, &Lot::Order(vec![2, 1, 0, 3]), "plurality");
        assert_eq!(s.elected_names(), ["A", "C"], "B and C tie for the last seat: the lot draws C");
        assert!(s.stages[0].ties[0].contains("B, C tied on 3"), "{:?}", s.stages[0].ties);
        assert_eq!(s.stages[0].states[1], State::Excluded);
    }

    #[test]
    fn seats_nobody_voted_for_stay_empty() {
        let p = profile(3, &[(2, &[0])]);
        let s = count(&p, &Lot::Seed(vec![]), "plurality");
        assert_eq!(s.elected_names(), ["A"]);
    }
}
