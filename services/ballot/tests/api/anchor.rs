//! The audit chain's head leaves the database by mail: the box watch queues a notice to
//! every officer seen lately and to `TURNOUT_AUDIT_ANCHOR_EMAIL` when voting opens, when
//! the window changes and once the box is sealed; each head checks against the chain.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::json;
use turnout_core::box_record::SEALED;
use turnout_core::domain::{Username, VoterEmail};
use turnout_core::session::Role;
use turnout_core::store::{AuditHead, NoticeRow, StaffContact};

use crate::helpers::{TestApp, spawn_app_with};

/// Waits (at most 20 s) for the notices whose key starts with `prefix`.
async fn notices(app: &TestApp, prefix: &str, n: usize) -> Vec<NoticeRow> {
    for _ in 0..200 {
        let rows = app.store.notices(prefix, 100).await.unwrap();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {n} notices {prefix}*: {:?}", app.store.notices("anchor:", 100).await.unwrap());
}

/// The head a notice's body names, checked against the chain as it is now.
async fn head_in(app: &TestApp, row: &NoticeRow) -> AuditHead {
    let line = row.body.lines().map(str::trim).find(|l| l.contains(':') && l.len() > 60 && !l.contains(' ')).unwrap();
    let head: AuditHead = line.parse().unwrap();
    let verified = app.store.verify_audit(Some(&head)).await.unwrap();
    assert!(
        verified.broken_at.is_none(),
        "the mailed head {head} is not one the chain reaches: {:?}",
        verified.problem
    );
    assert!(row.body.contains(&format!("verify-audit --head {head}")), "{}", row.body);
    head
}

fn contact(name: &str, officer: bool, seen_at: Timestamp) -> StaffContact {
    StaffContact {
        username: Username::parse(name).unwrap(),
        email: VoterEmail::parse(&format!("{name}@u.test")).unwrap(),
        admin: !officer,
        officer,
        seen_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_is_mailed_at_opening_at_a_window_change_and_with_the_roots_at_the_seal() {
    let app = spawn_app_with(&[("TURNOUT_AUDIT_ANCHOR_EMAIL", "auditor@union.test, Auditor@union.test")]).await;
    let now = Timestamp::now();
    app.store.record_staff_contact(&contact("officer1", true, now)).await.unwrap();
    app.store.record_staff_contact(&contact("admin1", false, now)).await.unwrap();
    // An officer not seen for 100 days may have lost the role since.
    app.store.record_staff_contact(&contact("officer9", true, now - SignedDuration::from_hours(2400))).await.unwrap();
    app.election("demo", SignedDuration::from_mins(-1), SignedDuration::from_mins(30), 0).await;

    let opened = notices(&app, "anchor:demo:opened", 2).await;
    let mut to: Vec<&str> = opened.iter().map(|r| r.recipient.as_str()).collect();
    to.sort();
    assert_eq!(to, ["auditor@union.test", "officer1@u.test"], "officers seen lately and the anchor list, once each");
    assert!(opened[0].subject.contains("opening"), "{}", opened[0].subject);
    head_in(&app, &opened[0]).await;

    // An officer closes the election early: a window change, then the seal.
    let (officer, token) = app.staff("officer1", vec![Role::Officer]);
    let res = officer
        .post(format!("{}/officer/elections/demo/close", app.url))
        .header("x-csrf-token", &token)
        .json(&json!({ "confirm": "demo", "reason": "everyone voted" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let changed = notices(&app, "anchor:demo:window:", 2).await;
    assert!(changed[0].body.contains("was closed early"), "{}", changed[0].body);
    let change_head = head_in(&app, &changed[0]).await;
    let entries = app.store.list_audit(0, 500).await.unwrap();
    let closing = entries.iter().find(|e| e.action == "window.closed_early").unwrap();
    assert!(change_head.seq >= closing.seq, "the mailed head comes before the change it reports");

    let sealed = notices(&app, "anchor:demo:sealed", 2).await;
    let head = head_in(&app, &sealed[0]).await;
    let entries = app.store.list_audit(0, 500).await.unwrap();
    let seal = entries.iter().find(|e| e.action == SEALED).unwrap();
    assert!(head.seq >= seal.seq, "the sealed notice's head does not cover the seal");
    for root in ["receipts_root", "ballots_root", "export_sha256"] {
        assert!(sealed[0].body.contains(seal.detail[root].as_str().unwrap()), "{root} missing: {}", sealed[0].body);
    }

    // Later rounds (or a second ballot process) queue nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(app.store.notices("anchor:demo:", 100).await.unwrap().len(), 6);
}
