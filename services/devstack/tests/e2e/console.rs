//! The console through nginx with every service in its own process: an officer's
//! extension reaches the code and ballot services at once, with no restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestStack;
use crate::scenarios::good_choices;

pub async fn an_extension_reaches_the_otp_and_ballot_processes_within_a_second(s: &TestStack) {
    // Arrange: an officer signed in through LDAP (group membership gives the role).
    let officer = s.client();
    let res = officer
        .post(s.url("/auth/login"))
        .json(&json!({ "username": "officer1", "password": "vote-officer1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "officer sign-in: {}", res.text().await.unwrap());
    let index: Value = officer.get(s.url("/officer")).send().await.unwrap().json().await.unwrap();
    let token = index["csrf_token"].as_str().expect("the console hands out its CSRF token").to_owned();
    // An election that closes 3.5 s from now, without grace; a voter signed in for it.
    let now = jiff::Timestamp::now();
    let original_close = now + jiff::SignedDuration::from_millis(3500);
    let mut e = turnout_devstack::stack::demo_election(now - jiff::SignedDuration::from_mins(1), original_close);
    e["id"] = json!("extended");
    e["grace_secs"] = json!(0);
    s.stack.create_election(&e).unwrap();
    let voter = s.client();
    assert_eq!(s.login(&voter, 21).await.status(), StatusCode::OK);

    // Act: extend by ten minutes.
    let res = officer
        .post(s.url("/officer/elections/extended/extend"))
        .header("x-csrf-token", &token)
        .json(&json!({ "add_minutes": 10, "reason": "queues at the library terminals" }))
        .send()
        .await
        .unwrap();
    let extended_at = Instant::now();
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    let new_close = answer["closes_at"].as_str().unwrap().to_owned();
    let stored: jiff::Timestamp = new_close.parse().unwrap();
    // The store keeps whole seconds.
    assert_eq!(stored.as_second(), (original_close + jiff::SignedDuration::from_mins(10)).as_second());

    // Assert: the ballot process shows the new close well within a second...
    loop {
        let b: Value = voter.get(s.url("/e/extended/ballot")).send().await.unwrap().json().await.unwrap();
        if b["closes_at"] == new_close.as_str() {
            break;
        }
        assert!(extended_at.elapsed() < Duration::from_secs(1), "the ballot service still shows {}", b["closes_at"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ballot service saw the extension after {:?}", extended_at.elapsed());
    // ...and after the original close, the otp process issues codes and the ballot
    // process takes the vote: both enforce the extended window.
    let wait = original_close.duration_since(jiff::Timestamp::now()) + jiff::SignedDuration::from_millis(200);
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    let code = s.fetch_code(&voter, "extended", 21).await;
    assert_eq!(s.verify(&voter, "extended", &code).await.status(), StatusCode::OK);
    assert_eq!(s.vote(&voter, "extended", good_choices()).await.status(), StatusCode::CREATED);

    // The change is in the audit log, whose chain verifies.
    let audit: Value = officer.get(s.url("/officer/audit")).send().await.unwrap().json().await.unwrap();
    // (The last one not the box watch's: it writes its own entries, for this election's
    // box and the stack's other elections, meanwhile.)
    let entries = audit["entries"].as_array().unwrap();
    let last = entries.iter().rev().find(|e| e["actor"] != "system").unwrap();
    assert_eq!((last["actor"].as_str(), last["action"].as_str()), (Some("officer1"), Some("window.extended")));
    let verify = officer.get(s.url("/officer/audit/verify")).send().await.unwrap();
    assert_eq!(verify.status(), StatusCode::OK);
    // A voter's session can't reach the console.
    assert_eq!(voter.get(s.url("/officer/elections/extended")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
}
