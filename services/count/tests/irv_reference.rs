//! IRV against OpenSTV 1.7's winners on the reference profiles counted for one seat
//! (tests/reference/irv).

use std::path::Path;

use turnout_count::{Lot, Method, blt};

#[test]
fn every_one_seat_count_elects_what_openstv_elects() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference");
    let winners = std::fs::read_to_string(root.join("irv/openstv-winners.tsv")).unwrap();
    let mut checked = 0;
    for line in winners.lines() {
        let (name, winner) = line.split_once('\t').unwrap();
        let text =
            String::from_utf8_lossy(&std::fs::read(root.join(format!("scottish/{name}.blt"))).unwrap()).into_owned();
        let mut profile = blt::read(&text).unwrap();
        profile.seats = 1;
        let sheet = Method::Irv.count(&profile, &Lot::Order((0..profile.candidates.len()).collect())).unwrap();
        // OpenSTV numbers the candidates left once the withdrawn are taken out.
        let winner = profile.standing()[winner.parse::<usize>().unwrap()];
        assert_eq!(sheet.elected, vec![winner], "{name}");
        checked += 1;
    }
    assert!(checked >= 29, "{checked} cases");
}
