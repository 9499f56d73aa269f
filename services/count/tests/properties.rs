//! Properties over random profiles: what is written in BLT reads back the same, the rules
//! agree where they must (one seat: Scottish STV elects the IRV winner; a majority of first
//! preferences elects under every rule), and every STV count fills its seats from the
//! standing candidates, accounts for every vote and comes out the same every time.

use proptest::prelude::*;
use turnout_count::{Ballot, Lot, Method, Profile, State, blt};

const STV: [Method; 3] = [Method::Scottish, Method::Ers97, Method::Meek];

fn profiles() -> impl Strategy<Value = Profile> {
    (2usize..7).prop_flat_map(|n| {
        let weight = prop_oneof![4 => 1u64..5, 1 => Just(0u64), 1 => 1u64..1_000_000_000];
        let ballot = (weight, proptest::collection::vec(proptest::collection::vec(0..n, 1..3), 0..n + 2))
            .prop_map(|(weight, ranks)| Ballot { weight, ranks });
        (
            proptest::collection::vec(ballot, 1..40),
            proptest::collection::vec("[A-Za-z\"' ]{1,12}", n),
            proptest::collection::btree_set(0..n, 0..2),
            any::<u64>(),
        )
            .prop_map(move |(ballots, candidates, withdrawn, _)| Profile {
                title: "random".into(),
                candidates,
                seats: 1,
                withdrawn: if withdrawn.len() < n { withdrawn } else { Default::default() },
                tie_order: None,
                never_excluded: None,
                ballots,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn a_written_profile_reads_back_the_same(p in profiles()) {
        // A ballot of weight 0 counts for nothing and is not written.
        let mut counted = p.clone();
        counted.ballots.retain(|b| b.weight > 0);
        prop_assert_eq!(blt::read(&blt::write(&p)).unwrap(), counted);
    }

    #[test]
    fn for_one_seat_scottish_stv_elects_the_irv_winner(p in profiles(), seed in any::<[u8; 8]>()) {
        let lot = Lot::Seed(seed.to_vec());
        let irv = Method::Irv.count(&p, &lot).unwrap();
        let stv = Method::Scottish.count(&p, &lot).unwrap();
        if p.strict_rankings().is_empty() {
            prop_assert!(irv.elected.is_empty() && stv.elected.is_empty());
        } else {
            prop_assert_eq!(irv.elected.len(), 1);
            prop_assert_eq!(irv.elected, stv.elected);
        }
    }

    #[test]
    fn every_stv_rule_fills_the_seats_from_those_standing(p in profiles(), seats in 1usize..4, seed in any::<u64>()) {
        let mut p = p;
        p.seats = seats.min(p.standing().len());
        let lot = Lot::Seed(seed.to_be_bytes().to_vec());
        for method in STV {
            let sheet = method.count(&p, &lot).unwrap();
            let mut elected = sheet.elected.clone();
            elected.sort_unstable();
            elected.dedup();
            prop_assert_eq!(elected.len(), sheet.elected.len(), "{:?}: nobody is elected twice", method);
            prop_assert!(sheet.elected.iter().all(|c| !p.withdrawn.contains(c)), "{:?}", method);
            // Seats are left empty only when no paper has a preference.
            let want = if p.strict_rankings().is_empty() { 0 } else { p.seats };
            prop_assert_eq!(sheet.elected.len(), want, "{:?}", method);
            let last = sheet.stages.last().unwrap();
            for c in 0..p.candidates.len() {
                let state = last.states[c];
                if want > 0 {
                    prop_assert_ne!(state, State::Continuing, "{:?}: the count ends with everyone decided", method);
                }
                prop_assert_eq!(state == State::Elected, sheet.elected.contains(&c), "{:?}", method);
                prop_assert_eq!(state == State::Withdrawn, p.withdrawn.contains(&c), "{:?}", method);
            }
            let elected_at: Vec<usize> = sheet.stages.iter().flat_map(|s| s.elected.iter().copied()).collect();
            prop_assert_eq!(&elected_at, &sheet.elected, "{:?}: the stages elect in the sheet's order", method);
            for (i, stage) in sheet.stages.iter().enumerate().skip(1) {
                let before = &sheet.stages[i - 1].states;
                for &c in &stage.elected {
                    prop_assert_eq!(before[c], State::Continuing, "{:?}: elected from the continuing", method);
                }
            }
        }
    }

    #[test]
    fn every_stv_rule_accounts_for_every_vote_at_every_stage(p in profiles(), seats in 1usize..4) {
        let mut p = p;
        p.seats = seats.min(p.standing().len());
        for method in STV {
            let sheet = method.count(&p, &Lot::Seed(vec![2])).unwrap();
            let valid = sheet.valid_papers as i64 * 10i64.pow(sheet.decimals);
            for stage in &sheet.stages {
                let held: i64 = stage.votes.iter().sum();
                prop_assert_eq!(held + stage.non_transferable + stage.residual, valid, "{:?}", method);
                prop_assert!(stage.residual >= 0 && stage.non_transferable >= 0, "{:?}", method);
                prop_assert!(stage.votes.iter().all(|&v| v >= 0), "{:?}", method);
            }
        }
    }

    #[test]
    fn a_majority_of_first_preferences_wins_one_seat_under_every_rule(p in profiles(), seed in any::<[u8; 8]>()) {
        let rankings = p.strict_rankings();
        let total: u64 = rankings.iter().map(|(w, _)| w).sum();
        let mut firsts = vec![0u64; p.candidates.len()];
        for (w, r) in &rankings {
            firsts[r[0]] += w;
        }
        let lot = Lot::Seed(seed.to_vec());
        if let Some(winner) = (0..firsts.len()).find(|&c| 2 * firsts[c] > total) {
            for method in [Method::Irv, Method::Scottish, Method::Ers97, Method::Meek] {
                let sheet = method.count(&p, &lot).unwrap();
                prop_assert_eq!(&sheet.elected, &vec![winner], "{:?}", method);
                prop_assert_eq!(&sheet.stages[0].elected, &vec![winner], "{:?}: at the first stage", method);
            }
        }
    }

    #[test]
    fn a_count_comes_out_the_same_every_time(p in profiles(), seats in 1usize..4, seed in any::<u64>()) {
        let mut p = p;
        p.seats = seats.min(p.standing().len());
        let lot = Lot::Seed(seed.to_be_bytes().to_vec());
        for method in STV {
            prop_assert_eq!(method.count(&p, &lot).unwrap(), method.count(&p.clone(), &lot.clone()).unwrap());
        }
    }
}
