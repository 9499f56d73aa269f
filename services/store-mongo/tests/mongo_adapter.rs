//! What only the MongoDB adapter has to prove (the Store's rules run against it in the
//! conformance suite, `tests/conformance.rs`): the documents hold no voter beside a
//! ballot, roll entries carry their address, a released message goes back uncounted, and
//! indexes are made at start from any number of processes. Runs when `TURNOUT_TEST_MONGODB_URI` is
//! set (`scripts/test.sh` starts a SecantusDB server for it); otherwise each test prints
//! a SKIP line naming the variable. Each test uses a database of its own and drops it.

use std::time::Duration;

use futures_util::TryStreamExt;
use jiff::Timestamp;
use mongodb::bson::{Document, doc};
use turnout_domain::schedule::WindowRefusal;
use turnout_domain::{ElectionId, Receipt, Username, VoterEmail};
use turnout_store::{
    BallotBox, CastBallot, CastError, Codes, Elections, NewElection, Outbox, Roll, RollEntry, StoreKeys,
};
use turnout_store_mongo::{MongoSettings, MongoStore, uri_with_database};

#[path = "support/mongo.rs"]
mod support;
use support::{drop_db, fresh};

fn election(id: &str, opens: &str, closes: &str) -> NewElection {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "title": "Student Union 2026",
        "opens_at": opens,
        "closes_at": closes,
        "time_zone": "Europe/London",
        "grace_secs": 60,
        "eligibility": {"kind": "roll"},
        "contests": [{
            "id": "pres", "title": "President",
            "candidates": [
                {"id": "ada", "name": "Ada", "status": "approved"},
                {"id": "bob", "name": "Bob", "status": "pending"}
            ]
        }]
    }))
    .unwrap()
}

fn open_now(id: &str) -> NewElection {
    election(id, "2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z")
}

fn voter(n: u32) -> Username {
    Username::parse(&format!("student{n:05}")).unwrap()
}

/// A cast of Ada for president, by a voter verified just now (the conformance suite's).
fn cast(election: &ElectionId, voter: &Username) -> CastBallot {
    turnout_store::conformance::ballot(election, voter, turnout_store::conformance::choices("pres", "ada"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_window_is_checked_as_the_ballot_is_recorded_and_ballots_hold_no_voter() {
    let Some(store) = fresh("the_window_is_checked_as_the_ballot_is_recorded_and_ballots_hold_no_voter").await else {
        return;
    };
    store
        .create_election(&election("early", "2035-01-01T00:00:00Z", "2036-01-01T00:00:00Z"), Timestamp::now())
        .await
        .unwrap();
    store
        .create_election(&election("over", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"), Timestamp::now())
        .await
        .unwrap();
    store.create_election(&open_now("open"), Timestamp::now()).await.unwrap();
    let refusal = |r: Result<Receipt, CastError>| match r {
        Err(CastError::OutsideWindow(WindowRefusal::NotYetOpen { .. })) => "window_not_open",
        Err(CastError::OutsideWindow(WindowRefusal::Closed { .. })) => "window_closed",
        other => panic!("expected a window refusal, got {other:?}"),
    };
    assert_eq!(
        refusal(store.cast_ballot(cast(&ElectionId::parse("early").unwrap(), &voter(1))).await),
        "window_not_open"
    );
    assert_eq!(refusal(store.cast_ballot(cast(&ElectionId::parse("over").unwrap(), &voter(1))).await), "window_closed");
    let unknown = store.cast_ballot(cast(&ElectionId::parse("nope").unwrap(), &voter(1))).await;
    assert!(matches!(unknown, Err(CastError::UnknownElection)), "{unknown:?}");
    // A refused cast wrote nothing.
    let t = store.turnout(&ElectionId::parse("over").unwrap()).await.unwrap();
    assert_eq!((t.participation, t.ballots), (0, 0));

    store.cast_ballot(cast(&ElectionId::parse("open").unwrap(), &voter(7))).await.unwrap();
    let ballots: Vec<Document> = {
        store
            .database()
            .collection::<Document>("sealed_ballots")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(ballots.len(), 1);
    let text = ballots[0].to_string();
    assert!(!text.contains("student00007"), "a ballot names its voter: {text}");
    assert_eq!(ballots[0].keys().collect::<Vec<_>>(), ["_id", "s"], "review for voter linkage: {text}");
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roll_imports_are_idempotent_and_memberships_carry_the_address() {
    let Some(store) = fresh("roll_imports_are_idempotent_and_memberships_carry_the_address").await else { return };
    let (a, b) = (ElectionId::parse("a").unwrap(), ElectionId::parse("b").unwrap());
    let entry = |n: u32, email: Option<&str>| RollEntry {
        uid: voter(n),
        email: email.map(|e| VoterEmail::parse(e).unwrap()),
        name: None,
        columns: Default::default(),
    };
    let first = store.import_roll(&a, &[entry(1, Some("one@roll.example")), entry(2, None)]).await.unwrap();
    assert_eq!((first.added, first.updated, first.unchanged), (2, 0, 0));
    let again =
        store.import_roll(&a, &[entry(1, Some("one@roll.example")), entry(2, Some("two@roll.example"))]).await.unwrap();
    assert_eq!((again.added, again.updated, again.unchanged), (0, 1, 1));
    store.import_roll(&b, &[entry(1, None)]).await.unwrap();

    let mut found = store.roll_memberships(&voter(1), &[a.clone(), b.clone()]).await.unwrap();
    found.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    assert_eq!(found, [(a.clone(), Some(VoterEmail::parse("one@roll.example").unwrap())), (b.clone(), None)]);
    assert_eq!(store.roll_memberships(&voter(1), std::slice::from_ref(&b)).await.unwrap().len(), 1);
    assert!(store.roll_memberships(&voter(3), &[a, b]).await.unwrap().is_empty());
    drop_db(&store).await;
}

fn email(n: u32) -> VoterEmail {
    VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap()
}

fn otp_policy() -> turnout_store::OtpPolicy {
    turnout_store::OtpPolicy {
        validity: Duration::from_secs(600),
        cooldown: Duration::from_secs(60),
        max_sends: 3,
        max_attempts: 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_released_message_goes_back_at_once_without_counting_an_attempt() {
    use turnout_store::{MailOutcome, MailResult, MailState};
    let Some(store) = fresh("a_released_message_goes_back_at_once_without_counting_an_attempt").await else { return };
    store.create_election(&open_now("council"), Timestamp::now()).await.unwrap();
    let id = ElectionId::parse("council").unwrap();
    let now = Timestamp::now();
    store.issue_otp(&id, &voter(1), &email(1), otp_policy(), now).await.unwrap();
    let lease = Duration::from_secs(30);
    let claimed = store.claim_mail("worker-a", 10, lease, now).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .record_outcomes("worker-a", &[MailOutcome { id: claimed[0].id, result: MailResult::Released }], now)
        .await
        .unwrap();
    let shown = store.otp_status(&id, &voter(1)).await.unwrap().unwrap().mail.unwrap();
    assert_eq!((shown.state, shown.attempts), (MailState::Queued, 0));
    let again = store.claim_mail("worker-b", 10, lease, now).await.unwrap();
    assert_eq!(again.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(claimed[0].id, 0)]);
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn indexes_are_created_at_start_idempotently_from_every_process() {
    let Some(store) = fresh("indexes_are_created_at_start_idempotently_from_every_process").await else { return };
    // Two more processes starting at once on the same database.
    let same = uri_with_database(&std::env::var(support::VAR).unwrap(), store.database().name()).unwrap();
    let settings = MongoSettings::new(same);
    let (a, b) = tokio::join!(
        MongoStore::open(&settings, StoreKeys::for_tests()),
        MongoStore::open(&settings, StoreKeys::for_tests())
    );
    a.unwrap();
    b.unwrap();
    let names = |c: &'static str| {
        let store = store.clone();
        async move { store.database().collection::<Document>(c).list_index_names().await.unwrap() }
    };
    let outbox = names("outbox").await;
    for wanted in ["due", "leases", "by_voter", "by_election"] {
        assert!(outbox.iter().any(|n| n == wanted), "outbox lacks {wanted}: {outbox:?}");
    }
    assert!(names("login_failures").await.iter().any(|n| n == "expiry"), "no TTL index on login failures");
    assert!(names("voter_roll").await.iter().any(|n| n == "by_uid"));
    drop_db(&store).await;
}

/// Fault injection (no server needed): a MongoDB that accepts connections and never
/// answers costs the caller its deadline, then "store unavailable" (a 503), not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_unavailable_within_the_deadline() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket); // accepted, never read or answered
        }
    });
    let mut settings = MongoSettings::new(format!("mongodb://127.0.0.1:{port}/turnout"));
    settings.op_timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let opened = MongoStore::open(&settings, StoreKeys::for_tests()).await;
    let waited = started.elapsed();
    assert!(matches!(opened, Err(turnout_store::StoreError::Unavailable(_))), "{:?}", opened.err());
    assert!(waited < Duration::from_secs(5), "waited {waited:?} for a silent server");
    held.abort();
}

/// Documents written under another spelling of a voter before usernames were folded are
/// re-keyed once, at start; where the folded key exists already, the other stays (it was
/// a second ballot), so participation = ballots holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn voters_stored_under_other_spellings_are_folded_once_at_start() {
    let Some(store) = fresh("voters_stored_under_other_spellings_are_folded_once_at_start").await else { return };
    let db = store.database();
    db.collection::<Document>("migrations").delete_many(doc! {}).await.unwrap();
    let participation = db.collection::<Document>("participation");
    participation
        .insert_many([
            doc! { "_id": { "e": "demo", "v": "ST000001" } },
            doc! { "_id": { "e": "demo", "v": "st000002" } },
            doc! { "_id": { "e": "demo", "v": "St000002" } },
        ])
        .await
        .unwrap();
    db.collection::<Document>("voter_roll")
        .insert_one(doc! { "_id": { "e": "demo", "u": "Jane.Doe" }, "email": "jane@u.test" })
        .await
        .unwrap();
    db.collection::<Document>("outbox").insert_one(doc! { "_id": "m1", "e": "demo", "v": " ST000001" }).await.unwrap();

    let same = uri_with_database(&std::env::var(support::VAR).unwrap(), db.name()).unwrap();
    let reopened = MongoStore::open(&MongoSettings::new(same), StoreKeys::for_tests()).await.unwrap();

    let mut voters: Vec<String> = participation
        .find(doc! {})
        .await
        .unwrap()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get_document("_id").unwrap().get_str("v").unwrap().to_owned())
        .collect();
    voters.sort();
    assert_eq!(voters, ["St000002", "st000001", "st000002"], "the colliding spelling stays");
    let roll = Username::parse("jane.doe").unwrap();
    let demo = ElectionId::parse("demo").unwrap();
    let found = Roll::roll_memberships(&reopened, &roll, std::slice::from_ref(&demo)).await;
    assert_eq!(found.unwrap(), [(demo, Some(VoterEmail::parse("jane@u.test").unwrap()))]);
    let mail = db.collection::<Document>("outbox").find_one(doc! { "_id": "m1" }).await.unwrap().unwrap();
    assert_eq!(mail.get_str("v").unwrap(), "st000001");
    assert!(db.collection::<Document>("migrations").find_one(doc! {}).await.unwrap().is_some(), "recorded once");
    drop_db(&store).await;
}
