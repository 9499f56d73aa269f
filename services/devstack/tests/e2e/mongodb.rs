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
    ])
    .await;

    scenarios::json_flow_login_code_vote_receipt_and_second_vote_refused(&stack).await;
    scenarios::two_hundred_concurrent_votes_for_one_voter_store_one_ballot(&stack).await;
    // Nothing went to a SQLite file.
    assert!(!stack.stack.dir.join("turnout.db").exists(), "a SQLite file was created beside the MongoDB store");
}
