//! Properties over random profiles: what is written in BLT reads back the same, and the
//! two rules agree where they must (one seat: Scottish STV elects the IRV winner).

use proptest::prelude::*;
use turnout_count::{Ballot, Lot, Method, Profile, blt};

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
    fn every_vote_is_accounted_for_at_every_stage(p in profiles(), seats in 1usize..4) {
        let mut p = p;
        p.seats = seats.min(p.standing().len());
        let sheet = Method::Scottish.count(&p, &Lot::Seed(vec![1])).unwrap();
        let valid = sheet.valid_papers as i64 * 100_000;
        for stage in &sheet.stages {
            let held: i64 = stage.votes.iter().sum();
            prop_assert_eq!(held + stage.non_transferable + stage.residual, valid);
            prop_assert!(stage.residual >= 0 && stage.non_transferable >= 0);
        }
        prop_assert!(sheet.elected.len() <= p.seats);
    }
}
