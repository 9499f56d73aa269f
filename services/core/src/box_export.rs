//! The box export: one file per election holding every ballot whole (all its contests),
//! and the ballots root published at close + grace, so anyone can check that the box they
//! recount is the box that was closed (`turnout-ballot verify-box`).
//!
//! The file is canonical, the same bytes for everyone and every time. Its first line is a
//! JSON header: `{"format":"turnout-box-v1","election":…,"title":…,"contests":[…],
//! "ballots":N,"root":HEX}`, the contests with their rules and options (the approved
//! candidates, then RON where offered, in ballot order: what `results::count_contest`
//! needs to recount each). Then one line per ballot, its choices as JSON (contests by id;
//! a ranked contest's marks in the voter's order, any other's sorted), the lines sorted
//! bytewise: no trace of the order ballots were cast in, and no receipts. The ballots root
//! is the RFC 6962 Merkle root (`merkle`) over those lines in that order, each without its
//! newline. The header is not under the root: its contests are the election as published
//! (the ballot page), and `verify-box` prints the rules it counted by.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::domain::{CandidateId, ContestId, ElectionId, hex};
use crate::merkle::{self, Hash};
use crate::store::{
    Candidate, CandidateStatus, Choices, Contest, ContestKind, ContestRules, Election, RON, RON_NAME, Vote, check_vote,
    reserved_id,
};

/// The first field of the header: which format the file is.
pub const FORMAT: &str = "turnout-box-v1";
/// Most ballots a box export may hold (far more than any student election casts).
pub const MAX_BALLOTS: usize = 10_000_000;
/// Longest ballot line: the most nginx lets one request carry (`client_max_body_size
/// 1m`), so no ballot cast through it is longer.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest header: 50 contests of 200 candidates with the longest names fit.
pub const MAX_HEADER_BYTES: usize = 16 << 20;
/// Largest file `read_box_export` reads: 10 million ballots of 200 bytes.
pub const MAX_BYTES: usize = 2 << 30;

/// One election's ballots as a file, with the root over them.
#[derive(Debug, Clone)]
pub struct BoxExport {
    /// `{election}-box.jsonl`.
    pub file_name: String,
    pub body: String,
    /// The ballots root, as hex: the value published at close.
    pub root_hex: String,
    pub ballots: u64,
}

/// A contest as the header carries it: enough to recount it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxContest {
    pub id: ContestId,
    pub title: String,
    pub rules: ContestRules,
    /// The options in ballot order (the count sheet's numbering): the approved
    /// candidates, then RON where the contest offers it.
    pub options: Vec<BoxOption>,
}

/// One option on a contest's ballot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxOption {
    pub id: CandidateId,
    pub name: String,
}

/// The header line, its fields in the file's order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    election: ElectionId,
    title: String,
    contests: Vec<BoxContest>,
    ballots: u64,
    root: String,
}

/// The box export of `election` holding `ballots` (the whole box, in any order).
pub fn box_export(election: &Election, ballots: &[Choices]) -> BoxExport {
    let mut lines: Vec<String> = ballots.iter().map(|c| ballot_line(&election.canonical(c.clone()))).collect();
    lines.sort_unstable();
    let root_hex = hex(&merkle::root(&lines));
    let header = Header {
        format: FORMAT.to_owned(),
        election: election.id.clone(),
        title: election.title.clone(),
        contests: election.contests.iter().map(box_contest).collect(),
        ballots: lines.len() as u64,
        root: root_hex.clone(),
    };
    let header = serde_json::to_string(&header).expect("the header is strings, numbers and lists");
    let mut body = String::with_capacity(header.len() + 1 + lines.iter().map(|l| l.len() + 1).sum::<usize>());
    for line in std::iter::once(&header).chain(&lines) {
        body.push_str(line);
        body.push('\n');
    }
    BoxExport { file_name: format!("{}-box.jsonl", election.id), body, root_hex, ballots: lines.len() as u64 }
}

fn ballot_line(choices: &Choices) -> String {
    serde_json::to_string(choices).expect("choices are a map of ids to ids")
}

fn box_contest(contest: &Contest) -> BoxContest {
    BoxContest {
        id: contest.id.clone(),
        title: contest.title.clone(),
        rules: contest.rules.clone(),
        options: contest.options().into_iter().map(|o| BoxOption { id: o.id, name: o.name }).collect(),
    }
}

/// A box export read back: what its header says, and what its lines hold.
#[derive(Debug, Clone)]
pub struct ParsedBox {
    pub election: ElectionId,
    pub title: String,
    /// The contests as `results::count_contest` counts them (the options as approved
    /// candidates, RON from the rules).
    pub contests: Vec<Contest>,
    pub ballots: Vec<Choices>,
    /// The number of ballots the header says.
    pub header_ballots: u64,
    /// The root the header says.
    pub header_root: Hash,
    /// The root recomputed over the ballot lines.
    pub root: Hash,
}

impl ParsedBox {
    /// Every way the file disagrees with its header, or with the root published at close
    /// when one is given: none when the box is the one that root was made over.
    pub fn problems(&self, published_root: Option<&Hash>) -> Vec<String> {
        let mut problems = Vec::new();
        let (root, header) = (hex(&self.root), hex(&self.header_root));
        if self.header_ballots != self.ballots.len() as u64 {
            problems.push(format!(
                "the header says {} ballots but the file holds {}: a ballot line was added or removed",
                self.header_ballots,
                self.ballots.len()
            ));
        }
        match published_root {
            Some(published) if *published != self.root => problems.push(format!(
                "the ballots' root {root} is not the published root {}: {}",
                hex(published),
                if *published == self.header_root {
                    "a ballot line was edited, added or removed since the root was published"
                } else {
                    "these are not the ballots published at close"
                }
            )),
            Some(_) if self.header_root != self.root => problems.push(format!(
                "the header's root {header} was changed: the ballots' root {root} is the published one"
            )),
            _ if self.header_root != self.root => problems.push(format!(
                "the ballots' root {root} is not the header's root {header}: a ballot line was edited, added or removed, or the header's root was changed"
            )),
            _ => {}
        }
        problems
    }
}

/// Reads a box export: the header, then every ballot line, each checked as the export
/// writes it (canonical JSON, contests and options the header names, votes its rules
/// allow, the lines in order). Every refusal says which line and why. The counts and roots
/// are compared by `ParsedBox::problems`.
pub fn read_box_export(text: &str) -> Result<ParsedBox, String> {
    if text.len() > MAX_BYTES {
        return Err(format!("over {} GiB, more than the box of any election", MAX_BYTES >> 30));
    }
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let (header, header_root, contests) = read_header(first).map_err(|why| format!("line 1: {why}"))?;
    let mut ballots = Vec::new();
    let mut leaves: Vec<&str> = Vec::new();
    let mut lines = lines.enumerate().map(|(i, line)| (i + 2, line)).peekable();
    while let Some((n, line)) = lines.next() {
        if line.is_empty() && lines.peek().is_none() {
            break; // The newline that ends the last line.
        }
        if leaves.len() == MAX_BALLOTS {
            return Err(format!("line {n}: more than {MAX_BALLOTS} ballots, more than any election casts"));
        }
        let choices = read_ballot(line, &contests).map_err(|why| format!("line {n}: {why}"))?;
        if leaves.last().is_some_and(|prev| line < *prev) {
            return Err(format!(
                "line {n}: sorts before line {}: the ballot lines are out of order (the export sorts them bytewise)",
                n - 1
            ));
        }
        ballots.push(choices);
        leaves.push(line);
    }
    Ok(ParsedBox {
        election: header.election,
        title: header.title,
        header_ballots: header.ballots,
        header_root,
        root: merkle::root(&leaves),
        contests,
        ballots,
    })
}

fn read_header(line: &str) -> Result<(Header, Hash, Vec<Contest>), String> {
    if line.len() > MAX_HEADER_BYTES {
        return Err(format!("the header is over {} MiB, longer than any election's", MAX_HEADER_BYTES >> 20));
    }
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a box export's header (JSON: {e})"))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(format!("not a box export: its header's format is not {FORMAT:?}"));
    }
    let header: Header = serde_json::from_value(value).map_err(|e| format!("the header: {e}"))?;
    if serde_json::to_string(&header).ok().as_deref() != Some(line) {
        return Err("the header is not written the way the export writes it (canonical JSON, fields in order)".into());
    }
    let root = merkle::hash_from_hex(&header.root).ok_or("the root is not 64 hex digits")?;
    if header.contests.is_empty() || header.contests.len() > 50 {
        return Err("an election has 1-50 contests".into());
    }
    let mut ids = BTreeSet::new();
    let mut contests = Vec::with_capacity(header.contests.len());
    for c in &header.contests {
        if !ids.insert(&c.id) {
            return Err(format!("contest {} is named twice", c.id));
        }
        contests.push(contest(c).map_err(|why| format!("contest {}: {why}", c.id))?);
    }
    Ok((header, root, contests))
}

/// The contest a header's entry describes, checked as the store checks an election's.
fn contest(c: &BoxContest) -> Result<Contest, String> {
    c.rules.validate().map_err(|e| e.to_string())?;
    let candidates = match (c.rules.ron, c.options.split_last()) {
        (true, Some((ron, rest))) if ron.id.as_str() == RON && ron.name == RON_NAME => rest,
        (true, _) => return Err(format!("the rules offer RON: the last option must be {RON} named {RON_NAME:?}")),
        (false, _) => &c.options[..],
    };
    if candidates.len() > 200 {
        return Err("more than 200 candidates".into());
    }
    let mut ids = BTreeSet::new();
    for o in candidates {
        if reserved_id(&o.id) {
            return Err(format!("{} is a reserved id, not a candidate's", o.id));
        }
        if !ids.insert(&o.id) {
            return Err(format!("option {} is listed twice", o.id));
        }
    }
    Ok(Contest {
        id: c.id.clone(),
        title: c.title.clone(),
        rules: c.rules.clone(),
        candidates: candidates
            .iter()
            .map(|o| Candidate {
                id: o.id.clone(),
                name: o.name.clone(),
                statement: String::new(),
                status: CandidateStatus::Approved,
                photo: None,
            })
            .collect(),
    })
}

/// One ballot line: its choices, refused unless they are exactly what the export writes
/// for a ballot the election could have taken.
fn read_ballot(line: &str, contests: &[Contest]) -> Result<Choices, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("over {} MiB, longer than any ballot", MAX_LINE_BYTES >> 20));
    }
    if line.is_empty() {
        return Err("an empty line (each ballot is one line of JSON)".into());
    }
    let choices: Choices = serde_json::from_str(line).map_err(|e| format!("not a ballot ({e})"))?;
    for (id, vote) in &choices {
        let contest =
            contests.iter().find(|c| &c.id == id).ok_or_else(|| format!("names contest {id}, not in the header"))?;
        check_vote(&contest.rules, &contest.option_ids(), vote).map_err(|e| format!("contest {id}: {e}"))?;
        if let (false, Vote::Marks(marks)) = (contest.rules.kind == ContestKind::Ranked, vote)
            && !marks.is_sorted()
        {
            return Err(format!("contest {id}: the marks of a contest that is not ranked are written sorted"));
        }
    }
    if ballot_line(&choices) != line {
        return Err("not written the way the export writes a ballot (canonical JSON)".into());
    }
    Ok(choices)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use jiff::Timestamp;

    use super::*;
    use crate::results::count_contest;
    use crate::schedule::Schedule;
    use crate::store::{Eligibility, RankedRule};

    fn candidate(id: &str, name: &str, status: CandidateStatus) -> Candidate {
        Candidate {
            id: CandidateId::parse(id).unwrap(),
            name: name.into(),
            statement: "Vote for me.".into(),
            status,
            photo: None,
        }
    }

    fn contest(id: &str, rules: ContestRules, names: &[(&str, &str)]) -> Contest {
        let mut candidates: Vec<Candidate> =
            names.iter().map(|(id, name)| candidate(id, name, CandidateStatus::Approved)).collect();
        candidates.insert(1, candidate("withdrawn", "Not Approved", CandidateStatus::Rejected));
        Contest { id: ContestId::parse(id).unwrap(), title: format!("The {id}"), rules, candidates }
    }

    fn election() -> Election {
        let ranked =
            |seats, rule| ContestRules { kind: ContestKind::Ranked, seats, rule, ron: true, ..Default::default() };
        Election {
            id: ElectionId::parse("union").unwrap(),
            title: "Union \"2026\" — elections".into(),
            schedule: Schedule {
                opens_at: Timestamp::UNIX_EPOCH,
                closes_at: Timestamp::UNIX_EPOCH + Duration::from_secs(3600),
                grace: Duration::from_secs(10),
                time_zone: "Europe/London".into(),
            },
            contests: vec![
                contest("president", ranked(1, None), &[("ada", "Ada"), ("bo", "Bo"), ("cy", "Cy")]),
                contest(
                    "council",
                    ranked(2, Some(RankedRule::Scottish)),
                    &[("ada", "Ada"), ("bo", "Bo"), ("cy", "Cy"), ("di", "Di, Jr.")],
                ),
                contest(
                    "societies",
                    ContestRules { kind: ContestKind::Approval, seats: 2, ..Default::default() },
                    &[("chess", "Chess"), ("film", "Film"), ("hiking", "Hiking")],
                ),
                contest("rep", ContestRules::default(), &[("eva", "Eva"), ("raj", "Raj")]),
            ],
            otp_extra: Duration::ZERO,
            eligibility: Eligibility::Everyone,
            quorum_pct: 0.0,
            otp_validity: None,
            shuffle_candidates: false,
            nominations: None,
        }
    }

    fn ballot(json: serde_json::Value) -> Choices {
        serde_json::from_value(json).unwrap()
    }

    /// Ballots in casting order; the societies' marks as a voter ticked them (the store
    /// sorts them; the export sorts them again).
    fn ballots() -> Vec<Choices> {
        use serde_json::json;
        vec![
            ballot(json!({"president": ["ron", "bo"], "council": ["ada", "bo", "cy"], "societies": ["film", "chess"]})),
            ballot(json!({"president": ["bo"], "council": ["di", "cy"], "societies": "abstain", "rep": "eva"})),
            ballot(json!({"president": ["cy", "ada"], "council": ["bo", "ada"], "rep": "raj"})),
            ballot(json!({})),
            ballot(json!({"president": ["bo"], "council": ["di", "cy"], "societies": "abstain", "rep": "eva"})),
            ballot(json!({"council": ["cy", "di", "ada", "bo"], "societies": ["hiking", "film", "chess"]})),
            ballot(json!({"president": ["ada", "ron"], "council": ["ada"], "rep": "raj"})),
        ]
    }

    #[test]
    fn the_export_is_canonical_and_reads_back_to_the_same_count() {
        let (e, all) = (election(), ballots());
        let export = box_export(&e, &all);
        assert_eq!(export.file_name, "union-box.jsonl");
        assert_eq!(export.ballots, 7);
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(box_export(&e, &reversed).body, export.body, "no trace of the order of casting");

        let lines: Vec<&str> = export.body.lines().collect();
        assert!(lines[0].starts_with(r#"{"format":"turnout-box-v1","election":"union","title":"#), "{}", lines[0]);
        assert!(lines[1..].is_sorted(), "ballot lines sorted");
        assert_eq!(lines[7], "{}", "the blank ballot sorts last (a brace sorts after a quote)");
        assert!(export.body.contains(r#""societies":["chess","film","hiking"]"#), "marks sorted: {}", export.body);
        assert!(
            !export.body.contains("withdrawn") && !export.body.contains("Vote for me"),
            "only options, no statements"
        );
        assert_eq!(export.root_hex, hex(&merkle::root(&lines[1..])), "the root is over the ballot lines");

        let parsed = read_box_export(&export.body).unwrap();
        assert_eq!((parsed.election.as_str(), parsed.title.as_str()), ("union", e.title.as_str()));
        assert_eq!((parsed.header_ballots, hex(&parsed.root)), (7, export.root_hex.clone()));
        assert!(parsed.problems(None).is_empty());
        assert!(parsed.problems(Some(&parsed.root)).is_empty());
        for (original, recounted) in e.contests.iter().zip(&parsed.contests) {
            let before = count_contest(&e.id, &e.title, original, &all).unwrap();
            let after = count_contest(&parsed.election, &parsed.title, recounted, &parsed.ballots).unwrap();
            assert_eq!(after.export.body, before.export.body, "{}: the same per-contest export", original.id);
            assert_eq!(after.export_sha256, before.export_sha256, "{}: so the same seed for a lot", original.id);
            assert_eq!(serde_json::to_value(&after.sheet).unwrap(), serde_json::to_value(&before.sheet).unwrap());
            let names = |r: &crate::results::ContestResult| r.elected.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
            assert_eq!((names(&after), after.ron_elected), (names(&before), before.ron_elected), "{}", original.id);
        }
    }

    #[test]
    fn an_empty_box_has_the_empty_root() {
        let export = box_export(&election(), &[]);
        assert_eq!(export.body.lines().count(), 1);
        assert_eq!(export.root_hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let parsed = read_box_export(&export.body).unwrap();
        assert!(parsed.ballots.is_empty() && parsed.problems(None).is_empty());
    }

    /// The export with its lines changed by `edit` (line 0 is the header).
    fn edited(edit: impl FnOnce(&mut Vec<String>)) -> String {
        let export = box_export(&election(), &ballots());
        let mut lines: Vec<String> = export.body.lines().map(str::to_owned).collect();
        edit(&mut lines);
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn changed_counts_and_roots_are_named() {
        let published = merkle::hash_from_hex(&box_export(&election(), &ballots()).root_hex).unwrap();
        let cases: Vec<(&str, String, &[&str])> = vec![
            (
                "a ballot edited",
                edited(|l| l[3] = l[3].replace("\"raj\"", "\"eva\"")),
                &["is not the header's root", "edited"],
            ),
            ("a ballot removed", edited(|l| drop(l.remove(2))), &["the header says 7 ballots but the file holds 6"]),
            (
                "a ballot added",
                edited(|l| {
                    let copy = l[4].clone();
                    l.insert(4, copy)
                }),
                &["the header says 7 ballots but the file holds 8", "added or removed"],
            ),
        ];
        for (what, text, want) in cases {
            let problems = read_box_export(&text).unwrap().problems(None).join("\n");
            for w in want {
                assert!(problems.contains(w), "{what}: {problems}");
            }
            let against = read_box_export(&text).unwrap().problems(Some(&published)).join("\n");
            assert!(against.contains("since the root was published"), "{what}: {against}");
        }
        // The header's root changed: the ballots still make the published root.
        let zero = "0".repeat(64);
        let text = edited(|l| l[0] = l[0].replace(&box_export(&election(), &ballots()).root_hex, &zero));
        let parsed = read_box_export(&text).unwrap();
        assert!(parsed.problems(None)[0].contains("is not the header's root"), "{:?}", parsed.problems(None));
        let against = parsed.problems(Some(&published));
        assert_eq!(against.len(), 1);
        assert!(against[0].contains("the header's root") && against[0].contains("was changed"), "{against:?}");
        // The whole file made anew (header root recomputed): only the published root tells.
        let mut forged = ballots();
        forged[0].insert(ContestId::parse("rep").unwrap(), Vote::one(CandidateId::parse("raj").unwrap()));
        let forged = read_box_export(&box_export(&election(), &forged).body).unwrap();
        assert!(forged.problems(None).is_empty());
        let against = forged.problems(Some(&published)).join("\n");
        assert!(against.contains("not the ballots published at close"), "{against}");
    }

    #[test]
    fn a_file_the_export_could_not_have_written_is_refused_with_its_line() {
        let sorted = edited(|_| {});
        let swapped = edited(|l| l.swap(2, 3));
        let cases: Vec<(&str, String, &str)> = vec![
            ("lines out of order", swapped, "line 4: sorts before line 3"),
            ("not JSON", edited(|l| l[2] = "{\"president\":".into()), "line 3: not a ballot"),
            ("spaces", edited(|l| l[2] = l[2].replace(':', ": ")), "line 3: not written the way the export writes"),
            (
                "an unknown contest",
                edited(|l| l[1] = r#"{"treasurer":"ada"}"#.into()),
                "line 2: names contest treasurer",
            ),
            ("an unknown candidate", edited(|l| l[1] = r#"{"rep":"zed"}"#.into()), "line 2: contest rep: zed is not"),
            ("a rejected candidate", edited(|l| l[1] = r#"{"rep":"withdrawn"}"#.into()), "line 2: contest rep"),
            (
                "too many marks",
                edited(|l| l[1] = r#"{"rep":["eva","raj"]}"#.into()),
                "line 2: contest rep: You chose 2",
            ),
            ("unsorted marks", edited(|l| l[1] = r#"{"societies":["film","chess"]}"#.into()), "written sorted"),
            ("an empty line", edited(|l| l.insert(2, String::new())), "line 3: an empty line"),
            ("another format", sorted.replacen("turnout-box-v1", "turnout-box-v9", 1), "line 1: not a box export"),
            ("no header", String::new(), "line 1: not a box export's header"),
            ("a ballot first", sorted.lines().skip(1).collect::<Vec<_>>().join("\n"), "line 1: not a box export"),
            ("an unknown field", edited(|l| l[0] = l[0].replace("\"title\"", "\"tilte\"")), "line 1: the header"),
            ("a bad root", edited(|l| l[0] = l[0].replace("\"root\":\"", "\"root\":\"x")), "line 1: the root is not"),
            (
                "rules no count takes",
                edited(|l| l[0] = l[0].replace(r#""seats":2,"rule":"scottish""#, r#""seats":2"#)),
                "line 1: contest council: rule",
            ),
            (
                "RON not last",
                edited(|l| {
                    l[0] = l[0]
                        .replace(r#"{"id":"ron","name":"Re-Open Nominations (RON)"}"#, r#"{"id":"ron","name":"RON"}"#)
                }),
                "line 1: contest president: the rules offer RON",
            ),
            (
                "a header not canonical",
                edited(|l| l[0] = l[0].replacen(',', ", ", 1)),
                "line 1: the header is not written the way",
            ),
        ];
        for (what, text, want) in cases {
            let err = read_box_export(&text).map(|_| ()).unwrap_err();
            assert!(err.contains(want), "{what}: {err}");
        }
        // The last newline may be missing; a line past the limit is refused before parsing.
        assert!(read_box_export(sorted.trim_end()).is_ok());
        let long = edited(|l| l.push(format!("{{\"rep\":\"{}\"}}", "a".repeat(MAX_LINE_BYTES))));
        assert!(read_box_export(&long).unwrap_err().contains("line 9: over 1 MiB"));
    }

    #[test]
    fn the_header_holds_what_a_recount_needs() {
        let export = box_export(&election(), &ballots());
        let header: serde_json::Value = serde_json::from_str(export.body.lines().next().unwrap()).unwrap();
        let keys: Vec<&str> = header.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{keys:?}");
        let president = &header["contests"][0];
        assert_eq!(president["rules"]["kind"], "ranked");
        let options: Vec<&str> =
            president["options"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(options, ["ada", "bo", "cy", "ron"], "approved candidates in ballot order, then RON");
        assert_eq!(header["ballots"], 7);
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_value(header).unwrap();
        assert_eq!(map["root"], export.root_hex.as_str());
    }
}
