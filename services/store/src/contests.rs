//! Contests: how each one is voted and counted (plurality with seats, approval, ranked by
//! IRV or a named STV rule), Re-Open Nominations, who may vote in it (its constituency),
//! and a voter's vote in it, checked against those rules.
//!
//! A vote is what the voter marked: `Abstain`, or the candidates they picked (in order of
//! preference for a ranked contest). `ron` and `abstain` are reserved ids: `ron` is the
//! native "Re-Open Nominations" option of a contest that offers it, and `abstain` is how
//! a vote says so in JSON. A contest left out of a ballot is a blank, counted apart from
//! an abstention.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use turnout_domain::CandidateId;

use crate::InvalidField;

/// The reserved candidate id of "Re-Open Nominations".
pub const RON: &str = "ron";
/// The reserved word for an explicit abstention.
pub const ABSTAIN: &str = "abstain";
/// RON's name on the ballot, the count sheet and the BLT export.
pub const RON_NAME: &str = "Re-Open Nominations (RON)";

/// Most seats a contest can fill.
pub const MAX_SEATS: u32 = 50;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContestKind {
    /// Choose up to `seats`; the `seats` most-voted win.
    #[default]
    Plurality,
    /// Choose any number (up to `max_choices`); the most-approved win.
    Approval,
    /// Rank as many as you like (up to `max_rank`); IRV for one seat, STV for several.
    Ranked,
}

/// How a ranked contest is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankedRule {
    /// Instant-runoff: one seat.
    Irv,
    /// Electoral Reform Society, 1997 rules.
    Ers97,
    /// Scottish local government STV (weighted inclusive Gregory, 5 decimals).
    Scottish,
    /// Meek STV, as OpenSTV and OpaVote count it.
    Meek,
}

impl RankedRule {
    pub fn as_str(self) -> &'static str {
        match self {
            RankedRule::Irv => "irv",
            RankedRule::Ers97 => "ers97",
            RankedRule::Scottish => "scottish",
            RankedRule::Meek => "meek",
        }
    }
}

/// Who may vote in one contest, inside the election's own eligibility.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Constituency {
    /// Everyone who may vote in the election.
    #[default]
    Everyone,
    /// Voters whose roll row has `value` in the named column (e.g. `faculty` = `Science`).
    RollColumn { column: String, value: String },
    /// Members of this LDAP group (its DN).
    LdapGroup { group_dn: String },
    /// Directory entries matching this LDAP filter.
    LdapFilter { filter: String },
}

impl Constituency {
    pub fn is_everyone(&self) -> bool {
        *self == Constituency::Everyone
    }

    pub fn validate(&self) -> Result<(), InvalidField> {
        match self {
            Constituency::Everyone => Ok(()),
            Constituency::RollColumn { column, value } => {
                if !valid_column(column) {
                    return Err(InvalidField::new(
                        "voters.column",
                        "a roll column name: 1-40 characters of a-z, 0-9 or '_' (not username or email)",
                    ));
                }
                if value.trim().is_empty() || value.len() > 200 {
                    return Err(InvalidField::new("voters.value", "1-200 characters"));
                }
                Ok(())
            }
            Constituency::LdapGroup { group_dn } if group_dn.trim().is_empty() || group_dn.len() > 500 => {
                Err(InvalidField::new("voters.group_dn", "a group DN of at most 500 characters"))
            }
            Constituency::LdapFilter { filter }
                if !(filter.starts_with('(') && filter.ends_with(')')) || filter.len() > 500 =>
            {
                Err(InvalidField::new("voters.filter", "an LDAP filter in parentheses, at most 500 characters"))
            }
            _ => Ok(()),
        }
    }

    /// Does a roll row with these columns belong to this constituency? Values compare
    /// trimmed and in any case (Unicode lower case: "ÉCOLE" is "école"), as a
    /// spreadsheet's author would expect. Both stores count with this very function.
    pub fn admits_roll_row(&self, columns: &std::collections::BTreeMap<String, String>) -> bool {
        match self {
            Constituency::RollColumn { column, value } => {
                columns.get(column).is_some_and(|v| v.trim().to_lowercase() == value.trim().to_lowercase())
            }
            _ => false,
        }
    }
}

/// A roll column name the CSV header may carry beside `username` and `email`.
pub fn valid_column(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name != "username"
        && name != "email"
}

/// How one contest is voted and counted. Every field has a default, so a contest defined
/// before kinds existed is a one-seat plurality contest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContestRules {
    #[serde(default)]
    pub kind: ContestKind,
    #[serde(default = "one")]
    pub seats: u32,
    /// Approval: most candidates a voter may approve (none = all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_choices: Option<u32>,
    /// Ranked: most preferences a voter may give (none = all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rank: Option<u32>,
    /// Ranked: the counting rule (IRV for one seat when left out; STV needs one named).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RankedRule>,
    /// "Re-Open Nominations" is on the ballot as an option of its own.
    #[serde(default)]
    pub ron: bool,
    /// The bye-law choice: RON is never excluded from a ranked count.
    #[serde(default)]
    pub ron_never_excluded: bool,
    /// Who may vote in this contest.
    #[serde(default)]
    pub voters: Constituency,
}

fn one() -> u32 {
    1
}

impl Default for ContestRules {
    fn default() -> Self {
        Self {
            kind: ContestKind::Plurality,
            seats: 1,
            max_choices: None,
            max_rank: None,
            rule: None,
            ron: false,
            ron_never_excluded: false,
            voters: Constituency::Everyone,
        }
    }
}

impl ContestRules {
    pub fn validate(&self) -> Result<(), InvalidField> {
        let bad = |field, why| Err(InvalidField::new(field, why));
        if !(1..=MAX_SEATS).contains(&self.seats) {
            return bad("seats", "1-50 seats");
        }
        match self.kind {
            ContestKind::Plurality => {
                if self.max_choices.is_some() || self.max_rank.is_some() || self.rule.is_some() {
                    return bad(
                        "kind",
                        "a plurality contest takes seats only (max_choices is for approval, max_rank and rule for ranked)",
                    );
                }
            }
            ContestKind::Approval => {
                if self.max_rank.is_some() || self.rule.is_some() {
                    return bad("kind", "an approval contest takes seats and max_choices only");
                }
                if self.max_choices.is_some_and(|m| m == 0 || m > 200) {
                    return bad("max_choices", "1-200, or leave it out for no limit");
                }
            }
            ContestKind::Ranked => {
                if self.max_choices.is_some() {
                    return bad("max_choices", "a ranked contest limits preferences with max_rank");
                }
                if self.max_rank.is_some_and(|m| m == 0 || m > 200) {
                    return bad("max_rank", "1-200, or leave it out for no limit");
                }
                match (self.seats, self.rule) {
                    (1, None | Some(RankedRule::Irv)) => {}
                    (1, Some(_)) => {
                        return bad("rule", "one seat is counted by instant-runoff: leave rule out or use irv");
                    }
                    (_, None | Some(RankedRule::Irv)) => {
                        return bad("rule", "several seats need an STV rule: ers97, scottish or meek");
                    }
                    _ => {}
                }
            }
        }
        if self.ron_never_excluded && !(self.ron && self.kind == ContestKind::Ranked) {
            return bad("ron_never_excluded", "only for a ranked contest with RON on the ballot");
        }
        self.voters.validate()
    }

    /// The counting rule of a ranked contest (IRV when one seat and none named).
    pub fn ranked_rule(&self) -> Option<RankedRule> {
        (self.kind == ContestKind::Ranked).then(|| self.rule.unwrap_or(RankedRule::Irv))
    }

    /// Most candidates one vote may mark in this contest, out of `options` on the ballot.
    pub fn most_marks(&self, options: usize) -> usize {
        let cap = match self.kind {
            ContestKind::Plurality => Some(self.seats),
            ContestKind::Approval => self.max_choices,
            ContestKind::Ranked => self.max_rank,
        };
        cap.map_or(options, |c| (c as usize).min(options))
    }

    /// What the contest is, in words for the ballot: "Choose up to 3", "Rank in order".
    pub fn instruction(&self, options: usize) -> String {
        let most = self.most_marks(options);
        match self.kind {
            ContestKind::Plurality if most == 1 => "Choose one.".into(),
            ContestKind::Plurality => format!("Choose up to {most}."),
            ContestKind::Approval if most >= options => "Choose every candidate you approve of.".into(),
            ContestKind::Approval if most == 1 => "Choose the one candidate you approve of most.".into(),
            ContestKind::Approval => format!("Choose up to {most} candidates you approve of."),
            ContestKind::Ranked if most >= options => {
                "Number the candidates in order of preference: 1 for your first choice, 2 for your second, and so on. Rank as many as you like.".into()
            }
            ContestKind::Ranked => format!(
                "Number the candidates in order of preference: 1 for your first choice, 2 for your second, and so on, up to {most}."
            ),
        }
    }
}

/// One voter's vote in one contest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// "I abstain": counted apart from a contest left blank.
    Abstain,
    /// The candidates marked, in order of preference where the contest is ranked.
    Marks(Vec<CandidateId>),
}

impl Vote {
    pub fn one(candidate: CandidateId) -> Self {
        Vote::Marks(vec![candidate])
    }

    pub fn marks(&self) -> &[CandidateId] {
        match self {
            Vote::Abstain => &[],
            Vote::Marks(m) => m,
        }
    }
}

/// Stored and sent as JSON: `"abstain"`, a single id as a string, or an array of ids.
impl Serialize for Vote {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Vote::Abstain => s.serialize_str(ABSTAIN),
            Vote::Marks(m) if m.len() == 1 => m[0].serialize(s),
            Vote::Marks(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Vote {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<CandidateId>),
        }
        match Raw::deserialize(d)? {
            Raw::One(s) if s == ABSTAIN => Ok(Vote::Abstain),
            Raw::One(s) => CandidateId::parse(&s).map(Vote::one).map_err(serde::de::Error::custom),
            Raw::Many(m) => Ok(Vote::Marks(m)),
        }
    }
}

/// Why one contest's vote can't go in the box (the ballot page shows it by the contest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("Choose at least one candidate, choose to abstain, or leave the contest blank.")]
    Empty,
    #[error("You chose {marked}; this contest allows at most {most}.")]
    TooMany { marked: usize, most: usize },
    #[error("{0} is marked more than once.")]
    Repeated(String),
    #[error("{0} is not a candidate in this contest.")]
    NotACandidate(String),
}

/// Checks one vote against its contest's rules and the ids on its ballot (`options`,
/// which include `ron` when the contest offers it).
pub fn check_vote(rules: &ContestRules, options: &[&CandidateId], vote: &Vote) -> Result<(), VoteError> {
    let marks = match vote {
        Vote::Abstain => return Ok(()),
        Vote::Marks(m) => m,
    };
    if marks.is_empty() {
        return Err(VoteError::Empty);
    }
    let most = rules.most_marks(options.len());
    if marks.len() > most {
        return Err(VoteError::TooMany { marked: marks.len(), most });
    }
    for (i, m) in marks.iter().enumerate() {
        if !options.contains(&m) {
            return Err(VoteError::NotACandidate(m.to_string()));
        }
        if marks[..i].contains(m) {
            return Err(VoteError::Repeated(m.to_string()));
        }
    }
    Ok(())
}

/// Is this id one the port reserves (and so no candidate may take)?
pub fn reserved_id(id: &CandidateId) -> bool {
    id.as_str() == RON || id.as_str() == ABSTAIN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> CandidateId {
        CandidateId::parse(s).unwrap()
    }

    #[test]
    fn votes_read_and_write_as_the_old_single_choice_did() {
        let one: Vote = serde_json::from_str("\"ada\"").unwrap();
        assert_eq!(one, Vote::one(id("ada")));
        assert_eq!(serde_json::to_string(&one).unwrap(), "\"ada\"");
        let many: Vote = serde_json::from_str("[\"ada\",\"ron\"]").unwrap();
        assert_eq!(many, Vote::Marks(vec![id("ada"), id("ron")]));
        assert_eq!(serde_json::to_string(&many).unwrap(), "[\"ada\",\"ron\"]");
        let abstain: Vote = serde_json::from_str("\"abstain\"").unwrap();
        assert_eq!(abstain, Vote::Abstain);
        assert!(serde_json::from_str::<Vote>("\"B O B\"").is_err());
        assert!(serde_json::from_str::<Vote>("[\"ok\", 3]").is_err());
        assert!(serde_json::from_str::<Vote>("{\"x\":1}").is_err());
    }

    #[test]
    fn old_contests_are_one_seat_plurality() {
        let rules: ContestRules = serde_json::from_str("{}").unwrap();
        assert_eq!(rules, ContestRules::default());
        assert!(rules.validate().is_ok());
        assert!(serde_json::from_str::<ContestRules>("{\"seat\":2}").is_err(), "a typo is refused");
    }

    #[test]
    fn rules_that_make_no_sense_are_refused() {
        let ranked = |seats, rule| ContestRules { kind: ContestKind::Ranked, seats, rule, ..Default::default() };
        assert!(ranked(1, None).validate().is_ok());
        assert_eq!(ranked(1, None).ranked_rule(), Some(RankedRule::Irv));
        assert_eq!(ranked(3, None).validate().unwrap_err().field, "rule");
        assert_eq!(ranked(3, Some(RankedRule::Irv)).validate().unwrap_err().field, "rule");
        assert_eq!(ranked(1, Some(RankedRule::Meek)).validate().unwrap_err().field, "rule");
        assert!(ranked(3, Some(RankedRule::Ers97)).validate().is_ok());
        let zero = ContestRules { seats: 0, ..Default::default() };
        assert_eq!(zero.validate().unwrap_err().field, "seats");
        let mixed = ContestRules { max_rank: Some(3), ..Default::default() };
        assert_eq!(mixed.validate().unwrap_err().field, "kind");
        let protect = ContestRules { ron_never_excluded: true, ..ranked(1, None) };
        assert_eq!(protect.validate().unwrap_err().field, "ron_never_excluded");
        let column = |c: &str| ContestRules {
            voters: Constituency::RollColumn { column: c.into(), value: "Science".into() },
            ..Default::default()
        };
        assert!(column("faculty").validate().is_ok());
        for bad in ["", "Faculty", "email", "username", "a b"] {
            assert_eq!(column(bad).validate().unwrap_err().field, "voters.column", "{bad:?}");
        }
    }

    #[test]
    fn an_election_has_at_most_twenty_constituency_contests() {
        let contests: Vec<serde_json::Value> = (0..=crate::MAX_CONSTITUENCIES)
            .map(|i| {
                serde_json::json!({"id": format!("rep{i}"), "title": "Rep", "candidates": [],
                    "rules": {"voters": {"kind": "ldap_group", "group_dn": format!("cn=g{i}")}}})
            })
            .collect();
        let election = |contests: &[serde_json::Value]| -> crate::NewElection {
            serde_json::from_value(serde_json::json!({
                "id": "e", "title": "E", "opens_at": "2036-01-01T00:00:00Z", "closes_at": "2036-01-02T00:00:00Z",
                "time_zone": "UTC", "contests": contests,
            }))
            .unwrap()
        };
        assert!(election(&contests[..crate::MAX_CONSTITUENCIES]).validate().is_ok());
        assert_eq!(election(&contests).validate().unwrap_err().field, "contests.voters");
    }

    #[test]
    fn votes_are_checked_against_their_contest() {
        let (a, b, c, ron) = (id("a"), id("b"), id("c"), id("ron"));
        let options = [&a, &b, &c, &ron];
        let plurality = ContestRules { seats: 2, ..Default::default() };
        assert!(check_vote(&plurality, &options, &Vote::Marks(vec![a.clone(), b.clone()])).is_ok());
        assert_eq!(
            check_vote(&plurality, &options, &Vote::Marks(vec![a.clone(), b.clone(), c.clone()])),
            Err(VoteError::TooMany { marked: 3, most: 2 })
        );
        let ranked = ContestRules { kind: ContestKind::Ranked, ron: true, ..Default::default() };
        assert!(check_vote(&ranked, &options, &Vote::Marks(vec![c.clone(), ron.clone(), a.clone()])).is_ok());
        assert_eq!(
            check_vote(&ranked, &options, &Vote::Marks(vec![a.clone(), a.clone()])),
            Err(VoteError::Repeated("a".into()))
        );
        assert_eq!(
            check_vote(&ranked, &options[..3], &Vote::Marks(vec![id("zed")])),
            Err(VoteError::NotACandidate("zed".into()))
        );
        assert_eq!(check_vote(&ranked, &options, &Vote::Marks(vec![])), Err(VoteError::Empty));
        assert!(check_vote(&ranked, &options, &Vote::Abstain).is_ok());
        let capped = ContestRules { kind: ContestKind::Approval, max_choices: Some(1), ..Default::default() };
        assert!(check_vote(&capped, &options, &Vote::Marks(vec![a.clone(), b.clone()])).is_err());
        assert_eq!(capped.instruction(4), "Choose the one candidate you approve of most.");
    }
}
