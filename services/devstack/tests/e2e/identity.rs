//! One person, one ballot, whatever they type: every spelling of a username is the one
//! directory account, with one code budget and one ballot, through nginx.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_devstack::slapd::{student_email, student_password, student_uid};
use turnout_devstack::unix_now;

use crate::helpers::{TestStack, expect_error};
use crate::scenarios::good_choices;

const DEMO: &str = "demo";

async fn sign_in_as(s: &TestStack, typed: &str, n: u32) -> reqwest::Client {
    let client = s.client();
    let res = client
        .post(s.url("/auth/login"))
        .json(&json!({ "username": typed, "password": student_password(n) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{typed:?}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"], student_uid(n), "{typed:?} signs in as the directory's account");
    client
}

pub async fn every_spelling_of_one_account_shares_one_code_budget_and_one_ballot(s: &TestStack) {
    let n = 61;
    let spellings = [student_uid(n).to_uppercase(), format!("  {}  ", student_uid(n)), "Student00061".to_owned()];
    let mut clients = Vec::new();
    for typed in &spellings {
        clients.push(sign_in_as(s, typed, n).await);
    }

    // One cooldown: a request under another spelling right after the first waits.
    let since = unix_now() - 0.5;
    let started = std::time::Instant::now();
    assert_eq!(s.request_code(&clients[0], DEMO).await.status(), StatusCode::ACCEPTED);
    let second = s.request_code(&clients[1], DEMO).await;
    if started.elapsed() < Duration::from_millis(900) {
        expect_error(second, 429, "resend_cooldown", "another spelling inside the cooldown").await;
    }
    let code = s.stack.sink.wait_for(&student_email(n), since, Duration::from_secs(15)).await.unwrap().code().unwrap();
    s.codes_seen.lock().unwrap().push(code.clone());

    // One ballot: the first spelling votes; every other spelling is "already voted".
    assert_eq!(s.verify(&clients[0], DEMO, &code).await.status(), StatusCode::OK);
    assert_eq!(s.vote(&clients[0], DEMO, good_choices()).await.status(), StatusCode::CREATED);
    let mut sends = 1;
    for c in &clients[1..] {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let code = s.fetch_code(c, DEMO, n).await;
        sends += 1;
        assert_eq!(s.verify(c, DEMO, &code).await.status(), StatusCode::OK);
        expect_error(s.vote(c, DEMO, good_choices()).await, 409, "already_voted", "another spelling").await;
    }
    let store = s.store().await;
    let t = store.turnout(&turnout_core::domain::ElectionId::parse(DEMO).unwrap()).await.unwrap();
    assert_eq!(t.participation, t.ballots, "participation = ballots");

    // One send budget (5 by default), spent across the spellings, then refused for all.
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let res = s.request_code(&clients[round % 3], DEMO).await;
        if res.status() != StatusCode::ACCEPTED {
            expect_error(res, 429, "resend_limit", "the budget is the account's").await;
            break;
        }
        sends += 1;
    }
    assert_eq!(sends, 5, "five code emails for the account, not five per spelling");
    for c in &clients {
        expect_error(s.request_code(c, DEMO).await, 429, "resend_limit", "every spelling").await;
    }
}
