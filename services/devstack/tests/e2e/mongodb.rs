//! The whole stack on the MongoDB store: the three services and the CLI with
//! `TURNOUT_STORE=mongodb`, against `TURNOUT_TEST_MONGODB_URI` (a database of its own).
//! Without the variable: a SKIP line.

use crate::helpers::TestStack;
use crate::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_student_votes_end_to_end_on_the_mongodb_store() {
    let Ok(base) = std::env::var("TURNOUT_TEST_MONGODB_URI") else {
        println!(
            "SKIP a_student_votes_end_to_end_on_the_mongodb_store: set TURNOUT_TEST_MONGODB_URI (or run scripts/test.sh)"
        );
        return;
    };
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).unwrap();
    let db: String = format!("turnout_e2e_{}", tag.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let uri = turnout_core::store::mongo::uri_with_database(&base, &db).expect("a mongodb:// URI");
    let stack = TestStack::start_with(vec![
        ("TURNOUT_STORE".into(), "mongodb".into()),
        ("TURNOUT_MONGODB_URI".into(), uri),
        // The test server is a Python process: generous deadlines (see core's tests).
        ("TURNOUT_MONGODB_TIMEOUT_MS".into(), "60000".into()),
        ("TURNOUT_BOX_COUNT_INTERVAL_SECS".into(), "1".into()),
    ])
    .await;

    scenarios::json_flow_login_code_vote_receipt_and_second_vote_refused(&stack).await;
    scenarios::two_hundred_concurrent_votes_for_one_voter_store_one_ballot(&stack).await;
    // Nothing went to a SQLite file.
    assert!(!stack.stack.dir.join("turnout.db").exists(), "a SQLite file was created beside the MongoDB store");

    // The insider with the database: one voter's participation and ballot removed
    // together, so the box still adds up, is found against the running count.
    let verify_box = || {
        let out = std::process::Command::new(stack.stack.bin_dir.join("turnout-ballot"))
            .args(["verify-box", "--election", "demo"])
            .envs(stack.stack.env.iter().cloned())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mut counted = false;
    for _ in 0..100 {
        let (code, out, err) = verify_box();
        assert_eq!(code, Some(0), "{err}");
        if out.contains("the audit log last counted 2 ballots") {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(counted, "the box watch never counted the two ballots");
    let store = turnout_core::store::mongo::MongoStore::open(
        &turnout_core::store::mongo::MongoSettings::new(
            turnout_core::store::mongo::uri_with_database(&base, &db).unwrap(),
        ),
        stack.stack.store_keys(),
    )
    .await
    .unwrap();
    let db = store.database();
    let voter = db
        .collection::<mongodb::bson::Document>("participation")
        .find_one(mongodb::bson::doc! {})
        .await
        .unwrap()
        .unwrap();
    db.collection::<mongodb::bson::Document>("participation")
        .delete_one(mongodb::bson::doc! { "_id": voter.get("_id").unwrap().clone() })
        .await
        .unwrap();
    db.collection::<mongodb::bson::Document>("sealed_ballots").delete_one(mongodb::bson::doc! {}).await.unwrap();
    let (code, _, err) = verify_box();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the box holds 1 ballots, but the audit log counted 2 earlier"), "{err}");
}
