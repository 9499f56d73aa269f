//! The ballot box: one ballot per voter under concurrency, receipts, the window as
//! recorded, the box's contents.

use std::sync::Arc;

use jiff::{Timestamp, ToSpan};
use turnout_domain::schedule::WindowRefusal;
use turnout_domain::{CandidateId, ContestId, ElectionId, Receipt, Username};

use super::{audit, ballot, choices, demo_election, new_election, voter};
use crate::{CastBallot, CastError, Choices, Eligibility, RollEntry, Store, Turnout, Vote};

pub async fn one_voter_one_ballot_under_1000_concurrent_submissions(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (store, election) = (store.clone(), election.clone());
        tasks.push(tokio::spawn(async move {
            store.cast_ballot(ballot(&election, &voter(1), choices("pres", "ada"))).await
        }));
    }
    let (mut ok, mut already) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(CastError::AlreadyVoted) => already += 1,
            Err(e) => panic!("a submission failed with something other than 'already voted': {e}"),
        }
    }
    assert_eq!((ok, already), (1, 999));
    // Other voters are unaffected, and participation always equals ballots.
    for n in 2..=20 {
        store.cast_ballot(ballot(&election, &voter(n), choices("pres", "ada"))).await.unwrap();
    }
    assert_eq!(store.turnout(&election).await.unwrap(), Turnout { participation: 20, ballots: 20 });
}

pub async fn a_burst_of_voters_casting_twice_stores_each_ballot_once(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let mut tasks = Vec::new();
    for n in 0..1000 {
        for _ in 0..2 {
            let (store, election) = (store.clone(), election.clone());
            tasks.push(tokio::spawn(async move {
                store.cast_ballot(ballot(&election, &voter(n), choices("pres", "ada"))).await
            }));
        }
    }
    let (mut receipts, mut already) = (std::collections::HashSet::new(), 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => assert!(receipts.insert(r.as_str().to_owned()), "a receipt was handed out twice"),
            Err(CastError::AlreadyVoted) => already += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((receipts.len(), already), (1000, 1000));
    assert_eq!(store.turnout(&election).await.unwrap(), Turnout { participation: 1000, ballots: 1000 });
    for r in receipts.iter().take(20) {
        assert!(store.receipt_in_box(&election, &Receipt::parse(r).unwrap()).await.unwrap());
    }
}

pub async fn receipts_are_checkable_per_election(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let other = new_election("other");
    store.create_election(&other, Timestamp::now()).await.unwrap();
    let receipt = store.cast_ballot(ballot(&election, &voter(1), choices("pres", "ada"))).await.unwrap();
    assert!(store.receipt_in_box(&election, &receipt).await.unwrap());
    assert!(!store.receipt_in_box(&other.id, &receipt).await.unwrap(), "receipt found in the wrong election");
    assert!(!store.receipt_in_box(&election, &Receipt::generate()).await.unwrap());
}

pub async fn every_spelling_of_a_voter_is_one_participation_and_one_roll_entry(store: Arc<dyn Store>) {
    let election = demo_election(store.as_ref()).await;
    let spelling = |raw: &str| Username::parse(raw).unwrap();
    let first = store.cast_ballot(ballot(&election, &spelling("ST000001"), choices("pres", "ada"))).await;
    assert!(first.is_ok(), "{first:?}");
    for raw in ["st000001", "St000001", " st000001 "] {
        let again = store.cast_ballot(ballot(&election, &spelling(raw), choices("pres", "ada"))).await;
        assert!(matches!(again, Err(CastError::AlreadyVoted)), "{raw:?}: {again:?}");
    }
    let t = store.turnout(&election).await.unwrap();
    assert_eq!((t.participation, t.ballots), (1, 1));

    let roll = ElectionId::parse("rolled").unwrap();
    let mut e = new_election(roll.as_str());
    e.eligibility = Eligibility::Roll;
    store.create_election(&e, Timestamp::now()).await.unwrap();
    let entry = RollEntry { uid: spelling("Jane.Doe"), email: None, name: None, columns: Default::default() };
    store.import_roll(&roll, &[entry]).await.unwrap();
    for raw in ["jane.doe", "JANE.DOE"] {
        let found = store.roll_memberships(&spelling(raw), std::slice::from_ref(&roll)).await.unwrap();
        assert_eq!(found, [(roll.clone(), None)], "{raw}");
    }
}

pub async fn the_window_is_checked_as_the_ballot_is_recorded(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let s = store.election(&e).await.unwrap().unwrap().schedule;
    let (opens, close) = (s.opens_at, s.closes_at);
    let cast = |n: u32, verified_at: Timestamp, now: Timestamp| CastBallot {
        election: e.clone(),
        voter: Username::parse(&format!("student{n:05}")).unwrap(),
        choices: choices("pres", "ada"),
        constituencies: Vec::new(),
        verified_at,
        now,
    };
    let outside =
        |r: Result<Receipt, CastError>| matches!(r, Err(CastError::OutsideWindow(WindowRefusal::Closed { .. })));

    // Grace: verified before the close, cast within the grace period.
    store.cast_ballot(cast(1, close - 10.seconds(), close + 30.seconds())).await.unwrap();
    // Verified after the close, past the grace, or before the opening: refused.
    assert!(outside(store.cast_ballot(cast(2, close + 5.seconds(), close + 30.seconds())).await));
    assert!(outside(store.cast_ballot(cast(3, close - 10.seconds(), close + 2.minutes())).await));
    let early = store.cast_ballot(cast(4, opens - 1.minute(), opens - 1.minute())).await;
    assert!(matches!(early, Err(CastError::OutsideWindow(WindowRefusal::NotYetOpen { .. }))));
    // The store's window is the latest word: an extension counts at once ...
    let now = Timestamp::now();
    store.extend_close(&e, close + 1.hour(), &audit("extend", &e), now).await.unwrap();
    store.cast_ballot(cast(3, close - 10.seconds(), close + 2.minutes())).await.unwrap();
    // ... and so does an early close.
    let closed = store.close_now(&e, &audit("close", &e), now).await.unwrap();
    assert!(outside(store.cast_ballot(cast(5, closed + 1.second(), closed + 2.seconds())).await));

    let unknown = CastBallot { election: ElectionId::parse("nope").unwrap(), ..cast(6, now, now) };
    assert!(matches!(store.cast_ballot(unknown).await, Err(CastError::UnknownElection)));
    // Refused casts stored nothing.
    assert_eq!(store.turnout(&e).await.unwrap(), Turnout { participation: 2, ballots: 2 });
}

pub async fn the_box_gives_back_every_ballot_as_cast_and_matches_participation(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let ada = || CandidateId::parse("ada").unwrap();
    let pres = || ContestId::parse("pres").unwrap();
    let (mut cast, mut receipts) = (Vec::new(), Vec::new());
    for n in 0..7u32 {
        let c = match n {
            0..=3 => choices("pres", "ada"),
            4 => [(pres(), Vote::Abstain)].into_iter().collect(),
            // The box keeps a vote's order and shape; it is the service that checks rules.
            5 => [(pres(), Vote::Marks(vec![ada(), CandidateId::parse("bob").unwrap()]))].into_iter().collect(),
            _ => Choices::new(),
        };
        receipts.push(store.cast_ballot(ballot(&e, &voter(n), c.clone())).await.unwrap());
        cast.push(c);
    }
    let contents = store.box_contents(&e).await.unwrap();
    assert_eq!((contents.participation, contents.ballots.len()), (7, 7));
    assert!(contents.intact() && contents.unopened.is_empty());
    let key = |c: &Choices| serde_json::to_string(c).unwrap();
    let got: Vec<String> = contents.ballots.iter().map(key).collect();
    let mut want: Vec<String> = cast.iter().map(key).collect();
    want.sort();
    // Every ballot exactly as cast, sorted by its canonical form: no order of casting.
    assert_eq!(got, want, "every ballot comes back exactly as cast, sorted");
    // Every receipt, sorted: nothing pairs the two lists.
    receipts.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(contents.receipts, receipts);
    let other = store.box_contents(&ElectionId::parse("nope").unwrap()).await.unwrap();
    assert!(other.ballots.is_empty() && other.participation == 0);
}
