//! The bye-law choice "RON is never excluded": under every ranked rule, the protected
//! candidate is passed over at every exclusion, however few votes it has, and the count
//! still fills its seats.

use turnout_count::{Action, Ballot, Lot, Method, Profile};

/// A 50, B 25 (then RON), C 20 (then B), D 15, RON 10: RON has the fewest from the start.
fn profile(seats: usize, protect: bool) -> Profile {
    let b = |weight, ranks: &[usize]| Ballot { weight, ranks: ranks.iter().map(|&c| vec![c]).collect() };
    Profile {
        title: "RON".into(),
        candidates: vec!["A".into(), "B".into(), "C".into(), "RON".into(), "D".into()],
        seats,
        withdrawn: Default::default(),
        tie_order: None,
        never_excluded: protect.then_some(3),
        ballots: vec![b(50, &[0]), b(25, &[1, 3]), b(20, &[2, 1]), b(15, &[4]), b(10, &[3])],
    }
}

fn excluded(sheet: &turnout_count::Sheet) -> Vec<usize> {
    sheet
        .stages
        .iter()
        .flat_map(|s| match &s.action {
            Action::Exclusion { excluded } => excluded.clone(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn ron_protected_is_never_excluded_under_any_rule() {
    for (method, seats) in [(Method::Irv, 1), (Method::Scottish, 2), (Method::Ers97, 2), (Method::Meek, 2)] {
        let lot = Lot::Seed(vec![1]);
        let open = method.count(&profile(seats, false), &lot).unwrap();
        assert!(excluded(&open).contains(&3), "{method:?}: unprotected, RON goes first: {:?}", open.stages);
        let sheet = method.count(&profile(seats, true), &lot).unwrap();
        assert!(!excluded(&sheet).contains(&3), "{method:?}: RON was excluded: {:?}", sheet.stages);
        assert_eq!(sheet.elected.len(), seats, "{method:?}: the seats are still filled");
    }
}
