//! Reading the reference outcomes the ERS97 and Meek tests compare against. Each
//! `NAME.expected` is tab-separated lines:
//!
//! ```text
//! profile    ../scottish/Linn-2007.blt     the profile, relative to the file
//! seats      4                             (optional) counted for this many seats
//! quota      1913.40                       (optional) the quota at the end
//! elected    David Ritchie                 one line each, in order of election
//! votes      Margot Clark    1879.20       every standing candidate's votes at the end
//! exhausted  1208.60                       votes no longer counting, however lost
//! ```
//!
//! Ties the reference broke by lot were broken in candidate order (or the file's
//! `[tie …]` order), so the count is run with that lot.

use std::path::{Path, PathBuf};

use turnout_count::{Lot, Method, Sheet, blt};

/// What one `.expected` file says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub quota: Option<String>,
    pub elected: Vec<String>,
    pub votes: Vec<(String, String)>,
    pub exhausted: String,
}

/// Counts every case in `tests/reference/<dir>` with `method` and panics listing those
/// that differ; returns how many were checked.
pub fn check_all(dir: &str, method: Method) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference").join(dir);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "expected"))
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let (profile_path, seats, want) = parse(&text, &name);
        let bytes = std::fs::read(dir.join(&profile_path)).unwrap_or_else(|e| panic!("{name}: {profile_path}: {e}"));
        let mut profile = blt::read(&String::from_utf8_lossy(&bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(seats) = seats {
            profile.seats = seats;
        }
        let lot = match &profile.tie_order {
            Some(order) => Lot::Order(order.clone()),
            None => Lot::Order((0..profile.candidates.len()).collect()),
        };
        let sheet = method.count(&profile, &lot).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut want = want;
        want.votes.sort();
        let got = outcome(&sheet, &profile.standing(), want.quota.is_some());
        if got != want {
            failures.push(format!("{name}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    cases.len()
}

fn parse(text: &str, name: &str) -> (String, Option<usize>, Outcome) {
    let (mut profile, mut seats, mut want) = (None, None, Outcome::default());
    for line in text.lines() {
        match line.split('\t').collect::<Vec<_>>().as_slice() {
            ["profile", p] => profile = Some(p.to_string()),
            ["seats", n] => seats = Some(n.parse().unwrap()),
            ["method", _] => {}
            ["quota", q] => want.quota = Some(q.to_string()),
            ["elected", who] => want.elected.push(spaced(who)),
            ["votes", who, v] => want.votes.push((spaced(who), v.to_string())),
            ["exhausted", v] => want.exhausted = v.to_string(),
            _ => panic!("{name}: bad expected line {line:?}"),
        }
    }
    (profile.unwrap_or_else(|| panic!("{name}: no profile line")), seats, want)
}

fn outcome(sheet: &Sheet, standing: &[usize], with_quota: bool) -> Outcome {
    let last = sheet.stages.last().unwrap();
    let mut votes: Vec<(String, String)> =
        standing.iter().map(|&c| (spaced(&sheet.candidates[c]), sheet.show(last.votes[c]))).collect();
    votes.sort();
    Outcome {
        quota: with_quota.then(|| sheet.show(sheet.quota.unwrap())),
        elected: sheet.elected.iter().map(|&c| spaced(&sheet.candidates[c])).collect(),
        votes,
        exhausted: sheet.show(last.non_transferable + last.residual),
    }
}

/// Droop's reports write a name's runs of spaces as one.
fn spaced(s: &str) -> String {
    s.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}
