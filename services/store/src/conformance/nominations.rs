//! Nominations: submitted, edited and withdrawn only inside the period and only by the
//! nominee, every version kept; seconded once each, never one's own, capped per contest
//! per student even under a race; decided on the current version only, approval needing
//! the proposers and putting the nominee (manifesto, photo) on the ballot; photos kept by
//! hash and shown only while a page may show them; the period itself closing before
//! voting opens.

use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use turnout_domain::ElectionId;

use super::{audit, email, kid, voter};
use crate::{
    CandidateStatus, ChangeError, Decision, ElectionEdit, NewNomination, NewPhoto, Nomination, NominationContent,
    NominationError, NominationId, NominationPeriod, NominationStatus, PhotoShown, Store,
};

/// An election whose nominations opened an hour ago and close in an hour; voting opens
/// in two hours. Two contests, `pres` and `sec`.
async fn nominating(store: &dyn Store, id: &str, now: Timestamp, proposers: u32, max_seconds: u32) -> ElectionId {
    let e: crate::NewElection = serde_json::from_value(serde_json::json!({
        "id": id,
        "title": "Union 2026",
        "opens_at": (now + 2.hours()).to_string(),
        "closes_at": (now + 3.hours()).to_string(),
        "time_zone": "Europe/London",
        "nominations": {
            "opens_at": (now - 1.hour()).to_string(),
            "closes_at": (now + 1.hour()).to_string(),
            "proposers": proposers,
            "max_seconds": max_seconds,
        },
        "contests": [
            { "id": "pres", "title": "President", "candidates": [] },
            { "id": "sec", "title": "Secretary", "candidates": [] }
        ]
    }))
    .unwrap();
    e.validate().unwrap();
    store.create_election(&e, now).await.unwrap();
    e.id
}

fn content(name: &str, photo: Option<&NewPhoto>) -> NominationContent {
    NominationContent {
        name: name.into(),
        manifesto: format!("I am {name}.\n\nMore at https://example.org/{name}"),
        photo: photo.map(NewPhoto::hash),
    }
}

fn new_nomination(election: &ElectionId, contest: &str, n: u32, photo: Option<&NewPhoto>) -> NewNomination {
    NewNomination {
        id: NominationId::random(),
        election: election.clone(),
        contest: kid(contest),
        nominee: voter(n),
        email: email(n),
        content: content(&format!("Student {n}"), photo),
    }
}

fn photo(seed: u8) -> NewPhoto {
    NewPhoto { bytes: vec![0xff, 0xd8, seed, 1, 2, 3, 0xff, 0xd9] }
}

async fn submit(store: &dyn Store, n: &NewNomination, photo: Option<&NewPhoto>, now: Timestamp) -> Nomination {
    store.submit_nomination(n, photo, &audit("nomination.submitted", &n.election), now).await.unwrap()
}

async fn audit_actions(store: &dyn Store) -> Vec<String> {
    store.list_audit(0, 500).await.unwrap().into_iter().map(|r| r.action).collect()
}

pub async fn nominations_are_made_in_their_period_by_the_nominee_and_every_version_is_kept(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "noms", now, 0, 0).await;
    let pic = photo(1);
    let first = new_nomination(&e, "pres", 1, Some(&pic));

    // Outside the period (or in an election that takes none) nothing is accepted.
    for at in [now - 2.hours(), now + 1.hour()] {
        let refused = store.submit_nomination(&first, Some(&pic), &audit("nomination.submitted", &e), at).await;
        assert!(matches!(refused, Err(NominationError::PeriodClosed(_))), "{at}: {refused:?}");
    }
    let plain = super::upcoming(store.as_ref(), "plain").await;
    let elsewhere = new_nomination(&plain, "pres", 1, None);
    assert!(matches!(
        store.submit_nomination(&elsewhere, None, &audit("nomination.submitted", &plain), now).await,
        Err(NominationError::PeriodClosed(_))
    ));
    assert!(matches!(
        store.submit_nomination(&new_nomination(&e, "treasurer", 1, None), None, &audit("x", &e), now).await,
        Err(NominationError::UnknownContest)
    ));
    // A content naming a photo that is neither given nor stored is refused.
    let mut ghost = new_nomination(&e, "sec", 1, None);
    ghost.content.photo = Some(pic.hash());
    assert!(matches!(
        store.submit_nomination(&ghost, None, &audit("x", &e), now).await,
        Err(NominationError::Invalid(_))
    ));
    let before = audit_actions(store.as_ref()).await.len();

    let made = submit(store.as_ref(), &first, Some(&pic), now).await;
    assert_eq!((made.version, made.status, made.nominee.clone()), (1, NominationStatus::Pending, voter(1)));
    assert_eq!(made.content, first.content);
    let kept = store.photo(&pic.hash(), None, now).await.unwrap().expect("the photo is kept by its hash");
    assert_eq!(kept.bytes, pic.bytes);
    // The same submission again (a retried request) is the same nomination.
    assert_eq!(submit(store.as_ref(), &first, Some(&pic), now).await.id, made.id);
    // One live nomination per nominee and contest; another contest is fine.
    let twice = new_nomination(&e, "pres", 1, None);
    assert!(matches!(
        store.submit_nomination(&twice, None, &audit("x", &e), now).await,
        Err(NominationError::AlreadyNominated)
    ));
    submit(store.as_ref(), &new_nomination(&e, "sec", 1, None), None, now).await;

    // Only the nominee edits; each edit is a new version, and the old ones are kept.
    let edited = content("Ada Lovelace", None);
    let by_other = store.edit_nomination(&made.id, &voter(2), &edited, None, &audit("x", &e), now).await;
    assert!(matches!(by_other, Err(NominationError::NotYours)), "{by_other:?}");
    let v2 = store.edit_nomination(&made.id, &voter(1), &edited, None, &audit("nomination.edited", &e), now).await;
    let v2 = v2.unwrap();
    assert_eq!((v2.version, v2.content.name.as_str(), v2.content.photo.clone()), (2, "Ada Lovelace", None));
    let keeps = NominationContent { photo: Some(pic.hash()), ..edited.clone() };
    let v3 = store.edit_nomination(&made.id, &voter(1), &keeps, None, &audit("nomination.edited", &e), now).await;
    assert_eq!(v3.unwrap().content.photo, Some(pic.hash()), "an edit may keep a stored photo");
    let versions = store.nomination_versions(&made.id).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(versions[0].content, first.content, "what was first submitted is still there");
    let late = store.edit_nomination(&made.id, &voter(1), &edited, None, &audit("x", &e), now + 1.hour()).await;
    assert!(matches!(late, Err(NominationError::PeriodClosed(_))), "{late:?}");
    let too_long = NominationContent { manifesto: "a".repeat(5001), ..edited.clone() };
    assert!(matches!(
        store.edit_nomination(&made.id, &voter(1), &too_long, None, &audit("x", &e), now).await,
        Err(NominationError::Invalid(_))
    ));

    // Withdrawn by the nominee only; then it can't change, and they may stand again.
    assert!(matches!(
        store.withdraw_nomination(&made.id, &voter(2), &audit("x", &e), now).await,
        Err(NominationError::NotYours)
    ));
    let gone = store.withdraw_nomination(&made.id, &voter(1), &audit("nomination.withdrawn", &e), now).await.unwrap();
    assert_eq!(gone.status, NominationStatus::Withdrawn);
    assert_eq!(
        store.withdraw_nomination(&made.id, &voter(1), &audit("x", &e), now).await.unwrap().status,
        NominationStatus::Withdrawn,
        "withdrawing again (a retried request) changes nothing"
    );
    assert!(matches!(
        store.edit_nomination(&made.id, &voter(1), &edited, None, &audit("x", &e), now).await,
        Err(NominationError::Withdrawn)
    ));
    submit(store.as_ref(), &twice, None, now).await;
    let mine = store.nominations_of(&e, &voter(1)).await.unwrap();
    assert_eq!(mine.len(), 3, "both nominations for pres (one withdrawn) and one for sec");
    assert!(store.nominations_of(&e, &voter(2)).await.unwrap().is_empty());

    let actions = audit_actions(store.as_ref()).await;
    let steps: Vec<&str> = actions[before..].iter().map(String::as_str).collect();
    assert_eq!(
        steps,
        [
            "nomination.submitted",
            "nomination.submitted",
            "nomination.edited",
            "nomination.edited",
            "nomination.withdrawn",
            "nomination.submitted"
        ],
        "each step taken is audited once, none refused or repeated"
    );
    assert!(store.verify_audit(None).await.unwrap().broken_at.is_none());

    // The first submission's form id sent again for another contest is refused, not
    // answered with the first.
    let elsewhere = NewNomination { contest: kid("sec"), ..first.clone() };
    assert!(matches!(
        store.submit_nomination(&elsewhere, Some(&pic), &audit("x", &e), now).await,
        Err(NominationError::Refused(_))
    ));
    // Another student can't name that photo without sending it, in a submission or an edit.
    let borrowed = NewNomination { content: content("Student 5", None), ..new_nomination(&e, "sec", 5, None) };
    let borrowed = NewNomination {
        content: NominationContent { photo: Some(pic.hash()), ..borrowed.content.clone() },
        ..borrowed
    };
    assert!(matches!(
        store.submit_nomination(&borrowed, None, &audit("x", &e), now).await,
        Err(NominationError::Invalid(_))
    ));
    let theirs = submit(store.as_ref(), &new_nomination(&e, "pres", 5, None), None, now).await;
    let taking = NominationContent { photo: Some(pic.hash()), ..theirs.content.clone() };
    assert!(matches!(
        store.edit_nomination(&theirs.id, &voter(5), &taking, None, &audit("x", &e), now).await,
        Err(NominationError::Invalid(_))
    ));
    store.withdraw_nomination(&theirs.id, &voter(5), &audit("nomination.withdrawn", &e), now).await.unwrap();
}

pub async fn seconds_are_once_each_never_ones_own_and_capped_per_contest_under_a_race(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "seconds", now, 2, 1).await;
    let a = submit(store.as_ref(), &new_nomination(&e, "pres", 1, None), None, now).await;
    let b = submit(store.as_ref(), &new_nomination(&e, "pres", 2, None), None, now).await;
    let s = |id: NominationId, who: u32, at: Timestamp| {
        let store = store.clone();
        let e = e.clone();
        async move {
            let version = store.nomination(&id).await.unwrap().unwrap().version;
            store.second_nomination(&id, version, &voter(who), &audit("nomination.seconded", &e), at).await
        }
    };

    assert!(matches!(s(a.id.clone(), 1, now).await, Err(NominationError::OwnNomination)));
    let seconded = s(a.id.clone(), 3, now).await.unwrap();
    assert_eq!(seconded.seconds.iter().map(|x| x.by.clone()).collect::<Vec<_>>(), [voter(3)]);
    assert!(matches!(s(a.id.clone(), 3, now).await, Err(NominationError::AlreadySeconded)));
    assert!(matches!(s(b.id.clone(), 3, now).await, Err(NominationError::SecondLimit { max: 1 })));
    assert!(matches!(s(b.id.clone(), 4, now + 1.hour()).await, Err(NominationError::PeriodClosed(_))));
    // The limit is per contest: a second in another contest is fine.
    let c = submit(store.as_ref(), &new_nomination(&e, "sec", 5, None), None, now).await;
    s(c.id.clone(), 3, now).await.unwrap();
    // A withdrawn nomination no longer counts against its seconders (nor takes seconds).
    store.withdraw_nomination(&a.id, &voter(1), &audit("nomination.withdrawn", &e), now).await.unwrap();
    assert!(matches!(s(a.id.clone(), 6, now).await, Err(NominationError::Withdrawn)));
    s(b.id.clone(), 3, now).await.unwrap();
    // An edit sets the nomination's seconds aside, and with them the seconders' places in
    // the contest: the seconder may second the new version (or another nomination).
    let b2 = content("Student 2, edited", None);
    store.edit_nomination(&b.id, &voter(2), &b2, None, &audit("nomination.edited", &e), now).await.unwrap();
    let again = s(b.id.clone(), 3, now).await.unwrap();
    assert_eq!((again.version, again.seconds.len()), (2, 1), "one second, on version 2");
    // A rejected one takes no seconds, and those it had no longer count either.
    let d = submit(store.as_ref(), &new_nomination(&e, "sec", 7, None), None, now).await;
    store
        .decide_nomination(&c.id, 1, Decision::Reject, "Not eligible.", &audit("nomination.rejected", &e), now)
        .await
        .unwrap();
    assert!(matches!(s(c.id.clone(), 8, now).await, Err(NominationError::Refused(_))));
    s(d.id.clone(), 3, now).await.unwrap();

    // One student racing to second ten nominations at once gets exactly one.
    let mut many = Vec::new();
    for n in 10..20 {
        many.push(submit(store.as_ref(), &new_nomination(&e, "pres", n, None), None, now).await.id);
    }
    let raced = futures_util::future::join_all(many.iter().map(|id| s(id.clone(), 7, now))).await;
    let won = raced.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{raced:?}");
    assert!(raced.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(
        e,
        NominationError::SecondLimit { .. } | NominationError::Store(crate::StoreError::Conflict(_))
    )));
    let total: usize = futures_util::future::join_all(many.iter().map(|id| store.nomination(id)))
        .await
        .into_iter()
        .map(|n| n.unwrap().unwrap().seconds.iter().filter(|x| x.by == voter(7)).count())
        .sum();
    assert_eq!(total, 1, "the stored seconds agree");
}

pub async fn decisions_name_the_current_version_need_proposers_and_set_the_ballot(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "decide", now, 1, 0).await;
    let pic = photo(2);
    let n = submit(store.as_ref(), &new_nomination(&e, "pres", 1, Some(&pic)), Some(&pic), now).await;
    let decide = |version: u32, decision: Decision, reason: &str, at: Timestamp| {
        let (store, e, id, reason) = (store.clone(), e.clone(), n.id.clone(), reason.to_owned());
        async move { store.decide_nomination(&id, version, decision, &reason, &audit("nomination.decided", &e), at).await }
    };
    let on_ballot = || {
        let (store, e, candidate) = (store.clone(), e.clone(), n.candidate_id());
        async move {
            let election = store.election(&e).await.unwrap().unwrap();
            election.contests[0].candidates.iter().find(|c| c.id == candidate).cloned()
        }
    };

    let short = decide(1, Decision::Approve, "", now).await;
    assert!(matches!(short, Err(NominationError::TooFewProposers { have: 0, need: 1 })), "{short:?}");
    store.second_nomination(&n.id, 1, &voter(2), &audit("nomination.seconded", &e), now).await.unwrap();
    let approved = decide(1, Decision::Approve, "", now).await.unwrap();
    assert_eq!((approved.status, approved.decided_version), (NominationStatus::Approved, Some(1)));
    let candidate = on_ballot().await.expect("an approved nominee is a candidate");
    assert_eq!(candidate.status, CandidateStatus::Approved);
    assert_eq!((candidate.name.as_str(), candidate.photo.clone()), ("Student 1", Some(pic.hash())));
    assert_eq!(candidate.statement, n.content.manifesto);
    let audited = audit_actions(store.as_ref()).await.len();
    decide(1, Decision::Approve, "", now).await.unwrap();
    assert_eq!(audit_actions(store.as_ref()).await.len(), audited, "the same decision again is not a new step");

    // The same content again (a form sent twice) is no new version: nothing changes.
    let resent =
        store.edit_nomination(&n.id, &voter(1), &n.content, None, &audit("nomination.edited", &e), now).await.unwrap();
    assert_eq!((resent.version, resent.status, resent.seconds.len()), (1, NominationStatus::Approved, 1));
    assert_eq!(audit_actions(store.as_ref()).await.len(), audited, "and writes no audit line");
    assert!(on_ballot().await.is_some());

    // An edit takes the nominee off the ballot until decided again, and sets the seconds
    // aside: the proposers seconded what the old version said, so they second the new one.
    // A decision on the old version is refused as stale.
    let edited = content("Ada", None);
    let v2 =
        store.edit_nomination(&n.id, &voter(1), &edited, None, &audit("nomination.edited", &e), now).await.unwrap();
    assert!(v2.seconds.is_empty(), "seconds of version 1 don't stand for version 2: {:?}", v2.seconds);
    assert!(store.nomination(&n.id).await.unwrap().unwrap().seconds.is_empty(), "as stored");
    assert!(on_ballot().await.is_none(), "an edited nomination waits for a new decision");
    let stale = decide(1, Decision::Approve, "", now).await;
    assert!(matches!(stale, Err(NominationError::Stale { current: 2 })), "{stale:?}");
    let unseconded = decide(2, Decision::Approve, "", now).await;
    assert!(matches!(unseconded, Err(NominationError::TooFewProposers { have: 0, need: 1 })), "{unseconded:?}");
    let read_v1 = store.second_nomination(&n.id, 1, &voter(2), &audit("x", &e), now).await;
    assert!(matches!(read_v1, Err(NominationError::Stale { current: 2 })), "a second names what it read: {read_v1:?}");
    store.second_nomination(&n.id, 2, &voter(2), &audit("nomination.seconded", &e), now).await.unwrap();
    assert!(matches!(decide(2, Decision::Reject, "  ", now).await, Err(NominationError::Invalid(_))));
    let rejected = decide(2, Decision::Reject, "The photo is not of you.", now).await.unwrap();
    assert_eq!(
        (rejected.status, rejected.reason.as_deref()),
        (NominationStatus::Rejected, Some("The photo is not of you."))
    );
    assert!(on_ballot().await.is_none());
    // A rejection sets the seconds aside (they stopped counting against the seconder), so
    // a change of mind on the same version finds none; the nominee stands again by saving,
    // even the same content, which is a new version to second and decide.
    assert!(rejected.seconds.is_empty(), "{:?}", rejected.seconds);
    let again = decide(2, Decision::Approve, "", now).await;
    assert!(matches!(again, Err(NominationError::TooFewProposers { have: 0, need: 1 })), "{again:?}");
    let v3 = store.edit_nomination(&n.id, &voter(1), &edited, None, &audit("nomination.edited", &e), now).await;
    let v3 = v3.unwrap();
    assert_eq!((v3.version, v3.status), (3, NominationStatus::Pending), "standing again after a rejection");
    store.second_nomination(&n.id, 3, &voter(2), &audit("nomination.seconded", &e), now).await.unwrap();
    decide(3, Decision::Approve, "", now).await.unwrap();
    assert_eq!(on_ballot().await.map(|c| c.name), Some("Ada".to_owned()), "what was approved is what stands");

    // Decisions are still taken after nominations close, never once voting opens.
    let other = submit(store.as_ref(), &new_nomination(&e, "pres", 3, None), None, now).await;
    store.second_nomination(&other.id, 1, &voter(4), &audit("nomination.seconded", &e), now).await.unwrap();
    let after_close = now + 90.minutes();
    store.decide_nomination(&other.id, 1, Decision::Approve, "", &audit("x", &e), after_close).await.unwrap();
    let locked = decide(2, Decision::Reject, "late", now + 2.hours()).await;
    assert!(matches!(locked, Err(NominationError::Refused(_))), "{locked:?}");
    // An admin's own candidate can't take a nomination's id.
    let squatter = super::nominee(other.candidate_id().as_str());
    assert!(matches!(
        store.nominate_candidate(&e, &kid("pres"), &squatter, &audit("candidate.added", &e), now).await,
        Err(ChangeError::Refused(_))
    ));

    // The review queue: by contest and id, filtered by status, page by page.
    let pending = store.list_nominations(&e, Some(NominationStatus::Pending), None, 10).await.unwrap();
    assert!(pending.is_empty());
    for n in 10..15 {
        submit(store.as_ref(), &new_nomination(&e, if n % 2 == 0 { "pres" } else { "sec" }, n, None), None, now).await;
    }
    let first = store.list_nominations(&e, Some(NominationStatus::Pending), None, 3).await.unwrap();
    let last = first.last().unwrap();
    let rest =
        store.list_nominations(&e, Some(NominationStatus::Pending), Some((&last.contest, &last.id)), 10).await.unwrap();
    let keys: Vec<(String, String)> =
        first.iter().chain(&rest).map(|n| (n.contest.to_string(), n.id.to_string())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!((keys.len(), &keys), (5, &sorted), "every pending one once, in order");
    assert_eq!(store.list_nominations(&e, None, None, 100).await.unwrap().len(), 7);
}

pub async fn the_nomination_period_closes_before_voting_opens(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "period", now, 0, 0).await;
    let got = store.election(&e).await.unwrap().unwrap().nominations.expect("the period is stored");
    assert_eq!((got.proposers, got.max_seconds), (0, 0));
    let past_opening = NominationPeriod { opens_at: now, closes_at: now + 150.minutes(), proposers: 1, max_seconds: 0 };
    let edit = ElectionEdit { nominations: Some(past_opening), ..ElectionEdit::default() };
    assert!(matches!(store.edit_election(&e, &edit, &audit("x", &e), now).await, Err(ChangeError::Refused(_))));
    // Nor may voting be moved to open before the period it has closes.
    let earlier = ElectionEdit { opens_at: Some(now + 30.minutes()), ..ElectionEdit::default() };
    assert!(matches!(store.edit_election(&e, &earlier, &audit("x", &e), now).await, Err(ChangeError::Refused(_))));
    let fine = NominationPeriod { opens_at: now, closes_at: now + 2.hours(), proposers: 3, max_seconds: 2 };
    let edit = ElectionEdit { nominations: Some(fine.clone()), ..ElectionEdit::default() };
    store.edit_election(&e, &edit, &audit("election.edited", &e), now).await.unwrap();
    assert_eq!(store.election(&e).await.unwrap().unwrap().nominations, Some(fine));
}

pub async fn a_student_makes_a_bounded_number_of_nominations_withdrawn_ones_included(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "loop", now, 0, 0).await;
    // Withdraw and submit again, over and over: each withdrawn one still counts.
    for _ in 0..crate::MAX_NOMINATIONS_PER_NOMINEE {
        let made = submit(store.as_ref(), &new_nomination(&e, "pres", 1, None), None, now).await;
        store.withdraw_nomination(&made.id, &voter(1), &audit("nomination.withdrawn", &e), now).await.unwrap();
    }
    let refused = store
        .submit_nomination(&new_nomination(&e, "sec", 1, None), None, &audit("nomination.submitted", &e), now)
        .await;
    assert!(matches!(refused, Err(NominationError::Refused(_))), "{refused:?}");
    let mine = store.nominations_of(&e, &voter(1)).await.unwrap();
    assert_eq!(mine.len() as u32, crate::MAX_NOMINATIONS_PER_NOMINEE);
    // Another student is not held back by it.
    submit(store.as_ref(), &new_nomination(&e, "pres", 2, None), None, now).await;
}

pub async fn a_contest_with_live_nominations_stays_in_the_election(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "keep", now, 0, 0).await;
    let made = submit(store.as_ref(), &new_nomination(&e, "sec", 1, None), None, now).await;
    let only_pres = ElectionEdit {
        contests: Some(vec![crate::ContestEdit { id: kid("pres"), title: "President".into(), rules: None }]),
        ..ElectionEdit::default()
    };
    let refused = store.edit_election(&e, &only_pres, &audit("election.edited", &e), now).await;
    assert!(matches!(refused, Err(ChangeError::Refused(_))), "{refused:?}");
    assert_eq!(store.election(&e).await.unwrap().unwrap().contests.len(), 2);
    // Once the nomination is withdrawn, the contest may go.
    store.withdraw_nomination(&made.id, &voter(1), &audit("nomination.withdrawn", &e), now).await.unwrap();
    store.edit_election(&e, &only_pres, &audit("election.edited", &e), now).await.unwrap();
    assert_eq!(store.election(&e).await.unwrap().unwrap().contests.len(), 1);
}

pub async fn a_photo_is_shown_while_a_page_shows_it_and_then_to_its_nominee_only(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let e = nominating(store.as_ref(), "faces", now, 0, 0).await;
    let (first, second) = (photo(21), photo(22));
    let n = new_nomination(&e, "pres", 1, Some(&first));
    let n = submit(store.as_ref(), &n, Some(&first), now).await;
    let shown = |p: &NewPhoto, viewer: Option<u32>, at: Timestamp| {
        let (store, hash) = (store.clone(), p.hash());
        async move { store.photo(&hash, viewer.map(voter).as_ref(), at).await.unwrap().unwrap() }
    };
    let pending = shown(&first, None, now).await;
    assert_eq!(pending.shown, PhotoShown::Public, "a pending nomination's share link shows it");
    assert!(pending.visible(false));

    let approve = |version: u32| {
        let (store, e, id) = (store.clone(), e.clone(), n.id.clone());
        async move {
            store.decide_nomination(&id, version, Decision::Approve, "", &audit("nomination.approved", &e), now).await
        }
    };
    approve(1).await.unwrap();
    assert_eq!(shown(&first, None, now).await.shown, PhotoShown::Public, "a candidate's, but still changeable");
    let voting = now + 2.hours();
    assert_eq!(shown(&first, None, voting).await.shown, PhotoShown::Locked, "locked once voting opens");
    // A candidate the admin rejected on the ballot itself is not on it: not locked.
    let k = n.candidate_id();
    let reject = audit("candidate.rejected", &e);
    store.decide_candidate(&e, &kid("pres"), &k, Decision::Reject, "No.", &reject, now).await.unwrap();
    assert_eq!(shown(&first, None, voting).await.shown, PhotoShown::Public, "public by its nomination alone");

    // A new photo: the old one is set aside, the nominee's and the admins' only.
    let edited = content("Student 1", Some(&second));
    store
        .edit_nomination(&n.id, &voter(1), &edited, Some(&second), &audit("nomination.edited", &e), now)
        .await
        .unwrap();
    let old = shown(&first, None, now).await;
    assert_eq!(old.shown, PhotoShown::Private);
    assert!(!old.visible(false) && old.visible(true), "an admin sees it");
    assert!(!shown(&first, Some(2), now).await.visible(false), "another student doesn't");
    assert!(shown(&first, Some(1), now).await.visible(false), "its nominee does");
    assert_eq!(shown(&second, None, now).await.shown, PhotoShown::Public);

    // Rejected or withdrawn, the current one is set aside too.
    store
        .decide_nomination(&n.id, 2, Decision::Reject, "Not you.", &audit("nomination.rejected", &e), now)
        .await
        .unwrap();
    assert_eq!(shown(&second, None, now).await.shown, PhotoShown::Private);
    approve(2).await.unwrap();
    assert_eq!(shown(&second, None, now).await.shown, PhotoShown::Public);
    store.withdraw_nomination(&n.id, &voter(1), &audit("nomination.withdrawn", &e), now).await.unwrap();
    let gone = shown(&second, Some(1), now).await;
    assert_eq!((gone.shown, gone.visible(false)), (PhotoShown::Private, true));

    // One file sent by two students is both of theirs, and shown while either stands.
    let twin = submit(store.as_ref(), &new_nomination(&e, "sec", 2, Some(&second)), Some(&second), now).await;
    assert_eq!(shown(&second, None, now).await.shown, PhotoShown::Public);
    store.withdraw_nomination(&twin.id, &voter(2), &audit("nomination.withdrawn", &e), now).await.unwrap();
    for owner in [1, 2] {
        let theirs = shown(&second, Some(owner), now).await;
        assert_eq!((theirs.shown, theirs.visible(false)), (PhotoShown::Private, true), "student {owner}");
    }
    assert!(!shown(&second, Some(3), now).await.visible(false));
}
