//! The insider with the database: what someone who can read or write MongoDB (its
//! collections, its oplog, a backup), but does not hold `TURNOUT_SECRET`, can learn or
//! change without being found. Runs when `TURNOUT_TEST_MONGODB_URI` is set (otherwise a
//! SKIP line); each test uses a database of its own and drops it.

use futures_util::TryStreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Document, Timestamp as BsonTs, doc};
use turnout_domain::{ElectionId, Receipt};
use turnout_store::conformance::secrecy::{
    CHANCE_PAIRS, SECRET_BALLOTS, assert_unopened, cast_secret_ballots, markers, paired_by_order, unkeyed_audit_hash,
};
use turnout_store::conformance::{audit, ballot, choices, demo_election, voter};
use turnout_store::{Audit, BallotBox, Store, StoreKeys, Upgrades};
use turnout_store_mongo::{MongoSettings, MongoStore, uri_with_database};

#[path = "support/mongo.rs"]
mod support;
use support::{drop_db, fresh};

async fn all(store: &MongoStore, coll: &str, sort: Option<Document>) -> Vec<Document> {
    let c = store.database().collection::<Document>(coll);
    let found = match sort {
        Some(s) => c.find(doc! {}).sort(s).await,
        None => c.find(doc! {}).await,
    };
    found.unwrap().try_collect().await.unwrap()
}

fn ids(docs: &[Document], field: &str) -> Vec<String> {
    docs.iter().map(|d| d.get_document("_id").unwrap().get_str(field).unwrap().to_owned()).collect()
}

fn as_arc(store: &std::sync::Arc<MongoStore>) -> std::sync::Arc<dyn Store> {
    store.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_collection_nor_the_oplog_holds_a_choice_or_the_order_of_casting() {
    let Some(store) = fresh("no_collection_nor_the_oplog_holds_a_choice_or_the_order_of_casting").await else { return };
    let started = jiff::Timestamp::now().as_second() as u32;
    let e = demo_election(store.as_ref()).await;
    let cast = cast_secret_ballots(&as_arc(&store), &e).await;

    // Every document of every collection of the database, and every oplog entry since
    // the test began, as text.
    let db = store.database();
    let mut everything = String::new();
    for name in db.list_collection_names().await.unwrap() {
        for d in all(&store, &name, None).await {
            everything.push_str(&format!("{d}\n"));
        }
    }
    let oplog: Vec<Document> = store
        .client()
        .database("local")
        .collection::<Document>("oplog.rs")
        .find(doc! { "ts": { "$gte": BsonTs { time: started, increment: 0 } } })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(oplog.len() >= 100, "the oplog holds each cast's writes ({} entries)", oplog.len());
    for d in &oplog {
        everything.push_str(&format!("{d}\n"));
    }
    for n in 0..SECRET_BALLOTS {
        for m in markers(n) {
            assert!(!everything.contains(&m), "{m} (a choice) is readable in the database or its oplog");
        }
    }

    // The box is clustered by `_id` (election, random receipt).
    let spec = db.list_collections().filter(doc! { "name": "sealed_ballots" }).await.unwrap();
    let spec: Vec<_> = spec.try_collect().await.unwrap();
    assert!(spec[0].options.clustered_index.is_some(), "sealed_ballots is not clustered: {:?}", spec[0].options);

    // Every order the database offers, participation against ballots.
    let voters_orders = [
        ids(&all(&store, "participation", None).await, "v"),
        ids(&all(&store, "participation", Some(doc! { "_id": 1 })).await, "v"),
        ids(&all(&store, "participation", Some(doc! { "_id": -1 })).await, "v"),
    ];
    let mut ballot_orders = vec![
        ("_id", ids(&all(&store, "sealed_ballots", Some(doc! { "_id": 1 })).await, "r")),
        ("_id descending", ids(&all(&store, "sealed_ballots", Some(doc! { "_id": -1 })).await, "r")),
    ];
    let natural = ids(&all(&store, "sealed_ballots", None).await, "r");
    let build = store.client().database("admin").run_command(doc! { "buildInfo": 1 }).await.unwrap();
    if build.contains_key("secantusVersion") {
        // MongoDB keeps a clustered collection in `_id` order; SecantusDB, the test
        // server, keeps every collection in insertion order whatever its options. Against
        // it the natural order is not checked (the seal is what protects there): run
        // against a MongoDB replica set to check it.
        println!(
            "NOTE: SecantusDB keeps clustered collections in insertion order; natural order checked on MongoDB only"
        );
    } else {
        ballot_orders.push(("natural", natural));
    }
    for voters in &voters_orders {
        assert_eq!(voters.len(), 50);
        for (order, receipts) in &ballot_orders {
            let paired = paired_by_order(&cast, voters, receipts);
            assert!(paired <= CHANCE_PAIRS, "{paired} of 50 ballots line up with their voter in {order} order");
        }
    }
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changed_copied_or_forged_ballots_do_not_open_and_are_never_counted() {
    let Some(store) = fresh("changed_copied_or_forged_ballots_do_not_open_and_are_never_counted").await else { return };
    let e = demo_election(store.as_ref()).await;
    let mut receipts = Vec::new();
    for n in 0..3 {
        receipts.push(store.cast_ballot(ballot(&e, &voter(n), choices("pres", "ada"))).await.unwrap());
    }
    let db = store.database();
    let box_ = db.collection::<Document>("sealed_ballots");
    let id = |r: &Receipt| doc! { "_id": { "e": "demo", "r": r.as_str() } };
    // Change one ballot: flip a byte of its ciphertext.
    let first = box_.find_one(id(&receipts[0])).await.unwrap().unwrap();
    let mut bytes = first.get_binary_generic("s").unwrap().clone();
    bytes[40] ^= 1;
    box_.update_one(id(&receipts[0]), doc! { "$set": { "s": Binary { subtype: BinarySubtype::Generic, bytes } } })
        .await
        .unwrap();
    // Add a participation + ballot pair: a real ballot's ciphertext under a new receipt.
    let copy = box_.find_one(id(&receipts[1])).await.unwrap().unwrap();
    let forged = Receipt::generate();
    db.collection::<Document>("participation")
        .insert_one(doc! { "_id": { "e": "demo", "v": "mallory" } })
        .await
        .unwrap();
    box_.insert_one(doc! { "_id": { "e": "demo", "r": forged.as_str() }, "s": copy.get("s").unwrap().clone() })
        .await
        .unwrap();

    let contents = store.box_contents(&e).await.unwrap();
    assert_unopened(&contents, &[&receipts[0], &forged], 4);

    // Opened with another secret, nothing opens.
    let same = uri_with_database(&std::env::var(support::VAR).unwrap(), db.name()).unwrap();
    let other = MongoStore::open(&MongoSettings::new(same), StoreKeys::new([1; 32], [9; 32])).await.unwrap();
    let contents = other.box_contents(&e).await.unwrap();
    assert_eq!((contents.ballots.len(), contents.unopened.len()), (0, 4));
    drop_db(&store).await;
}

/// Rewrites the whole chain with unkeyed hashes, as an insider would after an edit.
async fn rehash_unkeyed(store: &MongoStore) {
    let coll = store.database().collection::<Document>("audit");
    let mut prev = String::new();
    for d in all(store, "audit", Some(doc! { "_id": 1 })).await {
        let text = |k: &str| d.get_str(k).unwrap_or("").to_owned();
        let at = d.get_i64("at").unwrap();
        let hash = unkeyed_audit_hash(&prev, at, &text("actor"), &text("action"), &text("e"), &text("detail"));
        coll.update_one(
            doc! { "_id": d.get("_id").unwrap().clone() },
            doc! { "$set": { "prev_hash": &prev, "hash": &hash } },
        )
        .await
        .unwrap();
        prev = hash;
    }
    store
        .database()
        .collection::<Document>("audit_head")
        .update_one(doc! { "_id": "head" }, doc! { "$set": { "hash": &prev } })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_audit_chain_is_found_and_a_cut_tail_by_the_anchored_head() {
    let Some(store) = fresh("an_edited_audit_chain_is_found_and_a_cut_tail_by_the_anchored_head").await else { return };
    let e = demo_election(store.as_ref()).await;
    for _ in 0..3 {
        store.append_audit(&audit("window.extended", &e), jiff::Timestamp::now()).await.unwrap();
    }
    let anchored = store.audit_head().await.unwrap().unwrap();
    let db = store.database();
    // Cut the tail and lower the head document, so the store itself sees no gap.
    db.collection::<Document>("audit").delete_one(doc! { "_id": 3_i64 }).await.unwrap();
    let two = all(&store, "audit", Some(doc! { "_id": -1 })).await[0].get_str("hash").unwrap().to_owned();
    db.collection::<Document>("audit_head")
        .update_one(doc! { "_id": "head" }, doc! { "$set": { "seq": 2_i64, "hash": two } })
        .await
        .unwrap();
    assert_eq!(store.verify_audit(None).await.unwrap().broken_at, None, "without an anchor the cut looks whole");
    let v = store.verify_audit(Some(&anchored)).await.unwrap();
    assert_eq!(v.broken_at, Some(3), "{v:?}");

    // Edit an entry and recompute the unkeyed chain.
    db.collection::<Document>("audit")
        .update_one(doc! { "_id": 1_i64 }, doc! { "$set": { "actor": "someone-else" } })
        .await
        .unwrap();
    rehash_unkeyed(&store).await;
    let v = store.verify_audit(None).await.unwrap();
    assert_eq!(v.broken_at, Some(1), "{v:?}");
    assert!(v.problem.unwrap().contains("keyed hash"));
    drop_db(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plaintext_ballots_and_an_unkeyed_chain_are_sealed_and_keyed_once_by_the_upgrade() {
    let Some(store) = fresh("plaintext_ballots_and_an_unkeyed_chain_are_sealed_and_keyed_once_by_the_upgrade").await
    else {
        return;
    };
    let db = store.database();
    // As the version before sealing left it.
    db.collection::<Document>("migrations")
        .delete_many(doc! { "_id": { "$in": ["seal-ballots-v1", "keyed-audit-chain-v1"] } })
        .await
        .unwrap();
    let receipt = Receipt::generate();
    db.collection::<Document>("ballots")
        .insert_one(doc! { "_id": { "e": "demo", "r": receipt.as_str() }, "choices": { "pres": "zqxoldchoice" } })
        .await
        .unwrap();
    db.collection::<Document>("participation")
        .insert_one(doc! { "_id": { "e": "demo", "v": "old.voter" } })
        .await
        .unwrap();
    let mut prev = String::new();
    for n in 1..=2_i64 {
        let hash = unkeyed_audit_hash(&prev, n, "admin1", "election.created", "demo", "{}");
        db.collection::<Document>("audit")
            .insert_one(doc! {
                "_id": n, "at": n, "actor": "admin1", "action": "election.created", "e": "demo",
                "detail": "{}", "prev_hash": &prev, "hash": &hash,
            })
            .await
            .unwrap();
        prev = hash;
    }
    db.collection::<Document>("audit_head")
        .update_one(doc! { "_id": "head" }, doc! { "$set": { "seq": 2_i64, "hash": &prev } })
        .upsert(true)
        .await
        .unwrap();

    let same = uri_with_database(&std::env::var(support::VAR).unwrap(), db.name()).unwrap();
    let reopened = MongoStore::open(&MongoSettings::new(same.clone()), StoreKeys::for_tests()).await.unwrap();
    // Opening does not upgrade; the operator's upgrade does.
    assert_eq!(reopened.pending_upgrades().await.unwrap().len(), 3);
    let report = reopened.run_upgrades().await.unwrap();
    assert!(report.iter().any(|l| l.contains("election demo: 1 ballots sealed, 1 voters tagged")), "{report:?}");
    assert!(reopened.pending_upgrades().await.unwrap().is_empty());
    let e = ElectionId::parse("demo").unwrap();
    let contents = reopened.box_contents(&e).await.unwrap();
    assert!(contents.intact(), "{contents:?}");
    assert_eq!(contents.ballots, [choices("pres", "zqxoldchoice")]);
    assert!(!db.list_collection_names().await.unwrap().iter().any(|c| c == "ballots"), "the plaintext box stays");
    for name in db.list_collection_names().await.unwrap() {
        for d in all(&store, &name, None).await {
            assert!(!d.to_string().contains("zqxoldchoice"), "plaintext left in {name}: {d}");
        }
    }
    let v = reopened.verify_audit(None).await.unwrap();
    assert_eq!((v.entries, v.broken_at), (4, None), "{v:?}");
    let last = reopened.list_audit(2, 2).await.unwrap();
    assert_eq!(last[0].action, "audit.chain_keyed");
    assert_eq!(last[0].detail["unkeyed_chain"], "intact");
    assert_eq!(last[1].action, "box.upgraded");
    // Once: a second run does nothing, and a faked one (the markers removed, a forged
    // ballot and voter put back) is refused.
    assert!(reopened.run_upgrades().await.unwrap().is_empty());
    reopened.append_audit(&audit("box.counted", &e), jiff::Timestamp::now()).await.unwrap();
    db.collection::<Document>("migrations").delete_many(doc! {}).await.unwrap();
    db.collection::<Document>("ballots")
        .insert_one(doc! { "_id": { "e": "demo", "r": Receipt::generate().as_str() }, "choices": { "pres": "bob" } })
        .await
        .unwrap();
    db.collection::<Document>("participation")
        .insert_one(doc! { "_id": { "e": "demo", "v": "mallory" } })
        .await
        .unwrap();
    let err = reopened.run_upgrades().await.unwrap_err().to_string();
    assert!(err.contains("only a keyed chain holds"), "{err}");
    db.collection::<Document>("migrations").insert_one(doc! { "_id": "keyed-audit-chain-v1" }).await.unwrap();
    let err = reopened.run_upgrades().await.unwrap_err().to_string();
    assert!(err.contains("already records its sealed box"), "{err}");
    let again = MongoStore::open(&MongoSettings::new(same), StoreKeys::for_tests()).await.unwrap();
    let contents = again.box_contents(&e).await.unwrap();
    assert_eq!((contents.ballots.len(), contents.untagged.as_slice()), (1, ["mallory".to_owned()].as_slice()));
    drop_db(&store).await;
}
