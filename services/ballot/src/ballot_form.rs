//! The ballot as a page and as a form, free of HTTP: which contests a voter sees, in what
//! order the options stand, how the form's fields read back as votes, and what each
//! mistake is called next to its contest.
//!
//! Form fields (all work without JavaScript):
//! - `c.{contest}` = an option id, or `abstain`: a radio (choose one) or checkboxes
//!   (choose several); repeated in order of preference on the review page's hidden form;
//! - `r.{contest}.{option}` = a rank number (ranked contests);
//! - `{contest}` = an option id: the single-choice form of earlier versions.

use std::collections::BTreeMap;

use turnout_core::domain::{CandidateId, ContestId, Username};
use turnout_core::session::Session;
use turnout_core::store::{ABSTAIN, Candidate, Choices, Contest, ContestKind, Election, Vote};

/// The highest rank number read (a contest has at most 200 options).
const MAX_RANK: u32 = 200;

/// Most fields a ballot form may carry (200 options × 50 contests is far past any ballot).
pub const MAX_FIELDS: usize = 2_000;

/// The contests this voter may vote in: those open to everyone, and the constituencies
/// their sign-in found them in. Someone not signed in sees every contest.
pub fn visible_contests<'e>(election: &'e Election, session: Option<&Session>) -> Vec<&'e Contest> {
    let theirs = session.map(|s| s.constituencies_in(&election.id));
    election
        .contests
        .iter()
        .filter(|c| c.rules.voters.is_everyone() || theirs.as_ref().is_none_or(|t| t.contains(&c.id)))
        .collect()
}

/// The key of the per-voter candidate order, derived from the server secret: without it
/// nobody can work out the order a voter saw (which, with a published export, could
/// point at who cast a ballot that ranks in the order shown).
#[derive(Clone)]
pub struct CandidateOrder([u8; 32]);

impl CandidateOrder {
    pub fn from_settings(settings: &turnout_core::Settings) -> Self {
        Self(settings.derive_key("candidate-order-v1", &[]))
    }
}

/// The contest's options in the order this voter sees them: as the admin listed them, or,
/// when the election shuffles, in an order of the voter's own: keyed by the server secret,
/// and the same on every visit, so a reload does not reshuffle a half-filled ballot.
pub fn ordered_options(
    election: &Election,
    contest: &Contest,
    voter: Option<&Username>,
    order: &CandidateOrder,
) -> Vec<Candidate> {
    let mut options = contest.options();
    if let (true, Some(voter)) = (election.shuffle_candidates, voter) {
        options.sort_by_cached_key(|o| {
            let parts = [voter.as_str(), election.id.as_str(), contest.id.as_str(), o.id.as_str()].map(str::as_bytes);
            turnout_core::keys::derive_with(&order.0, "candidate-order", &parts)
        });
    }
    options
}

/// What the form said: a vote per contest it could read, and a mistake per contest it
/// could not.
#[derive(Debug, Default)]
pub struct ReadBallot {
    pub choices: Choices,
    pub errors: BTreeMap<ContestId, String>,
    /// A mistake names a contest or an option the election does not have (for the API's
    /// error code: `unknown_candidate` rather than `invalid_field`).
    pub unknown: bool,
    /// What was typed or ticked in each contest, as sent (option id, value), so a page
    /// showing a mistake shows the voter's own marks back, not an emptied contest.
    pub typed: BTreeMap<ContestId, Vec<(String, String)>>,
}

impl ReadBallot {
    /// The rank typed for `option` in `contest`, if any.
    pub fn typed_rank(&self, contest: &ContestId, option: &str) -> Option<&str> {
        self.typed.get(contest)?.iter().find(|(o, v)| o == option && !v.is_empty() && v != "!").map(|(_, v)| v.as_str())
    }

    /// Whether `option` was ticked in `contest`.
    pub fn ticked(&self, contest: &ContestId, option: &str) -> bool {
        self.typed.get(contest).is_some_and(|t| t.iter().any(|(o, v)| o == option && v == "!"))
    }
}

impl ReadBallot {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Reads a ballot form's fields (in the order they came). Unknown contests and fields
/// are the caller's to refuse (`Election::check_choices` and the store do); this reads
/// shapes: rank numbers, repeats, an abstention beside a choice.
pub fn read_form(pairs: &[(String, String)]) -> Result<ReadBallot, String> {
    if pairs.len() > MAX_FIELDS {
        return Err(format!("a ballot has at most {MAX_FIELDS} fields"));
    }
    let mut marks: BTreeMap<ContestId, Vec<String>> = BTreeMap::new();
    let mut ranks: BTreeMap<ContestId, Vec<(String, String)>> = BTreeMap::new();
    for (key, value) in pairs {
        let value = value.trim();
        if let Some(rest) = key.strip_prefix("r.") {
            let (contest, option) = rest.split_once('.').ok_or_else(|| format!("{key:?} is not a ballot field"))?;
            let contest = ContestId::parse(contest).map_err(|e| e.to_string())?;
            ranks.entry(contest).or_default().push((option.to_owned(), value.to_owned()));
        } else {
            let contest = key.strip_prefix("c.").unwrap_or(key);
            let contest = ContestId::parse(contest).map_err(|e| e.to_string())?;
            if !value.is_empty() {
                marks.entry(contest).or_default().push(value.to_owned());
            }
        }
    }
    let mut read = ReadBallot::default();
    for (contest, given) in &ranks {
        read.typed.entry(contest.clone()).or_default().extend(given.iter().cloned());
    }
    for (contest, values) in &marks {
        // A ticked box is kept as (option, "!"): no rank is ever "!".
        read.typed.entry(contest.clone()).or_default().extend(values.iter().map(|v| (v.clone(), "!".to_owned())));
    }
    for (contest, values) in marks {
        let abstains = values.iter().any(|v| v == ABSTAIN);
        let has_ranks = ranks.get(&contest).is_some_and(|r| r.iter().any(|(_, v)| !v.is_empty()));
        if abstains && (values.len() > 1 || has_ranks) {
            ranks.remove(&contest);
            read.errors.insert(contest, "You chose to abstain and also chose candidates: do one or the other.".into());
            continue;
        }
        if abstains {
            ranks.remove(&contest);
            read.choices.insert(contest, Vote::Abstain);
            continue;
        }
        match values.iter().map(|v| CandidateId::parse(v)).collect::<Result<Vec<_>, _>>() {
            Ok(ids) => {
                read.choices.insert(contest, Vote::Marks(ids));
            }
            Err(_) => {
                read.unknown = true;
                read.errors.insert(contest, "A choice on this contest is not one of its options.".into());
            }
        }
    }
    for (contest, given) in ranks {
        match ranking(&given) {
            Ok(None) => {}
            Ok(Some(ids)) => {
                read.choices.insert(contest, Vote::Marks(ids));
            }
            Err(why) => {
                read.errors.insert(contest, why);
            }
        }
    }
    Ok(read)
}

/// Rank numbers as an order of preference: each a whole number, none used twice, no gap.
/// `None` when no rank was given (the contest is left blank).
fn ranking(given: &[(String, String)]) -> Result<Option<Vec<CandidateId>>, String> {
    let mut numbered: Vec<(u32, CandidateId)> = Vec::new();
    for (option, raw) in given.iter().filter(|(_, v)| !v.is_empty()) {
        let id = CandidateId::parse(option).map_err(|_| "A ranked option is not one of this contest's.".to_owned())?;
        // Any whole number from 1 (a contest has at most 200 options, each ranked once);
        // one past the ranks given is a gap, said as such below.
        let rank = raw
            .parse::<u32>()
            .ok()
            .filter(|&r| (1..=MAX_RANK).contains(&r))
            .ok_or_else(|| format!("{raw:?} is not a rank: number your choices 1, 2, 3 and so on."))?;
        if numbered.iter().any(|(r, _)| *r == rank) {
            return Err(format!("You gave rank {rank} to more than one candidate: each number once."));
        }
        numbered.push((rank, id));
    }
    if numbered.is_empty() {
        return Ok(None);
    }
    numbered.sort_by_key(|(r, _)| *r);
    for (i, (rank, _)) in numbered.iter().enumerate() {
        let expected = i as u32 + 1;
        if *rank != expected {
            return Err(format!("Your ranks skip {expected}: number your choices 1, 2, 3 and so on without a gap."));
        }
    }
    Ok(Some(numbered.into_iter().map(|(_, id)| id).collect()))
}

/// "1st", "2nd", "3rd", "4th", … "11th", "12th", "13th", "21st".
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A vote in plain words for the review step: "1st: Pat O'Brien, 2nd: RON", "Ada, Bo",
/// "You abstain", "Left blank".
pub fn in_words(contest: &Contest, vote: Option<&Vote>) -> String {
    let options = contest.options();
    let name =
        |id: &CandidateId| options.iter().find(|o| &o.id == id).map_or_else(|| id.to_string(), |o| o.name.clone());
    match vote {
        None => "Left blank (no vote in this contest).".into(),
        Some(Vote::Abstain) => "You abstain.".into(),
        Some(Vote::Marks(m)) if contest.rules.kind == ContestKind::Ranked => m
            .iter()
            .enumerate()
            .map(|(i, id)| format!("{}: {}", ordinal(i + 1), name(id)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Vote::Marks(m)) => m.iter().map(name).collect::<Vec<_>>().join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn id(s: &str) -> CandidateId {
        CandidateId::parse(s).unwrap()
    }

    fn contest(s: &str) -> ContestId {
        ContestId::parse(s).unwrap()
    }

    #[test]
    fn each_kind_of_field_reads_as_a_vote() {
        let read = read_form(&pairs(&[
            ("pres", "ada"),
            ("c.council", "bo"),
            ("c.council", "cy"),
            ("c.ref", "abstain"),
            ("r.stv.ada", "2"),
            ("r.stv.ron", "1"),
            ("r.stv.bo", ""),
        ]))
        .unwrap();
        assert!(read.is_ok(), "{:?}", read.errors);
        assert_eq!(read.choices[&contest("pres")], Vote::one(id("ada")));
        assert_eq!(read.choices[&contest("council")], Vote::Marks(vec![id("bo"), id("cy")]));
        assert_eq!(read.choices[&contest("ref")], Vote::Abstain);
        assert_eq!(read.choices[&contest("stv")], Vote::Marks(vec![id("ron"), id("ada")]));
    }

    #[test]
    fn rank_mistakes_are_named_by_contest() {
        let err = |fields: &[(&str, &str)]| read_form(&pairs(fields)).unwrap().errors[&contest("stv")].clone();
        assert!(err(&[("r.stv.a", "1"), ("r.stv.b", "1")]).contains("rank 1 to more than one"));
        assert!(err(&[("r.stv.a", "1"), ("r.stv.b", "3"), ("r.stv.c", "")]).contains("skip 2"));
        assert!(err(&[("r.stv.a", "first"), ("r.stv.b", "")]).contains("not a rank"));
        assert!(err(&[("r.stv.a", "0")]).contains("not a rank"));
        assert!(err(&[("r.stv.a", "1"), ("c.stv", "abstain")]).contains("abstain"));
        let blank = read_form(&pairs(&[("r.stv.a", ""), ("r.stv.b", " ")])).unwrap();
        assert!(blank.is_ok() && blank.choices.is_empty(), "no rank is a blank");
    }

    #[test]
    fn malformed_fields_are_refused_and_the_form_is_bounded() {
        assert!(read_form(&pairs(&[("r.nodot", "1")])).is_err());
        assert!(read_form(&pairs(&[("Bad Contest", "a")])).is_err());
        let many: Vec<(String, String)> = (0..=MAX_FIELDS).map(|i| (format!("c.c{i}"), "a".into())).collect();
        assert!(read_form(&many).is_err());
        let odd = read_form(&pairs(&[("c.pres", "Not An Id")])).unwrap();
        assert!(odd.errors.contains_key(&contest("pres")));
    }

    #[test]
    fn the_shuffled_order_is_the_voters_own_and_needs_the_server_key() {
        let options: Vec<serde_json::Value> = (0..12)
            .map(|i| serde_json::json!({"id": format!("c{i}"), "name": format!("C{i}"), "status": "approved"}))
            .collect();
        let new: turnout_core::store::NewElection = serde_json::from_value(serde_json::json!({
            "id": "e", "title": "E", "opens_at": "2036-01-01T00:00:00Z", "closes_at": "2036-01-02T00:00:00Z",
            "time_zone": "UTC", "shuffle_candidates": true,
            "contests": [{"id": "pres", "title": "P", "candidates": options}],
        }))
        .unwrap();
        let contest = Contest {
            id: new.contests[0].id.clone(),
            title: "P".into(),
            rules: Default::default(),
            candidates: new.contests[0]
                .candidates
                .iter()
                .map(|c| Candidate {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    statement: String::new(),
                    status: c.status,
                    photo: None,
                })
                .collect(),
        };
        let election = Election {
            id: new.id.clone(),
            title: "E".into(),
            schedule: turnout_core::schedule::Schedule {
                opens_at: new.opens_at,
                closes_at: new.closes_at,
                grace: std::time::Duration::ZERO,
                time_zone: "UTC".into(),
            },
            contests: vec![contest],
            otp_extra: std::time::Duration::ZERO,
            eligibility: Default::default(),
            quorum_pct: 0.0,
            otp_validity: None,
            shuffle_candidates: true,
            nominations: None,
        };
        let order = |key: u8, voter: &str| -> Vec<String> {
            let voter = Username::parse(voter).unwrap();
            ordered_options(&election, &election.contests[0], Some(&voter), &CandidateOrder([key; 32]))
                .into_iter()
                .map(|o| o.id.to_string())
                .collect()
        };
        assert_eq!(order(1, "ada"), order(1, "ada"), "the same on every visit");
        assert_ne!(order(1, "ada"), order(1, "bo"), "each voter their own");
        assert_ne!(order(1, "ada"), order(2, "ada"), "without the server's key the order can't be recomputed");
        let listed: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        assert_ne!(order(1, "ada"), listed);
    }

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].into_iter().map(ordinal).collect();
        assert_eq!(got, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]);
    }
}
