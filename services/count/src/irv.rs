//! Instant-runoff voting (IRV), for one seat: count first preferences; while nobody has
//! more than half of the votes still counting, exclude the candidate with the fewest and
//! pass their papers on at full value. Whole votes, no rounding.
//!
//! - In the first exclusion every candidate with no votes goes at once (they cannot
//!   affect the outcome), as OpenSTV does.
//! - A tie for fewest is broken by the most recent earlier round at which the tied
//!   candidates were unequal, else by lot.
//! - The count stops at a majority of the continuing votes (OpenSTV goes on to the last
//!   two; the winner is the same, the sheet shorter).

use crate::papers::{Count, Papers, break_tie, initial_states};
use crate::sheet::{Action, Sheet, State};
use crate::{Lot, Profile};

pub fn count(profile: &Profile, lot: &Lot) -> Sheet {
    let n = profile.candidates.len();
    let rankings = profile.strict_rankings();
    let valid: u64 = rankings.iter().map(|(w, _)| w).sum();
    let (mut papers, mut votes) = Papers::first_count(rankings, n, 1);
    let mut states = initial_states(profile);
    let mut count = Count::new(profile, None, valid, 0);
    let mut action = Action::FirstCount;
    let mut ties = Vec::new();
    if valid == 0 {
        // Nobody voted: nobody is elected, not even by lot.
        count.record(action, &votes, &states, Vec::new(), papers.non_transferable, &mut ties);
        return count.sheet("irv");
    }
    loop {
        let continuing: Vec<usize> = (0..n).filter(|&c| states[c] == State::Continuing).collect();
        let counting: i64 = continuing.iter().map(|&c| votes[c]).sum();
        let winner = continuing.iter().copied().find(|&c| 2 * votes[c] > counting);
        let winner = winner.or(if continuing.len() == 1 { Some(continuing[0]) } else { None });
        let newly: Vec<usize> = winner.into_iter().collect();
        for &c in &newly {
            states[c] = State::Elected;
            count.elected.push(c);
        }
        count.record(
            std::mem::replace(&mut action, Action::FirstCount),
            &votes,
            &states,
            newly,
            papers.non_transferable,
            &mut ties,
        );
        if winner.is_some() || continuing.is_empty() {
            break;
        }
        // The protected candidate (RON, by bye-law) is never among those excluded.
        let excludable = profile.excludable(&continuing);
        let Some(low) = excludable.iter().map(|&c| votes[c]).min() else { break };
        let zero: Vec<usize> = excludable.iter().copied().filter(|&c| votes[c] == 0).collect();
        let excluded = if count.stages.len() == 1 && !zero.is_empty() && zero.len() < continuing.len() {
            zero
        } else {
            let tied: Vec<usize> = excludable.iter().copied().filter(|&c| votes[c] == low).collect();
            let (c, note) = break_tie(&tied, false, &count.history, lot, &profile.candidates, "fewest votes");
            ties.extend(note);
            vec![c]
        };
        for &c in &excluded {
            states[c] = State::Excluded;
        }
        for &c in &excluded {
            papers.pass_on(c, &states, &mut votes, |value| value);
            votes[c] = 0;
        }
        action = Action::Exclusion { excluded };
    }
    count.sheet("irv")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ballot;

    fn profile(names: &[&str], ballots: &[(u64, &[usize])]) -> Profile {
        Profile {
            title: "t".into(),
            candidates: names.iter().map(|s| s.to_string()).collect(),
            seats: 1,
            withdrawn: Default::default(),
            tie_order: None,
            never_excluded: None,
            ballots: ballots
                .iter()
                .map(|(w, r)| Ballot { weight: *w, ranks: r.iter().map(|&c| vec![c]).collect() })
                .collect(),
        }
    }

    fn order(n: usize) -> Lot {
        Lot::Order((0..n).collect())
    }

    /// The capital of Tennessee: Memphis leads on first preferences but Knoxville wins.
    #[test]
    fn the_textbook_example_elects_the_candidate_the_majority_prefers() {
        let p = profile(
            &["Memphis", "Nashville", "Chattanooga", "Knoxville"],
            &[(42, &[0, 1, 2, 3]), (26, &[1, 2, 3, 0]), (15, &[2, 3, 1, 0]), (17, &[3, 2, 1, 0])],
        );
        let s = count(&p, &order(4));
        assert_eq!(s.elected_names(), ["Knoxville"]);
        let votes: Vec<&[i64]> = s.stages.iter().map(|st| st.votes.as_slice()).collect();
        assert_eq!(votes, [&[42, 26, 15, 17][..], &[42, 26, 0, 32], &[42, 0, 0, 58]]);
        assert_eq!(s.stages[1].action, Action::Exclusion { excluded: vec![2] });
    }

    #[test]
    fn a_majority_of_the_votes_still_counting_wins_once_others_are_exhausted() {
        // B's voters rank nobody else: after B goes, A has 4 of the 7 votes left.
        let p = profile(&["A", "B", "C"], &[(4, &[0]), (2, &[1]), (3, &[2])]);
        let s = count(&p, &order(3));
        assert_eq!(s.elected_names(), ["A"]);
        assert_eq!(s.stages.last().unwrap().non_transferable, 2);
    }

    #[test]
    fn a_tie_for_fewest_is_broken_by_the_last_round_that_differed_then_by_lot() {
        // Round 1: A 5, B 3, C 2, D 2 with D... C and D tie at 2 and never differed: lot.
        let p = profile(&["A", "B", "C", "D"], &[(5, &[0]), (3, &[1]), (2, &[2, 1]), (2, &[3, 1])]);
        let lot = Lot::Order(vec![3, 2, 1, 0]);
        let s = count(&p, &lot);
        assert_eq!(s.stages[1].action, Action::Exclusion { excluded: vec![3] }, "the lot draws D first");
        assert!(s.stages[1].ties[0].contains("tied at every stage"), "{:?}", s.stages[1].ties);
        assert_eq!(s.elected_names(), ["B"]);

        // B and C tie at 4 in round 2, but B had more in round 1: C goes.
        let p = profile(&["A", "B", "C", "D"], &[(6, &[0]), (4, &[1]), (3, &[2]), (1, &[3, 2])]);
        let s = count(&p, &order(4));
        assert_eq!(s.stages[2].action, Action::Exclusion { excluded: vec![2] });
        assert!(s.stages[2].ties[0].contains("votes at stage 1"), "{:?}", s.stages[2].ties);
    }

    #[test]
    fn candidates_nobody_chose_go_together_and_the_withdrawn_never_count() {
        let mut p = profile(&["A", "B", "C", "D", "E"], &[(3, &[0, 1]), (2, &[1, 0]), (2, &[4, 1])]);
        p.withdrawn.insert(4);
        let s = count(&p, &order(5));
        assert_eq!(s.stages[0].votes, [3, 4, 0, 0, 0], "E's papers count for B");
        assert_eq!(s.elected_names(), ["B"], "4 of 7 is a majority at once");
        let p = profile(&["A", "B", "C", "D", "E"], &[(3, &[0]), (3, &[1]), (1, &[2, 0])]);
        let s = count(&p, &order(5));
        assert_eq!(s.stages[1].action, Action::Exclusion { excluded: vec![3, 4] });
        assert_eq!(s.stages[2].action, Action::Exclusion { excluded: vec![2] });
        assert_eq!(s.elected_names(), ["A"]);
    }
}
