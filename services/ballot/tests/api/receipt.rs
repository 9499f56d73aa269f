//! The receipt check: `GET /e/{election}/receipt?receipt=…`, the receipt in the query
//! string (which no log writes) and never in the path (which nginx logs). It says whether
//! the receipt is in the box, never what the ballot says.

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, error_code, spawn_app};

/// What the test voters choose, as ids and as the ballot page names them: none of it may
/// show on a receipt page.
const CHOICES: [&str; 4] = ["chen-wei", "Chen Wei", "fatima-haddad", "Fatima Haddad"];

async fn open_election(id: &str) -> TestApp {
    let app = spawn_app().await;
    app.election(id, SignedDuration::from_mins(-1), SignedDuration::from_mins(60), 0).await;
    app
}

/// Casts voter `n`'s JSON ballot for the test choices; the 201's body.
async fn cast(app: &TestApp, n: u32, election: &str) -> Value {
    let voter = app.voter(n, Some(election), Timestamp::now());
    let res = voter
        .post(format!("{}/e/{election}/ballot", app.url))
        .json(&serde_json::json!({ "choices": { "president": "chen-wei", "treasurer": "fatima-haddad" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["check_url"], location, "Location is the check's URL");
    body
}

fn assert_no_choice(page: &str, case: &str) {
    for choice in CHOICES {
        assert!(!page.contains(choice), "{case}: the page shows the choice {choice:?}: {page}");
    }
}

#[tokio::test]
async fn a_receipt_is_checked_by_its_query_string_in_json_and_html() {
    // Arrange
    let app = open_election("rq").await;
    let cast = cast(&app, 1, "rq").await;
    let receipt = cast["receipt"].as_str().unwrap();

    // Act / Assert: the cast names the check by its query string.
    let check_url = cast["check_url"].as_str().unwrap();
    assert_eq!(check_url, format!("/e/rq/receipt?receipt={receipt}"));

    // JSON: in the box, and nothing else (no choice, no voter).
    let res = reqwest::Client::new()
        .get(format!("{}{check_url}", app.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "receipt": receipt, "election": "rq", "in_ballot_box": true }));

    // Any case, with or without dashes.
    let typed = receipt.to_lowercase().replace('-', "");
    let res = reqwest::Client::new()
        .get(format!("{}/e/rq/receipt", app.url))
        .query(&[("receipt", &typed)])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "receipts are forgiving about case and dashes");

    // HTML: the page says so, links to itself by the query form, shows no choice.
    let res = reqwest::Client::new().get(format!("{}{check_url}", app.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("This receipt is in the ballot box") && page.contains(receipt), "{page}");
    assert!(page.contains(&format!("href=\"/e/rq/receipt?receipt={receipt}\"")), "{page}");
    assert!(!page.contains("/receipt/"), "a link with the receipt in its path: {page}");
    assert_no_choice(&page, "receipt check");
}

#[tokio::test]
async fn the_page_after_casting_links_to_the_query_form_and_shows_no_choice() {
    let app = open_election("rp").await;
    let browser = app.voter_in(2, "rp", &[], false);
    let res = browser
        .post(format!("{}/e/rp/ballot", app.url))
        .form(&[("c.president", "chen-wei"), ("c.treasurer", "fatima-haddad")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    assert!(page.contains("Your vote is in the ballot box"), "{page}");
    let receipt = page.split("<p class=\"receipt\">").nth(1).and_then(|r| r.split('<').next()).unwrap();
    assert!(page.contains(&format!("href=\"/e/rp/receipt?receipt={receipt}\"")), "{page}");
    assert!(!page.contains("/receipt/"), "a link with the receipt in its path: {page}");
    assert_no_choice(&page, "receipt after casting");
}

#[tokio::test]
async fn the_ballot_page_form_checks_a_receipt_straight_by_get() {
    let app = open_election("rf").await;
    let page =
        reqwest::Client::new().get(format!("{}/e/rf/ballot", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<form method="get" action="/e/rf/receipt""#), "{page}");
    assert!(page.contains(r#"name="receipt""#), "{page}");

    // What the form sends is the check itself: no redirect to another URL.
    let cast = cast(&app, 3, "rf").await;
    let receipt = cast["receipt"].as_str().unwrap();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/e/rf/receipt", app.url))
        .query(&[("receipt", receipt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("This receipt is in the ballot box"));
}

#[tokio::test]
async fn a_bad_or_missing_receipt_is_a_422_naming_the_field() {
    let app = open_election("rb").await;
    let json = reqwest::Client::new();
    for (query, case) in [
        ("?receipt=nope", "too short"),
        ("?receipt=7KQ2-M9XD-4T1B-8ZRC-0PW%21", "a character outside the alphabet"),
        ("?receipt=%27%20OR%201%3D1%20--", "injection"),
        ("?receipt=", "empty"),
        ("", "missing"),
        ("?other=1", "another parameter only"),
    ] {
        let res = json
            .get(format!("{}/e/rb/receipt{query}", app.url))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{case}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_field", "{case}: {body}");
        assert_eq!(body["error"]["field"], "receipt", "{case}: {body}");
    }
    // A browser gets the error page, not a crash.
    let res = reqwest::Client::new().get(format!("{}/e/rb/receipt?receipt=nope", app.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("invalid_field"));
}

#[tokio::test]
async fn an_unknown_receipt_is_not_in_the_box_and_an_unknown_election_is_a_404() {
    let app = open_election("ru").await;
    let unknown = turnout_core::domain::Receipt::generate().to_string();
    let json = reqwest::Client::new();
    let res = json
        .get(format!("{}/e/ru/receipt", app.url))
        .query(&[("receipt", &unknown)])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (404, "not_found".into()));

    // The page says so, and offers the form again with what was typed.
    let res = reqwest::Client::new().get(format!("{}/e/ru/receipt", app.url)).query(&[("receipt", &unknown)]).send();
    let res = res.await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let page = res.text().await.unwrap();
    assert!(page.contains("No ballot with this receipt"), "{page}");
    assert!(page.contains(r#"<form method="get" action="/e/ru/receipt""#), "{page}");
    assert!(page.contains(&format!("value=\"{unknown}\"")), "{page}");

    let res = json
        .get(format!("{}/e/nope/receipt", app.url))
        .query(&[("receipt", &unknown)])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (404, "unknown_election".into()));
}

#[tokio::test]
async fn the_receipt_in_the_path_is_no_route() {
    // nginx logs the path: a receipt there would be in the access log.
    let app = open_election("rx").await;
    let cast = cast(&app, 4, "rx").await;
    let receipt = cast["receipt"].as_str().unwrap();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/e/rx/receipt/{receipt}", app.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (404, "not_found".into()));
}
