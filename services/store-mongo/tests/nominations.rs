//! What the MongoDB adapter's nominations must prove beyond the conformance suite's rules:
//! the bounds a snapshot transaction could overrun hold under a race (the contest's cap,
//! one live nomination per nominee, a retried submission), and the one-live index is the
//! partial unique one the adapter relies on. Runs when `TURNOUT_TEST_MONGODB_URI` is set;
//! otherwise each test prints a SKIP line naming the variable.

use futures_util::future::join_all;
use jiff::{Timestamp, ToSpan};
use mongodb::bson::{Document, doc};
use turnout_domain::{ContestId, ElectionId, Username, VoterEmail};
use turnout_store::{
    Audit, AuditEntry, Elections, MAX_NOMINATIONS_PER_CONTEST, NewElection, NewNomination, NominationContent,
    NominationError, NominationId, Nominations,
};

#[path = "support/mongo.rs"]
mod support;
use support::{drop_db, fresh};

/// An election taking nominations now (they close in an hour, voting opens in two).
async fn nominating(store: &turnout_store_mongo::MongoStore, now: Timestamp) -> ElectionId {
    let e: NewElection = serde_json::from_value(serde_json::json!({
        "id": "noms",
        "title": "Union 2026",
        "opens_at": (now + 2.hours()).to_string(),
        "closes_at": (now + 3.hours()).to_string(),
        "time_zone": "Europe/London",
        "nominations": { "opens_at": (now - 1.hour()).to_string(), "closes_at": (now + 1.hour()).to_string() },
        "contests": [{ "id": "pres", "title": "President", "candidates": [] }]
    }))
    .unwrap();
    store.create_election(&e, now).await.unwrap();
    e.id
}

fn nomination(election: &ElectionId, n: u32) -> NewNomination {
    NewNomination {
        id: NominationId::random(),
        election: election.clone(),
        contest: ContestId::parse("pres").unwrap(),
        nominee: Username::parse(&format!("student{n:05}")).unwrap(),
        email: VoterEmail::parse(&format!("s{n}@roll.example")).unwrap(),
        content: NominationContent { name: format!("Student {n}"), manifesto: "Vote for me.".into(), photo: None },
    }
}

fn audit(election: &ElectionId) -> AuditEntry {
    AuditEntry {
        actor: "student".into(),
        action: "nomination.submitted".into(),
        election: Some(election.clone()),
        detail: serde_json::json!({}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_contests_last_place_goes_to_one_of_ten_racing_submissions() {
    let Some(store) = fresh("the_contests_last_place_goes_to_one_of_ten_racing_submissions").await else { return };
    let now = Timestamp::now();
    let e = nominating(&store, now).await;
    // All but one place taken, written as the adapter writes them.
    let taken: Vec<Document> = (0..MAX_NOMINATIONS_PER_CONTEST - 1)
        .map(|n| turnout_store_mongo::docs::nomination(&nomination(&e, n), now.as_second()))
        .collect();
    store.database().collection::<Document>("nominations").insert_many(taken).await.unwrap();

    let racing: Vec<NewNomination> = (1000..1010).map(|n| nomination(&e, n)).collect();
    let line = audit(&e);
    let raced = join_all(racing.iter().map(|n| store.submit_nomination(n, None, &line, now))).await;
    assert_eq!(raced.iter().filter(|r| r.is_ok()).count(), 1, "{raced:?}");
    assert!(
        raced.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, NominationError::Refused(_))),
        "{raced:?}"
    );
    let live = store
        .database()
        .collection::<Document>("nominations")
        .count_documents(doc! { "election": e.as_str(), "live": true })
        .await
        .unwrap();
    assert_eq!(live, u64::from(MAX_NOMINATIONS_PER_CONTEST));
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_live_nomination_per_nominee_and_a_retried_submission_is_the_same_one_under_a_race() {
    let Some(store) =
        fresh("one_live_nomination_per_nominee_and_a_retried_submission_is_the_same_one_under_a_race").await
    else {
        return;
    };
    let now = Timestamp::now();
    let e = nominating(&store, now).await;

    // One student submitting five different nominations for one contest at once.
    let five: Vec<NewNomination> = (0..5).map(|_| nomination(&e, 1)).collect();
    let line = audit(&e);
    let raced = join_all(five.iter().map(|n| store.submit_nomination(n, None, &line, now))).await;
    assert_eq!(raced.iter().filter(|r| r.is_ok()).count(), 1, "{raced:?}");
    assert!(raced.iter().filter_map(|r| r.as_ref().err()).all(|e| matches!(e, NominationError::AlreadyNominated)));

    // One submission sent five times at once: one nomination, every answer it.
    let once = nomination(&e, 2);
    let raced = join_all((0..5).map(|_| store.submit_nomination(&once, None, &line, now))).await;
    assert!(raced.iter().all(|r| r.as_ref().is_ok_and(|n| n.id == once.id)), "{raced:?}");
    let submitted =
        store.list_audit(0, 100).await.unwrap().iter().filter(|r| r.action == "nomination.submitted").count();
    assert_eq!(submitted, 2, "each nomination audited once");

    // The index behind it: unique over the live ones only.
    let indexes: Vec<mongodb::IndexModel> = {
        use futures_util::TryStreamExt;
        store
            .database()
            .collection::<Document>("nominations")
            .list_indexes()
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    let one_live = indexes
        .iter()
        .find(|i| i.options.as_ref().and_then(|o| o.name.as_deref()) == Some("one_live"))
        .expect("the one-live index");
    let options = one_live.options.as_ref().unwrap();
    assert_eq!(one_live.keys, doc! { "election": 1, "contest": 1, "nominee": 1 });
    assert_eq!((options.unique, options.partial_filter_expression.clone()), (Some(true), Some(doc! { "live": true })));
    drop_db(&store).await;
}
