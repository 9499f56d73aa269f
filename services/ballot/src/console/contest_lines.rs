//! Contests as the console's forms write them, one per line, and back (so the edit form
//! shows what is stored):
//!
//! ```text
//! id | title | kind and options
//! president | President | ranked ron
//! council   | Council   | ranked seats=3 rule=ers97 ron ron-never-excluded
//! referendum | Referendum | approval max=2
//! sci-rep   | Science rep | plurality voters column faculty=Science
//! eng-rep   | Engineering rep | plurality voters group cn=eng,ou=groups,dc=uni,dc=example
//! ```
//!
//! The kind is `plurality` (the default when the third part is left out), `approval` or
//! `ranked`; options are `seats=N`, `max=N` (approval: most choices; ranked: most
//! preferences), `rule=irv|ers97|scottish|meek`, `ron`, `ron-never-excluded`; `voters`
//! ends the line with the constituency: `column NAME=VALUE`, `group DN` or `filter (…)`.

use turnout_core::ApiError;
use turnout_core::domain::ContestId;
use turnout_core::store::{Constituency, ContestKind, ContestRules, NewContest, RankedRule};

/// Most contest lines a form may hold (the port allows 50 contests).
const MAX_LINES: usize = 50;

pub fn parse(raw: &str) -> Result<Vec<NewContest>, ApiError> {
    let lines: Vec<&str> = raw.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > MAX_LINES {
        return Err(ApiError::invalid("contests", format!("at most {MAX_LINES} contests")));
    }
    lines.into_iter().map(parse_line).collect()
}

fn parse_line(line: &str) -> Result<NewContest, ApiError> {
    let bad = |why: String| ApiError::invalid("contests", why);
    let mut parts = line.splitn(3, '|');
    let (id, title) = match (parts.next(), parts.next()) {
        (Some(id), Some(title)) => (id.trim(), title.trim()),
        _ => return Err(bad(format!("write each contest as `id | title | kind`, not {line:?}"))),
    };
    let id = ContestId::parse(id).map_err(|e| bad(e.to_string()))?;
    let rules = rules(parts.next().unwrap_or("").trim()).map_err(|why| bad(format!("{id}: {why}")))?;
    rules.validate().map_err(|e| bad(format!("{id}: {}: {}", e.field, e.reason)))?;
    Ok(NewContest { id, title: title.to_owned(), rules, candidates: vec![] })
}

fn rules(spec: &str) -> Result<ContestRules, String> {
    let (head, voters) = match spec.split_once(" voters ") {
        Some((h, v)) => (h, Some(v.trim())),
        None if spec.starts_with("voters ") => ("", Some(spec["voters ".len()..].trim())),
        None => (spec, None),
    };
    let mut rules = ContestRules::default();
    let mut words = head.split_whitespace().peekable();
    match words.peek().copied() {
        Some("plurality") => rules.kind = ContestKind::Plurality,
        Some("approval") => rules.kind = ContestKind::Approval,
        Some("ranked") => rules.kind = ContestKind::Ranked,
        _ => {}
    }
    if matches!(words.peek().copied(), Some("plurality" | "approval" | "ranked")) {
        words.next();
    }
    for word in words {
        let number = |v: &str| v.parse::<u32>().map_err(|_| format!("{word:?}: a whole number is needed"));
        match word.split_once('=') {
            Some(("seats", v)) => rules.seats = number(v)?,
            Some(("max", v)) if rules.kind == ContestKind::Ranked => rules.max_rank = Some(number(v)?),
            Some(("max", v)) => rules.max_choices = Some(number(v)?),
            Some(("rule", v)) => {
                rules.rule = Some(match v {
                    "irv" => RankedRule::Irv,
                    "ers97" => RankedRule::Ers97,
                    "scottish" => RankedRule::Scottish,
                    "meek" => RankedRule::Meek,
                    other => return Err(format!("unknown rule {other:?}: use irv, ers97, scottish or meek")),
                })
            }
            None if word == "ron" => rules.ron = true,
            None if word == "ron-never-excluded" => rules.ron_never_excluded = true,
            _ => {
                return Err(format!(
                    "{word:?} is not understood: use plurality, approval or ranked, then seats=N, max=N, rule=…, ron, ron-never-excluded, voters …"
                ));
            }
        }
    }
    if let Some(v) = voters {
        rules.voters = constituency(v)?;
    }
    Ok(rules)
}

fn constituency(spec: &str) -> Result<Constituency, String> {
    let (kind, rest) = spec.split_once(' ').map(|(k, r)| (k, r.trim())).unwrap_or((spec, ""));
    match kind {
        "column" => {
            let (column, value) =
                rest.split_once('=').ok_or("write a roll column constituency as `voters column faculty=Science`")?;
            Ok(Constituency::RollColumn { column: column.trim().to_owned(), value: value.trim().to_owned() })
        }
        "group" => Ok(Constituency::LdapGroup { group_dn: rest.to_owned() }),
        "filter" => Ok(Constituency::LdapFilter { filter: rest.to_owned() }),
        other => Err(format!("unknown constituency {other:?}: use voters column, voters group or voters filter")),
    }
}

/// The line that parses back to this contest.
pub fn line(id: &ContestId, title: &str, rules: &ContestRules) -> String {
    let mut words = vec![
        match rules.kind {
            ContestKind::Plurality => "plurality",
            ContestKind::Approval => "approval",
            ContestKind::Ranked => "ranked",
        }
        .to_owned(),
    ];
    if rules.seats != 1 {
        words.push(format!("seats={}", rules.seats));
    }
    if let Some(m) = rules.max_choices.or(rules.max_rank) {
        words.push(format!("max={m}"));
    }
    if let Some(r) = rules.rule {
        words.push(format!("rule={}", r.as_str()));
    }
    if rules.ron {
        words.push("ron".into());
    }
    if rules.ron_never_excluded {
        words.push("ron-never-excluded".into());
    }
    match &rules.voters {
        Constituency::Everyone => {}
        Constituency::RollColumn { column, value } => words.push(format!("voters column {column}={value}")),
        Constituency::LdapGroup { group_dn } => words.push(format!("voters group {group_dn}")),
        Constituency::LdapFilter { filter } => words.push(format!("voters filter {filter}")),
    }
    format!("{id} | {title} | {}", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_and_writes_back_the_same() {
        let raw = "president | President | ranked ron ron-never-excluded\n\
                   council | Council | ranked seats=3 rule=ers97 max=5 ron\n\
                   referendum | Referendum | approval max=2\n\
                   sci-rep | Science rep | plurality voters column faculty=Science\n\
                   eng-rep | Engineering rep | plurality seats=2 voters group cn=eng,ou=groups,dc=uni\n\
                   phys | Physics | plurality voters filter (departmentNumber=PHYS)\n\
                   old | Old style";
        let contests = parse(raw).unwrap();
        assert_eq!(contests.len(), 7);
        assert_eq!(contests[1].rules.seats, 3);
        assert_eq!(contests[1].rules.rule, Some(RankedRule::Ers97));
        assert_eq!(contests[1].rules.max_rank, Some(5));
        assert_eq!(contests[2].rules.max_choices, Some(2));
        assert_eq!(
            contests[3].rules.voters,
            Constituency::RollColumn { column: "faculty".into(), value: "Science".into() }
        );
        assert_eq!(contests[6].rules, ContestRules::default());
        for c in &contests {
            let again = parse(&line(&c.id, &c.title, &c.rules)).unwrap();
            assert_eq!(again[0].rules, c.rules, "{}", c.id);
            assert_eq!(again[0].title, c.title);
        }
    }

    #[test]
    fn mistakes_are_explained() {
        for (raw, says) in [
            ("c | C | ranked seats=3", "rule"),
            ("c | C | ranked seats=two rule=meek", "whole number"),
            ("c | C | ranked seats=3 rule=borda", "unknown rule"),
            ("c | C | plurality wibble", "not understood"),
            ("c | C | plurality voters street x", "unknown constituency"),
            ("c | C | plurality voters column faculty", "voters column faculty=Science"),
            ("no title here", "id | title"),
        ] {
            let err = parse(raw).unwrap_err();
            assert!(format!("{err:?}").contains(says), "{raw}: {err:?}");
        }
    }
}
