//! Scottish STV: the count of the Scottish Local Government Elections Order 2007
//! (SSI 2007/42, schedule 1, rules 45–52), in fixed point with 5 decimal places.
//!
//! - Quota (46): the valid papers ÷ (seats + 1), ignoring decimals, plus one. Elected on
//!   reaching it (47).
//! - Surpluses (48, 49), largest first, before any exclusion: every paper the candidate
//!   holds goes on at its value × surplus ÷ the candidate's votes, truncated to 5 places
//!   (the weighted inclusive Gregory method); what truncation loses is the residual.
//! - Exclusion (50, 51): the candidate with the fewest votes; their papers go on at the
//!   value they came with.
//! - Ties (49, 51): the most recent earlier stage at which the tied candidates were
//!   unequal, else by lot.
//! - End (52): when as many continuing candidates remain as seats, they are elected.
//!
//! A paper whose next preference is several candidates ranked equal goes no further.
//! Checked against the published Glasgow 2007 counts (tests/scottish_reference.rs).

use crate::papers::{Count, Papers, break_tie, initial_states};
use crate::sheet::{Action, Sheet, State};
use crate::{Lot, Profile};

pub const DECIMALS: u32 = 5;
const ONE: i64 = 100_000;

pub fn count(profile: &Profile, lot: &Lot) -> Sheet {
    let n = profile.candidates.len();
    let rankings = profile.strict_rankings();
    let valid: u64 = rankings.iter().map(|(w, _)| w).sum();
    let quota = (valid as i64 / (profile.seats as i64 + 1) + 1) * ONE;
    let (mut papers, mut votes) = Papers::first_count(rankings, n, ONE);
    let mut states = initial_states(profile);
    let mut count = Count::new(profile, Some(quota), valid, DECIMALS);
    let mut pending: Vec<usize> = Vec::new();
    let mut action = Action::FirstCount;
    let mut ties = Vec::new();
    if valid == 0 {
        // Nobody voted: nobody is elected, not even by rule 52.
        count.record(action, &votes, &states, Vec::new(), papers.non_transferable, &mut ties);
        return count.sheet("scottish");
    }
    loop {
        // Elect on the quota, most votes first (47).
        let mut reached: Vec<usize> = (0..n).filter(|&c| states[c] == State::Continuing && votes[c] >= quota).collect();
        reached.sort_by_key(|&c| std::cmp::Reverse(votes[c]));
        let mut newly = Vec::new();
        for c in reached {
            if count.elected.len() < profile.seats {
                states[c] = State::Elected;
                count.elected.push(c);
                // Only votes over the quota are a surplus to pass on (48).
                if votes[c] > quota {
                    pending.push(c);
                }
                newly.push(c);
            }
        }
        count.record(
            std::mem::replace(&mut action, Action::FirstCount),
            &votes,
            &states,
            newly,
            papers.non_transferable,
            &mut ties,
        );
        if count.complete(&states) {
            break;
        }
        if !pending.is_empty() {
            // The largest surplus first (49).
            let high = pending.iter().map(|&c| votes[c]).max().expect("pending");
            let tied: Vec<usize> = pending.iter().copied().filter(|&c| votes[c] == high).collect();
            let (c, note) = break_tie(&tied, true, &count.history, lot, &profile.candidates, "largest surplus");
            ties.extend(note);
            pending.retain(|&p| p != c);
            let (total, surplus) = (votes[c], votes[c] - quota);
            papers.pass_on(c, &states, &mut votes, |value| {
                (i128::from(value) * i128::from(surplus) / i128::from(total)) as i64
            });
            votes[c] = quota;
            action = Action::Surplus { from: c, surplus };
            continue;
        }
        // Exclude the fewest (50, 51).
        // The protected candidate (RON, by bye-law) is never excluded.
        let continuing: Vec<usize> = (0..n).filter(|&c| states[c] == State::Continuing).collect();
        let excludable = profile.excludable(&continuing);
        let Some(low) = excludable.iter().map(|&c| votes[c]).min() else { break };
        let tied: Vec<usize> = excludable.iter().copied().filter(|&c| votes[c] == low).collect();
        let (c, note) = break_tie(&tied, false, &count.history, lot, &profile.candidates, "fewest votes");
        ties.extend(note);
        states[c] = State::Excluded;
        papers.pass_on(c, &states, &mut votes, |value| value);
        votes[c] = 0;
        action = Action::Exclusion { excluded: vec![c] };
        if count.complete(&states) {
            count.record(
                std::mem::replace(&mut action, Action::FirstCount),
                &votes,
                &states,
                Vec::new(),
                papers.non_transferable,
                &mut ties,
            );
            break;
        }
    }
    // The rest (52): every continuing candidate when they fill the seats left, else none.
    let continuing: Vec<usize> = (0..n).filter(|&c| states[c] == State::Continuing).collect();
    if !continuing.is_empty() {
        let mut newly = Vec::new();
        if continuing.len() <= profile.seats - count.elected.len() {
            let mut by_votes = continuing.clone();
            by_votes.sort_by_key(|&c| std::cmp::Reverse(votes[c]));
            for c in by_votes {
                states[c] = State::Elected;
                count.elected.push(c);
                newly.push(c);
            }
        }
        for c in continuing {
            if states[c] == State::Continuing {
                states[c] = State::Excluded;
            }
        }
        count.record(Action::ElectRemaining, &votes, &states, newly, papers.non_transferable, &mut ties);
    }
    count.sheet("scottish")
}
