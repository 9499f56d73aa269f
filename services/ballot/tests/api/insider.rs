//! The insider with the database file: each way of quietly changing the box, or the audit
//! log that records it, is found by `turnout-ballot verify-box --election` or
//! `verify-audit --head`, run as the operator runs them (their own process, the
//! configured secret). The service's box watch writes the running counts and, at close +
//! grace, the roots; the insider edits SQLite directly.

use std::time::Duration;

use deadpool_sqlite::rusqlite::{Connection, params};
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_core::box_record::{COUNTED, SEALED};
use turnout_core::domain::{ElectionId, Receipt};
use turnout_core::session::Role;

use crate::helpers::{TestApp, spawn_app_with};

/// The deployment's secret (the tools refuse the public test secret).
const SECRET: &str = "7d4daf29e200f5d4c23850dd1b30d2b25bc93ecadf970573caf46cc65e1a79d7";

async fn app() -> TestApp {
    spawn_app_with(&[("TURNOUT_SECRET", SECRET), ("TURNOUT_BOX_COUNT_INTERVAL_SECS", "1")]).await
}

fn tool(app: &TestApp, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_turnout-ballot"))
        .args(args)
        .env_clear()
        .env("TURNOUT_SECRET", SECRET)
        .env("TURNOUT_DATABASE", app.database())
        .output()
        .expect("the binary runs");
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

async fn cast(app: &TestApp, n: u32, president: &str) -> Receipt {
    let voter = app.voter_in(n, "demo", &[], true);
    let res = voter
        .post(format!("{}/e/demo/ballot", app.url))
        .json(&json!({ "choices": { "president": president, "treasurer": "eli-novak" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    Receipt::parse(body["receipt"].as_str().unwrap()).unwrap()
}

/// Waits (at most 20 s) for the box watch to write `action` for the demo election with
/// `ballots` ballots.
async fn wait_for(app: &TestApp, action: &str, ballots: u64) {
    for _ in 0..200 {
        let entries = app.store.list_audit(0, 500).await.unwrap();
        if entries.iter().any(|e| {
            e.action == action && e.election.as_deref() == Some("demo") && e.detail["ballots"] == json!(ballots)
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the box watch wrote no {action} with {ballots} ballots");
}

fn remove_one_ballot_and_its_voter(app: &TestApp, receipt: &Receipt, voter: &str) {
    let conn = Connection::open(app.database()).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("DELETE FROM ballots WHERE receipt = ?1", [receipt.as_str()]).unwrap();
    conn.execute("DELETE FROM participation WHERE voter = ?1", [voter]).unwrap();
    conn.execute_batch("COMMIT").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_removed_with_its_voter_while_open_is_found_by_the_running_count() {
    let app = app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let mut receipts = Vec::new();
    for n in 1..=4 {
        receipts.push(cast(&app, n, "amara-okafor").await);
    }
    wait_for(&app, COUNTED, 4).await;
    let (code, out, err) = tool(&app, &["verify-box", "--election", "demo"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("4 ballots, every seal opens, participation 4 = ballots"), "{out}");
    assert!(out.contains("no recount is shown"), "an open box's choices are shown: {out}");
    assert!(!out.contains("amara") && !out.contains("Amara"), "an open box's choices are shown: {out}");

    // The participation and ballot pair of one voter goes: the box still adds up.
    remove_one_ballot_and_its_voter(&app, &receipts[0], "student00001");
    assert_eq!(app.store.turnout(&ElectionId::parse("demo").unwrap()).await.unwrap().ballots, 3);
    let (code, _, err) = tool(&app, &["verify-box", "--election", "demo"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the box holds 3 ballots, but the audit log counted 4 earlier"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_ballot_and_an_added_pair_do_not_open() {
    let app = app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let first = cast(&app, 1, "amara-okafor").await;
    let second = cast(&app, 2, "ben-carter").await;
    let conn = Connection::open(app.database()).unwrap();
    // One ballot's ciphertext altered; a voter and a ballot added, its ciphertext copied
    // from a real one (an insider cannot seal their own).
    conn.execute(
        "UPDATE ballots SET sealed = substr(sealed, 1, 30) || X'FF' || substr(sealed, 32) WHERE receipt = ?1",
        [first.as_str()],
    )
    .unwrap();
    let forged = Receipt::generate();
    conn.execute("INSERT INTO participation (election_id, voter) VALUES ('demo', 'mallory')", []).unwrap();
    conn.execute(
        "INSERT INTO ballots (election_id, receipt, sealed) SELECT election_id, ?1, sealed FROM ballots WHERE receipt = ?2",
        params![forged.as_str(), second.as_str()],
    )
    .unwrap();
    let (code, _, err) = tool(&app, &["verify-box", "--election", "demo"]);
    assert_eq!(code, Some(1), "{err}");
    for receipt in [&first, &forged] {
        assert!(err.contains(&format!("the ballot with receipt {} does not open", receipt.as_str())), "{err}");
    }
    assert!(!err.contains(second.as_str()), "the untouched ballot is reported: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_close_the_roots_are_recorded_shown_and_any_later_change_is_found() {
    let app = app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_secs(4), 0).await;
    let mut receipts = Vec::new();
    for (n, pick) in [(1, "amara-okafor"), (2, "ben-carter"), (3, "amara-okafor")] {
        receipts.push(cast(&app, n, pick).await);
    }
    wait_for(&app, SEALED, 3).await;
    let sealed = app.store.list_audit(0, 500).await.unwrap().into_iter().find(|e| e.action == SEALED).unwrap();

    // The results show the roots the log holds.
    let officer = app.staff("officer1", vec![Role::Officer]).0;
    let results: Value = officer
        .get(format!("{}/officer/elections/demo/results", app.url))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(results["seal"]["receipts_root"], sealed.detail["receipts_root"], "{results}");
    assert_eq!(results["seal"]["ballots_root"], sealed.detail["ballots_root"], "{results}");

    // Each voter's receipt check now proves their receipt is under the published root.
    let published = sealed.detail["receipts_root"].as_str().unwrap();
    for receipt in &receipts {
        let check: Value = reqwest::Client::new()
            .get(format!("{}/e/demo/receipt?receipt={}", app.url, receipt.as_str()))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let proof: turnout_core::receipts_root::ReceiptProof =
            serde_json::from_value(check["receipts_root_proof"].clone()).unwrap();
        assert_eq!(proof.root_hex, published);
        assert!(turnout_core::receipts_root::verify_receipt_proof(receipt, &proof, published));
        assert_eq!(check.as_object().unwrap().len(), 4, "the check shows more than it should: {check}");
    }
    let page = reqwest::Client::new()
        .get(format!("{}/e/demo/receipt?receipt={}", app.url, receipts[0].as_str()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(published) && !page.contains("Amara"), "{page}");

    // The box export as downloaded checks against the published root; edited, it does not.
    let export = officer
        .get(format!("{}/officer/elections/demo/results?download=box", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo-box.jsonl");
    std::fs::write(&file, &export).unwrap();
    let file = file.display().to_string();
    let root = sealed.detail["ballots_root"].as_str().unwrap();
    let (code, out, err) = tool(&app, &["verify-box", &file, "--root", root]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("file SHA-256 {}", sealed.detail["export_sha256"].as_str().unwrap())), "{out}");
    std::fs::write(&file, export.replace("amara-okafor", "ben-carter")).unwrap();
    let (code, _, err) = tool(&app, &["verify-box", &file, "--root", root]);
    assert_eq!(code, Some(1), "an edited export passes: {err}");

    let (code, out, err) = tool(&app, &["verify-box", "--election", "demo"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("the roots match those written to the audit log at close + grace"), "{out}");
    assert!(
        out.contains("president (plurality, 1 seat, 3 voted, 0 abstained, 0 blank): elected Amara Okafor"),
        "{out}"
    );

    // After close: a ballot and its voter removed, so the counts still agree.
    remove_one_ballot_and_its_voter(&app, &receipts[1], "student00002");
    let (code, _, err) = tool(&app, &["verify-box", "--election", "demo"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the box holds 2 ballots; at close it held 3"), "{err}");
    assert!(err.contains("the receipts root is") && err.contains("the ballots root is"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_audit_tail_with_its_counter_lowered_is_found_against_the_logged_head() {
    let app = app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    cast(&app, 1, "amara-okafor").await;
    wait_for(&app, COUNTED, 1).await;
    let head = app.store.audit_head().await.unwrap().unwrap().to_string();
    let (code, out, err) = tool(&app, &["verify-audit", "--head", &head]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("it reaches the anchored head {head}")), "{out}");

    let conn = Connection::open(app.database()).unwrap();
    let last: i64 = conn.query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0)).unwrap();
    conn.execute("DELETE FROM audit_log WHERE seq = ?1", [last]).unwrap();
    conn.execute("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'audit_log'", [last - 1]).unwrap();
    let (code, _, err) = tool(&app, &["verify-audit"]);
    assert_eq!(code, Some(0), "without the anchor the cut chain looks whole: {err}");
    let (code, _, err) = tool(&app, &["verify-audit", "--head", &head]);
    assert_eq!(code, Some(1));
    assert!(err.contains("were removed"), "{err}");
}
