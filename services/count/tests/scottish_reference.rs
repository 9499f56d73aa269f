//! Scottish STV against published reference counts (tests/reference/scottish): every
//! profile's quota, elected candidates with their final votes, non-transferable votes and
//! residual, to the last of the 5 decimal places.

use std::collections::BTreeMap;
use std::path::Path;

use turnout_count::{Lot, Method, blt};

#[test]
fn every_reference_count_is_reproduced_to_the_last_decimal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/scottish");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "blt"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus is missing: {}", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let profile = blt::read(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let order = Lot::Order((0..profile.candidates.len()).collect());
        let lot = match &profile.tie_order {
            Some(order) => Lot::Order(order.clone()),
            None => order,
        };
        let sheet = Method::Scottish.count(&profile, &lot).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let mut want_elected = BTreeMap::new();
        let mut want = BTreeMap::new();
        for line in expected.lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            match parts.as_slice() {
                ["elected", who, votes] => {
                    want_elected.insert(who.to_string(), votes.to_string());
                }
                [key, value] => {
                    want.insert(key.to_string(), value.to_string());
                }
                _ => panic!("{name}: bad expected line {line:?}"),
            }
        }
        let last = sheet.stages.last().unwrap();
        // Droop's reports write a name's runs of spaces as one.
        let spaced = |s: &str| s.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        let want_elected: BTreeMap<String, String> = want_elected.into_iter().map(|(k, v)| (spaced(&k), v)).collect();
        let got_elected: BTreeMap<String, String> =
            sheet.elected.iter().map(|&c| (spaced(&sheet.candidates[c]), sheet.show(last.votes[c]))).collect();
        let got: BTreeMap<String, String> = [
            ("quota".to_string(), sheet.show(sheet.quota.unwrap())),
            ("non_transferable".to_string(), sheet.show(last.non_transferable)),
            ("residual".to_string(), sheet.show(last.residual)),
        ]
        .into_iter()
        .collect();
        if got_elected != want_elected || got != want {
            failures.push(format!("{name}: got {got_elected:?} {got:?}, want {want_elected:?} {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
