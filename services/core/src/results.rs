//! An election's results after close: each contest counted by its own rule (the pure
//! `turnout-count`), with the count sheet, and the ballot box exported per contest in a
//! form other tools read (BLT for ranked contests, CSV for the others).
//!
//! The export is canonical: identical ballots grouped and the groups sorted, so it holds
//! no trace of the order ballots were cast in, and everyone who exports the same box gets
//! the same bytes. Its SHA-256 is the seed of any tie the rule breaks by lot, so anyone
//! holding the export recomputes the draw (`turnout-ballot count` does it from the file).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use turnout_count::{Lot, Method, Profile, Sheet};

use crate::box_record::BoxSeal;
use crate::console::{Quorum, results_from};
use crate::domain::{CandidateId, ContestId, ElectionId};
use crate::error::{ApiError, ErrorCode};
use crate::store::{BallotBox, Choices, Contest, ContestKind, Election, RON, RankedRule, Roll, Vote};

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub election: ElectionId,
    pub title: String,
    pub closed_at: Timestamp,
    pub roll: u64,
    pub quorum: Quorum,
    pub participation: u64,
    pub ballots: u64,
    /// count(participation) == count(ballots): every recorded voter has exactly one ballot.
    pub consistent: bool,
    /// The box's roots (the receipts root and the ballots root, with the box export's
    /// SHA-256), as written to the audit log at close + grace.
    pub seal: BoxSeal,
    pub contests: Vec<ContestResult>,
    /// Constituency contests so small that the box export would show their voters' other
    /// choices: warn before it is published (`few_voters`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub few_voters: Vec<FewVoters>,
}

/// One option on a contest's ballot, as the sheet numbers them.
#[derive(Debug, Clone, Serialize)]
pub struct OptionName {
    pub id: CandidateId,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContestResult {
    pub id: ContestId,
    pub title: String,
    pub kind: ContestKind,
    /// The counting rule's name (`plurality`, `approval`, `irv`, `ers97`, `scottish`, `meek`).
    pub method: &'static str,
    pub seats: u32,
    /// The options in the sheet's order (candidate `i` of the sheet is `options[i]`).
    pub options: Vec<OptionName>,
    /// Ballots that marked at least one option in this contest.
    pub voted: u64,
    /// Ballots that abstained here, on purpose.
    pub abstained: u64,
    /// Ballots that left this contest out.
    pub blank: u64,
    /// Elected, in order of election (RON, if elected, is not among them).
    pub elected: Vec<OptionName>,
    /// Seats left unfilled: won by RON, or with nobody left to fill them.
    pub unfilled: u32,
    pub ron_elected: bool,
    /// SHA-256 of the export: the seed of any draw by lot.
    pub export_sha256: String,
    /// The command that recounts the export of a ranked contest the same way.
    pub recount: Option<String>,
    pub sheet: Sheet,
    #[serde(skip)]
    pub export: Export,
}

/// One contest's ballots as a file.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub file_name: String,
    pub content_type: &'static str,
    pub body: String,
}

/// The results, refused before the close and grace have passed.
pub async fn results(
    store: &(impl BallotBox + Roll + crate::store::Audit + ?Sized),
    election: &Election,
    now: Timestamp,
) -> Result<Results, ApiError> {
    let from = results_from(election);
    if now < from {
        return Err(ApiError::new(
            ErrorCode::ResultsNotReady,
            format!(
                "Results are sealed until the election closes and its grace period ends ({}).",
                election.schedule.local(from)
            ),
        ));
    }
    let contents = store.box_contents(&election.id).await?;
    if !contents.unopened.is_empty() {
        // Never counted around: a ballot that does not open was changed, copied or forged
        // in the database, or this service has another TURNOUT_SECRET.
        tracing::error!(event = "box_unopened", election = %election.id, ballots = contents.unopened.len());
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{} ballots in this box do not open with this server's key: the box was tampered with, or TURNOUT_SECRET is not the one it was cast under. Run `turnout-ballot verify-box --election {}`.",
                contents.unopened.len(),
                election.id
            ),
        ));
    }
    let roll = store.roll_size(&election.id).await?;
    let ballots = contents.ballots.len() as u64;
    let seal = BoxSeal::of(election, &contents);
    if let Some(sealed) = crate::box_record::recorded(store, &election.id).await?.seal
        && sealed != seal
    {
        tracing::error!(event = "box_changed_since_sealed", election = %election.id);
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "The box is not the one sealed at close + grace (its roots differ from the audit log's): run `turnout-ballot verify-box --election {}`.",
                election.id
            ),
        ));
    }
    let contests: Vec<ContestResult> = election
        .contests
        .iter()
        .map(|c| count_contest(&election.id, &election.title, c, &contents.ballots))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("The count could not run: {e}.")))?;
    Ok(Results {
        election: election.id.clone(),
        title: election.title.clone(),
        closed_at: election.schedule.closes_at,
        roll,
        quorum: Quorum::of(election.quorum_pct, contents.participation, roll),
        participation: contents.participation,
        ballots,
        consistent: contents.participation == ballots,
        seal,
        few_voters: few_voters(election, &contests),
        contests,
    })
}

/// Counts one contest of the election `election` (titled `election_title`) from every
/// ballot in the box. It takes no more of the election than its id and title (they name
/// the export and title its profile), so `turnout-ballot verify-box` recounts a box export
/// with the very same function. A count the rule refuses (a profile no checked ballot box
/// can produce) is the error.
pub fn count_contest(
    election: &ElectionId,
    election_title: &str,
    contest: &Contest,
    ballots: &[Choices],
) -> Result<ContestResult, String> {
    let options: Vec<OptionName> =
        contest.options().into_iter().map(|c| OptionName { id: c.id, name: c.name }).collect();
    let index: BTreeMap<&CandidateId, usize> = options.iter().enumerate().map(|(i, o)| (&o.id, i)).collect();
    let (mut abstained, mut blank) = (0u64, 0u64);
    // Identical ballots grouped, in a canonical order (BTreeMap): no trace of casting order.
    let mut groups: BTreeMap<Vec<usize>, u64> = BTreeMap::new();
    for choices in ballots {
        match choices.get(&contest.id) {
            None => blank += 1,
            Some(Vote::Abstain) => abstained += 1,
            Some(Vote::Marks(marks)) => {
                // Marks were checked at casting; one no longer on the ballot is passed over.
                let mut ranking: Vec<usize> = marks.iter().filter_map(|m| index.get(m).copied()).collect();
                if contest.rules.kind != ContestKind::Ranked {
                    ranking.sort_unstable();
                }
                *groups.entry(ranking).or_default() += 1;
            }
        }
    }
    let voted: u64 = groups.values().sum();
    let profile = Profile {
        title: format!("{election_title} — {}", contest.title),
        candidates: options.iter().map(|o| o.name.clone()).collect(),
        // As many seats as there are options at most, so the export is a file every
        // reader counts (a BLT file with more seats than candidates is refused).
        seats: (contest.rules.seats as usize).min(options.len().max(1)),
        withdrawn: Default::default(),
        tie_order: None,
        // The bye-law choice: RON (an option of its own) is never excluded.
        never_excluded: options.iter().position(|o| o.id.as_str() == RON).filter(|_| contest.rules.ron_never_excluded),
        ballots: groups
            .into_iter()
            .filter(|(ranking, _)| !ranking.is_empty())
            .map(|(ranking, weight)| turnout_count::Ballot {
                weight,
                ranks: ranking.into_iter().map(|c| vec![c]).collect(),
            })
            .collect(),
    };
    let (method, export) = match contest.rules.ranked_rule() {
        Some(rule) => (ranked_method(rule)?, blt_export(election, contest, &profile)),
        None => {
            let method = if contest.rules.kind == ContestKind::Approval { Method::Approval } else { Method::Plurality };
            (method, csv_export(election, contest, &options, &profile, abstained, blank))
        }
    };
    let lot = Lot::Seed(Sha256::digest(export.body.as_bytes()).to_vec());
    let sheet = count(method, &profile, &lot)?;
    let ron = options.iter().position(|o| o.id.as_str() == RON);
    let ron_elected = ron.is_some_and(|r| sheet.elected.contains(&r));
    let elected: Vec<OptionName> =
        sheet.elected.iter().filter(|&&c| Some(c) != ron).map(|&c| options[c].clone()).collect();
    Ok(ContestResult {
        id: contest.id.clone(),
        title: contest.title.clone(),
        kind: contest.rules.kind,
        method: sheet.method,
        seats: contest.rules.seats,
        unfilled: contest.rules.seats.saturating_sub(elected.len() as u32),
        elected,
        ron_elected,
        options,
        voted,
        abstained,
        blank,
        export_sha256: crate::keys::hex(&Sha256::digest(export.body.as_bytes())),
        recount: contest.rules.ranked_rule().map(|rule| {
            let protect = if profile.never_excluded.is_some() {
                format!(" --never-exclude \"{}\"", crate::store::RON_NAME)
            } else {
                String::new()
            };
            format!(
                "turnout-ballot count --method {} --seats {}{protect} {}",
                rule.as_str(),
                profile.seats,
                export.file_name
            )
        }),
        sheet,
        export,
    })
}

fn ranked_method(rule: RankedRule) -> Result<Method, String> {
    Method::parse(rule.as_str()).ok_or_else(|| format!("the count has no rule called {}", rule.as_str()))
}

/// The count of a contest whose seats outnumber its options fills what it can: the rule
/// runs with as many seats as there are options. A contest with no options has an empty
/// sheet.
fn count(method: Method, profile: &Profile, lot: &Lot) -> Result<Sheet, String> {
    if profile.candidates.is_empty() {
        return Ok(Sheet {
            method: "none",
            title: profile.title.clone(),
            seats: profile.seats,
            candidates: Vec::new(),
            decimals: 0,
            valid_papers: 0,
            quota: None,
            stages: Vec::new(),
            elected: Vec::new(),
        });
    }
    let mut profile = profile.clone();
    profile.seats = profile.seats.min(profile.candidates.len());
    method.count(&profile, lot)
}

fn blt_export(election: &ElectionId, contest: &Contest, profile: &Profile) -> Export {
    Export {
        file_name: format!("{election}-{}.blt", contest.id),
        content_type: "text/plain; charset=utf-8",
        body: turnout_count::blt::write(profile),
    }
}

/// One line per group of identical ballots: its count, then 1 or blank per option; the
/// abstentions and blanks close the file.
fn csv_export(
    election: &ElectionId,
    contest: &Contest,
    options: &[OptionName],
    profile: &Profile,
    abstained: u64,
    blank: u64,
) -> Export {
    let mut body = String::from("ballots");
    for o in options {
        let _ = write!(body, ",{}", o.id);
    }
    body.push_str(",abstain\n");
    for b in &profile.ballots {
        let _ = write!(body, "{}", b.weight);
        for i in 0..options.len() {
            body.push_str(if b.ranks.iter().any(|r| r.contains(&i)) { ",1" } else { "," });
        }
        body.push_str(",\n");
    }
    if abstained > 0 {
        let _ = writeln!(body, "{abstained}{},1", ",".repeat(options.len()));
    }
    let _ = writeln!(body, "# blank: {blank}");
    Export { file_name: format!("{election}-{}.csv", contest.id), content_type: "text/csv; charset=utf-8", body }
}

/// A constituency contest with so few ballots that the box export, which keeps each
/// ballot's contests together on one line, would let someone who knows who those voters
/// are read their other choices too.
#[derive(Debug, Clone, Serialize)]
pub struct FewVoters {
    pub contest: ContestId,
    pub title: String,
    /// Ballots that voted or abstained in it.
    pub ballots: u64,
}

/// The election's constituency contests with some but fewer than `console::SMALLEST_SHOWN`
/// ballots voting or abstaining in them: the results page warns before the box export is published.
pub fn few_voters(election: &Election, contests: &[ContestResult]) -> Vec<FewVoters> {
    contests
        .iter()
        .filter(|c| {
            let own = election.contests.iter().find(|k| k.id == c.id).is_some_and(|k| !k.rules.voters.is_everyone());
            let ballots = c.voted + c.abstained;
            own && ballots > 0 && ballots < crate::console::SMALLEST_SHOWN
        })
        .map(|c| FewVoters { contest: c.id.clone(), title: c.title.clone(), ballots: c.voted + c.abstained })
        .collect()
}

/// Results as CSV, the count sheets in long form: per contest, stage and option its votes
/// (in the rule's decimals) and state, with each stage's non-transferable and rounding
/// rows, then each contest's abstentions and blanks, then the checks.
pub fn results_csv(r: &Results) -> String {
    let mut out = String::from("contest,method,stage,action,candidate,name,votes,state\n");
    for c in &r.contests {
        let s = &c.sheet;
        for st in &s.stages {
            let action = match &st.action {
                turnout_count::Action::FirstCount => "first_count",
                turnout_count::Action::Surplus { .. } => "surplus",
                turnout_count::Action::Exclusion { .. } => "exclusion",
                turnout_count::Action::Iterate { .. } => "iterate",
                turnout_count::Action::ElectRemaining => "elect_remaining",
            };
            let row = |out: &mut String, id: &str, name: &str, votes: String, state: &str| {
                let _ = writeln!(
                    out,
                    "{},{},{},{action},{id},{},{votes},{state}",
                    c.id,
                    c.method,
                    st.number,
                    csv_field(name)
                );
            };
            for (i, o) in c.options.iter().enumerate() {
                let state = serde_json::to_value(st.states[i]).ok().and_then(|v| v.as_str().map(str::to_owned));
                row(&mut out, o.id.as_str(), &o.name, s.show(st.votes[i]), state.as_deref().unwrap_or(""));
            }
            row(&mut out, "(non-transferable)", "", s.show(st.non_transferable), "");
            row(&mut out, "(rounding)", "", s.show(st.residual), "");
        }
        let _ = writeln!(out, "{},{},,,(abstained),,{},", c.id, c.method, c.abstained);
        let _ = writeln!(out, "{},{},,,(blank),,{},", c.id, c.method, c.blank);
        for (n, o) in c.elected.iter().enumerate() {
            let _ = writeln!(out, "{},{},,elected_{},{},{},,elected", c.id, c.method, n + 1, o.id, csv_field(&o.name));
        }
    }
    let _ = writeln!(out, "(turnout),,,,(participation),,{},", r.participation);
    let _ = writeln!(out, "(turnout),,,,(ballots),,{},", r.ballots);
    let _ = writeln!(out, "(turnout),,,,(roll),,{},", r.roll);
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break; one a spreadsheet
/// could take for a formula (starting, after any spaces, with `=`, `+`, `-`, `@`, a tab or
/// a carriage return) is prefixed with `'` so it shows as text.
fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['\t', '\r']) || s.trim_start().starts_with(['=', '+', '-', '@']);
    let s = if formula { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// Writes each draw by lot of these results to the audit log, once: the contest, the seed
/// (the export's SHA-256) and what the lot decided, as the count sheet says it. The count
/// is deterministic (a canonical export, so the same seed), so a later view draws the same
/// and finds its entry already there. Returns how many entries were written.
pub async fn record_lot_draws(
    store: &(impl crate::store::Audit + ?Sized),
    r: &Results,
    actor: &str,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let draws: Vec<(&ContestResult, Vec<&str>)> = r
        .contests
        .iter()
        .map(|c| {
            (
                c,
                c.sheet
                    .stages
                    .iter()
                    .flat_map(|s| s.ties.iter())
                    .map(String::as_str)
                    .filter(|t| t.contains("lot"))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, ties)| !ties.is_empty())
        .collect();
    if draws.is_empty() {
        return Ok(0);
    }
    // The log is the console's actions (hundreds of entries, not ballots): read it whole.
    let mut recorded: Vec<String> = Vec::new();
    let mut after = 0;
    loop {
        let page = store.list_audit(after, crate::store::MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        recorded.extend(
            page.iter()
                .filter(|e| e.action == LOT_DRAWN && e.election.as_deref() == Some(r.election.as_str()))
                .filter_map(|e| e.detail.get("contest").and_then(|c| c.as_str()).map(str::to_owned)),
        );
    }
    let mut written = 0;
    for (c, ties) in draws {
        if recorded.iter().any(|id| id == c.id.as_str()) {
            continue;
        }
        let entry = crate::store::AuditEntry {
            actor: actor.to_owned(),
            action: LOT_DRAWN.to_owned(),
            election: Some(r.election.clone()),
            detail: serde_json::json!({ "contest": c.id, "method": c.method, "seed_sha256": c.export_sha256, "draws": ties }),
        };
        store.append_audit(&entry, now).await?;
        written += 1;
    }
    Ok(written)
}

/// The audit action of a tie the count broke by lot.
pub const LOT_DRAWN: &str = "count.lot_drawn";

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("Ada"), "Ada");
        assert_eq!(csv_field("O'Brien, Pat"), "\"O'Brien, Pat\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        for risky in ["=1+1", "+1", "-1", "@SUM(A1)", "  =cmd", "\t=1", "\r=1"] {
            assert!(csv_field(risky).trim_start_matches('"').starts_with('\''), "{risky:?}");
        }
    }
}
