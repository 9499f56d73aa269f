use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn the_grace_period_admits_only_voters_verified_before_close() {
    let app = spawn_app().await;
    // Closed 30 s ago, with 120 s of grace.
    app.election("grace", SignedDuration::from_mins(-60), SignedDuration::from_secs(-30), 120).await;
    let now = Timestamp::now();

    let in_time = app.voter(1, Some("grace"), now - SignedDuration::from_secs(60));
    assert_eq!(app.vote(&in_time, "grace").await.status(), StatusCode::CREATED, "verified before close, inside grace");

    let too_late = app.voter(2, Some("grace"), now - SignedDuration::from_secs(10));
    assert_eq!(
        error_code(app.vote(&too_late, "grace").await).await,
        (403, "window_closed".into()),
        "verified after close"
    );

    // Closed 5 minutes ago: grace is over for everyone.
    app.election("over", SignedDuration::from_mins(-60), SignedDuration::from_mins(-5), 120).await;
    let early = app.voter(3, Some("over"), now - SignedDuration::from_mins(10));
    assert_eq!(error_code(app.vote(&early, "over").await).await, (403, "window_closed".into()));
}

#[tokio::test]
async fn voting_before_the_window_opens_is_refused_even_with_a_verified_session() {
    let app = spawn_app().await;
    app.election("future", SignedDuration::from_mins(30), SignedDuration::from_mins(60), 0).await;
    let voter = app.voter(1, Some("future"), Timestamp::now());
    let res = app.vote(&voter, "future").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "window_not_open");
    assert!(body["error"]["message"].as_str().unwrap().contains("+00:00 (Europe/London)"));
}

#[tokio::test]
async fn an_authenticated_but_unverified_session_cannot_vote() {
    let app = spawn_app().await;
    app.election("open", SignedDuration::from_mins(-1), SignedDuration::from_mins(60), 0).await;
    let voter = app.voter(1, None, Timestamp::now());
    assert_eq!(error_code(app.vote(&voter, "open").await).await, (403, "not_verified".into()));
}

#[tokio::test]
async fn form_ballots_refuse_two_choices_for_one_contest() {
    let app = spawn_app().await;
    app.election("open", SignedDuration::from_mins(-1), SignedDuration::from_mins(60), 0).await;
    let voter = app.voter(1, Some("open"), Timestamp::now());
    let res = voter
        .post(format!("{}/e/open/ballot", app.url))
        .form(&[("president", "ben-carter"), ("president", "chen-wei")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (422, "invalid_field".into()));
}

#[tokio::test]
async fn the_election_list_is_paginated_with_a_maximum_page_size() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.election(&format!("e{i}"), SignedDuration::from_mins(-1), SignedDuration::from_mins(60), 0).await;
    }
    let http = reqwest::Client::new();
    let page: Value = http
        .get(format!("{}/?limit=2", app.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["elections"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after"], "e1");
    let rest: Value = http
        .get(format!("{}/?limit=5000&after=e1", app.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["elections"].as_array().unwrap().len(), 1);
    let bad = http.get(format!("{}/?limit=abc", app.url)).header("accept", "application/json").send().await.unwrap();
    assert_eq!(error_code(bad).await, (400, "malformed_body".into()), "query errors use the one error body");
}

#[tokio::test]
async fn browsers_get_an_html_error_page_with_the_request_id() {
    let app = spawn_app().await;
    let res = reqwest::Client::new()
        .get(format!("{}/e/nope/ballot", app.url))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
    let page = res.text().await.unwrap();
    assert!(page.contains("<!doctype html>") && page.contains("trace-me-123") && page.contains("unknown_election"));
}
