//! The union election through nginx with real slapd: the faculty contests a student sees
//! and may vote in follow the directory (a group, a filter), decided at sign-in; the review
//! step and a ranked cast go through nginx like every other call.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestStack, expect_error};

async fn contests_of(s: &TestStack, client: &reqwest::Client) -> Vec<String> {
    let ballot: Value = client.get(s.url("/e/union/ballot")).send().await.unwrap().json().await.unwrap();
    ballot["contests"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

pub async fn faculty_contests_follow_the_directory_and_the_store_refuses_the_others(s: &TestStack) {
    // Student 32 is in the physics group (and has departmentNumber PHYS); 33 is not.
    let physics = s.verified_voter(32, "union").await;
    let general = s.verified_voter(33, "union").await;
    assert_eq!(contests_of(s, &physics).await, ["president", "council", "physics-rep", "societies"]);
    assert_eq!(contests_of(s, &general).await, ["president", "council", "general-rep", "societies"]);

    // The general student names the physics contest: 422, and nothing stored.
    let res = s.vote(&general, "union", json!({ "physics-rep": "raj-patel", "president": ["ron"] })).await;
    let body = expect_error(res, 422, "invalid_field", "another constituency's contest").await;
    assert_eq!(body["error"]["field"], "choices.physics-rep");
    let store = s.store().await;
    let union = turnout_core::domain::ElectionId::parse("union").unwrap();
    assert_eq!(store.turnout(&union).await.unwrap().ballots, 0);

    // Each votes in their own: a ranked president with RON, an approval, their rep.
    let choices = json!({ "president": ["sam-reyes", "ron"], "societies": ["chess-club"], "physics-rep": "nia-evans" });
    assert_eq!(s.vote(&physics, "union", choices).await.status(), StatusCode::CREATED);
    // The review step answers through nginx too (a form post, before casting).
    let review = general
        .post(s.url("/e/union/ballot/review"))
        .header("accept", "text/html")
        .form(&[("r.president.kim-tanaka", "1"), ("r.president.ron", "2"), ("c.general-rep", "dan-cohen")])
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), StatusCode::OK);
    let page = review.text().await.unwrap();
    assert!(page.contains("1st: Kim Tanaka, 2nd: Re-Open Nominations (RON)"), "{page}");
    let choices = json!({ "president": ["kim-tanaka", "ron"], "general-rep": "dan-cohen" });
    assert_eq!(s.vote(&general, "union", choices).await.status(), StatusCode::CREATED);
    let turnout = store.turnout(&union).await.unwrap();
    assert_eq!((turnout.participation, turnout.ballots), (2, 2));
    let by_contest = store.constituency_turnout(&union).await.unwrap();
    assert_eq!(
        by_contest.iter().map(|(c, n)| (c.as_str(), *n)).collect::<Vec<_>>(),
        [("general-rep", 1), ("physics-rep", 1)]
    );
}
