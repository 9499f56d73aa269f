//! Contests: kinds, seats, rules, RON and constituencies are stored as defined and edited;
//! reserved ids stay reserved; the cast's own transaction refuses another constituency's
//! contest and counts each constituency's voters; the roll keeps its named columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use turnout_domain::{CandidateId, ContestId, ElectionId, Username};

use super::{audit, ballot, voter};
use crate::{
    CastError, ChangeError, ChoiceError, Choices, ContestEdit, ContestKind, ContestRules, ElectionEdit, NewCandidate,
    NewElection, RankedRule, RollEntry, Store, Turnout, Vote,
};

fn kid(s: &str) -> ContestId {
    ContestId::parse(s).unwrap()
}

fn cid(s: &str) -> CandidateId {
    CandidateId::parse(s).unwrap()
}

/// President by STV with RON, a Science rep (roll column), an Engineering rep (LDAP
/// group) and an approval referendum, opening at `opens`.
fn union_election(id: &str, opens: Timestamp) -> NewElection {
    let candidate = |id: &str| serde_json::json!({"id": id, "name": id.to_uppercase(), "status": "approved"});
    serde_json::from_value(serde_json::json!({
        "id": id,
        "title": "Union 2026",
        "opens_at": opens.to_string(),
        "closes_at": (opens + 240.hours()).to_string(),
        "time_zone": "Europe/London",
        "shuffle_candidates": true,
        "contests": [
            {"id": "pres", "title": "President",
             "rules": {"kind": "ranked", "seats": 2, "rule": "ers97", "max_rank": 3, "ron": true, "ron_never_excluded": true},
             "candidates": [candidate("ada"), candidate("bo"), candidate("cy")]},
            {"id": "sci", "title": "Science rep", "rules": {"voters": {"kind": "roll_column", "column": "faculty", "value": "Science"}},
             "candidates": [candidate("dee")]},
            {"id": "eng", "title": "Engineering rep", "rules": {"voters": {"kind": "ldap_group", "group_dn": "cn=eng,ou=groups,dc=uni"}},
             "candidates": [candidate("eve")]},
            {"id": "ref", "title": "Referendum", "rules": {"kind": "approval", "max_choices": 1},
             "candidates": [candidate("yes"), candidate("no")]}
        ]
    }))
    .unwrap()
}

pub async fn contest_rules_and_the_shuffle_setting_are_stored_and_edited(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = union_election("union", now + 1.hour());
    e.validate().unwrap();
    store.create_election(&e, now).await.unwrap();
    let got = store.election(&e.id).await.unwrap().unwrap();
    assert!(got.shuffle_candidates);
    for (stored, defined) in got.contests.iter().zip(&e.contests) {
        assert_eq!(stored.rules, defined.rules, "{}", defined.id);
    }
    assert_eq!(got.contests[0].rules.ranked_rule(), Some(RankedRule::Ers97));
    let ron: Vec<String> = got.contests[0].options().iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ron, ["ada", "bo", "cy", "ron"], "RON is an option of its own, last");
    // The summary names the constituency contests (sign-in decides them).
    let summary = store.list_elections(None, 10).await.unwrap().into_iter().find(|s| s.id == e.id).unwrap();
    assert_eq!(summary.constituencies.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(), ["sci", "eng"]);

    // New rules replace the old; an edit without rules keeps them; shuffle switches off.
    let approval = ContestRules { kind: ContestKind::Approval, seats: 2, ..Default::default() };
    let edit = ElectionEdit {
        shuffle_candidates: Some(false),
        contests: Some(vec![
            ContestEdit { id: kid("pres"), title: "President".into(), rules: None },
            ContestEdit { id: kid("sci"), title: "Science rep".into(), rules: Some(approval.clone()) },
            ContestEdit { id: kid("eng"), title: "Engineering rep".into(), rules: None },
            ContestEdit { id: kid("ref"), title: "Referendum".into(), rules: None },
            ContestEdit { id: kid("new"), title: "New".into(), rules: None },
        ]),
        ..ElectionEdit::default()
    };
    store.edit_election(&e.id, &edit, &audit("edit", &e.id), now).await.unwrap();
    let got = store.election(&e.id).await.unwrap().unwrap();
    assert!(!got.shuffle_candidates);
    assert_eq!(got.contests[0].rules, e.contests[0].rules);
    assert_eq!(got.contests[1].rules, approval);
    assert_eq!(got.contests[4].rules, ContestRules::default(), "a new contest without rules is plurality");
}

pub async fn reserved_ids_are_refused_to_candidates(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = union_election("reserved", now + 1.hour());
    store.create_election(&e, now).await.unwrap();
    for id in ["ron", "abstain"] {
        let nominee = NewCandidate {
            id: cid(id),
            name: "Sneaky".into(),
            statement: String::new(),
            status: crate::CandidateStatus::Pending,
        };
        let refused = store.nominate_candidate(&e.id, &kid("pres"), &nominee, &audit("nominate", &e.id), now).await;
        assert!(matches!(refused, Err(ChangeError::Refused(_))), "{id}: {refused:?}");
    }
    let got = store.election(&e.id).await.unwrap().unwrap();
    assert_eq!(got.contests[0].candidates.len(), 3);
}

fn roll_entry(n: u32, faculty: Option<&str>) -> RollEntry {
    RollEntry {
        uid: voter(n),
        email: None,
        name: None,
        columns: faculty.map(|f| [("faculty".to_owned(), f.to_owned())].into()).unwrap_or_default(),
    }
}

async fn open_union(store: &dyn Store, id: &str) -> ElectionId {
    let e = union_election(id, Timestamp::now() - 1.hour());
    store.create_election(&e, Timestamp::now()).await.unwrap();
    store
        .import_roll(
            &e.id,
            &[roll_entry(1, Some("Science")), roll_entry(2, Some("Arts")), roll_entry(3, Some(" science "))],
        )
        .await
        .unwrap();
    e.id
}

fn vote(contest: &str, candidate: &str) -> Choices {
    [(kid(contest), Vote::one(cid(candidate)))].into()
}

pub async fn a_contest_of_another_constituency_is_refused_in_the_cast_itself(store: Arc<dyn Store>) {
    let e = open_union(store.as_ref(), "const").await;
    let refused = |r: Result<_, CastError>, contest: &str| matches!(r, Err(CastError::Choice(ChoiceError::NotInConstituency(c))) if c.as_str() == contest);
    // An Arts student names the Science contest: refused, and nothing is written.
    assert!(refused(store.cast_ballot(ballot(&e, &voter(2), vote("sci", "dee"))).await, "sci"));
    // Someone not on the roll at all: refused.
    assert!(refused(store.cast_ballot(ballot(&e, &voter(9), vote("sci", "dee"))).await, "sci"));
    // The Engineering contest without the sign-in's word for it: refused, even on the roll.
    assert!(refused(store.cast_ballot(ballot(&e, &voter(1), vote("eng", "eve"))).await, "eng"));
    // A contest the election does not have.
    let unknown = store.cast_ballot(ballot(&e, &voter(1), vote("treasurer", "x"))).await;
    assert!(matches!(unknown, Err(CastError::Choice(ChoiceError::UnknownContest(_)))), "{unknown:?}");
    assert_eq!(store.turnout(&e).await.unwrap(), Turnout { participation: 0, ballots: 0 }, "refusals wrote nothing");
    // The voters' own contests are accepted (the roll's value in any case, trimmed).
    let mut choices = vote("sci", "dee");
    choices.insert(kid("pres"), Vote::Marks(vec![cid("ron"), cid("ada")]));
    store.cast_ballot(ballot(&e, &voter(3), choices)).await.unwrap();
    let mut eng = ballot(&e, &voter(4), vote("eng", "eve"));
    eng.constituencies = vec![kid("eng")];
    store.cast_ballot(eng).await.unwrap();
    // The refused voters may still vote in what is theirs.
    store.cast_ballot(ballot(&e, &voter(2), vote("ref", "yes"))).await.unwrap();
    assert_eq!(store.turnout(&e).await.unwrap(), Turnout { participation: 3, ballots: 3 });
}

pub async fn constituency_turnout_counts_each_constituencys_voters(store: Arc<dyn Store>) {
    let e = open_union(store.as_ref(), "turnout").await;
    // Voter 1 is a Science student who leaves the Science contest blank: still its turnout.
    store.cast_ballot(ballot(&e, &voter(1), vote("ref", "no"))).await.unwrap();
    store.cast_ballot(ballot(&e, &voter(3), vote("sci", "dee"))).await.unwrap();
    store.cast_ballot(ballot(&e, &voter(2), Choices::new())).await.unwrap();
    let mut eng = ballot(&e, &voter(5), Choices::new());
    eng.constituencies = vec![kid("eng")];
    store.cast_ballot(eng).await.unwrap();
    let got: BTreeMap<String, u64> =
        store.constituency_turnout(&e).await.unwrap().into_iter().map(|(c, n)| (c.to_string(), n)).collect();
    assert_eq!(got, BTreeMap::from([("eng".to_owned(), 1), ("sci".to_owned(), 2)]));
    assert_eq!(store.roll_count_where(&e, "faculty", "SCIENCE").await.unwrap(), 2);
    assert_eq!(store.roll_count_where(&e, "faculty", "Law").await.unwrap(), 0);
}

pub async fn roll_columns_are_kept_updated_and_counted(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = union_election("columns", now + 1.hour());
    store.create_election(&e, now).await.unwrap();
    let first = store
        .import_roll(&e.id, &[roll_entry(1, Some("Science")), roll_entry(2, None), roll_entry(3, Some(" Économie "))])
        .await
        .unwrap();
    assert_eq!(first.added, 3);
    // Any case, beyond ASCII too, as the cast compares.
    assert_eq!(store.roll_count_where(&e.id, "faculty", "ÉCONOMIE").await.unwrap(), 1);
    let again = store.import_roll(&e.id, &[roll_entry(1, Some("Science")), roll_entry(2, Some("Arts"))]).await.unwrap();
    assert_eq!((again.unchanged, again.updated), (1, 1), "a changed column is an update");
    let cols = store.roll_columns(&voter(2), std::slice::from_ref(&e.id)).await.unwrap();
    assert_eq!(cols, vec![(e.id.clone(), BTreeMap::from([("faculty".to_owned(), "Arts".to_owned())]))]);
    assert!(store.roll_columns(&voter(7), std::slice::from_ref(&e.id)).await.unwrap().is_empty());
    let listed = store.list_roll(&e.id, None, 10).await.unwrap();
    assert_eq!(listed[0].columns.get("faculty").map(String::as_str), Some("Science"));
    let spelled = Username::parse("STUDENT00001").unwrap();
    assert_eq!(store.roll_columns(&spelled, std::slice::from_ref(&e.id)).await.unwrap().len(), 1);
}
