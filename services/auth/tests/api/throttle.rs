//! The sign-in throttle cannot be turned against a voter: it counts per (username,
//! address) and per address, the address comes from nginx only, and the check and the
//! count are one step.

use reqwest::StatusCode;
use serde_json::Value;
use turnout_devstack::slapd::{student_password, student_uid};

use crate::helpers::{TestApp, as_refs, directory, spawn_app, template_settings};

/// A sign-in from `address`: its status and error code (`ok` on success).
async fn login_from(app: &TestApp, address: &str, user: &str, password: &str) -> (u16, String) {
    let res = app.login_from(address, user, password).await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or("ok").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_elsewhere_never_lock_a_voter_out() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_LOGIN_FAILURE_FLOOR_MS", "1".into()));
    let app = spawn_app(&as_refs(&settings)).await;
    let victim = student_uid(2);

    // Arrange: an attacker fails fourteen times for the victim, under several spellings.
    let mut answers = Vec::new();
    for n in 0..14 {
        let typed = if n % 2 == 0 { victim.clone() } else { victim.to_uppercase() };
        answers.push(login_from(&app, "198.51.100.66", &typed, "guess").await);
    }
    assert!(answers[..3].iter().all(|a| *a == (401, "invalid_credentials".into())), "{answers:?}");
    assert!(answers[3..].iter().all(|a| *a == (429, "login_throttled".into())), "{answers:?}");

    // Act + assert: the victim, from their own address, signs in at once.
    assert_eq!(login_from(&app, "203.0.113.5", &victim, &student_password(2)).await, (200, "ok".into()));
    // The attacker's address stays held back for that username, even with the password.
    assert_eq!(login_from(&app, "198.51.100.66", &victim, &student_password(2)).await.0, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_guesses_get_the_free_failures_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let app = spawn_app(&as_refs(&template_settings(&slapd))).await;
    let guesses = (0..50).map(|_| login_from(&app, "198.51.100.7", "student00005", "guess"));
    let answers = futures_util::future::join_all(guesses).await;
    let refused = answers.iter().filter(|a| a.0 == 401).count();
    let throttled = answers.iter().filter(|a| **a == (429, "login_throttled".to_owned())).count();
    assert_eq!((refused, throttled), (3, 47), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_spraying_usernames_is_held_back_and_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_LOGIN_ADDRESS_FAILURES", "5".into()));
    settings.push(("TURNOUT_LOGIN_FAILURE_FLOOR_MS", "1".into()));
    let app = spawn_app(&as_refs(&settings)).await;
    // Honest sign-ins from one NAT address never count against it.
    for n in 1..=8 {
        assert_eq!(login_from(&app, "192.0.2.1", &student_uid(n), &student_password(n)).await.0, 200, "honest {n}");
    }
    for n in 1..=5 {
        assert_eq!(login_from(&app, "192.0.2.1", &student_uid(n), "Winter2026!").await.0, 401, "spray {n}");
    }
    let (status, code) = login_from(&app, "192.0.2.1", &student_uid(9), &student_password(9)).await;
    assert_eq!((status, code.as_str()), (429, "login_throttled"), "the spraying address waits");
    assert_eq!(login_from(&app, "192.0.2.2", &student_uid(9), &student_password(9)).await.0, 200, "others don't");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_trusted_proxy_may_name_the_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    // The test client (127.0.0.1) is not the proxy here: its X-Real-IP is ignored.
    settings.push(("TURNOUT_TRUSTED_PROXIES", "10.0.0.0/8".into()));
    settings.push(("TURNOUT_LOGIN_FAILURE_FLOOR_MS", "1".into()));
    let app = spawn_app(&as_refs(&settings)).await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        // A new made-up address each time would dodge the throttle if it were believed.
        statuses.push(login_from(&app, &format!("203.0.113.{n}"), "student00006", "guess").await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    assert_eq!(StatusCode::OK.as_u16(), login_from(&app, "203.0.113.99", "student00007", &student_password(7)).await.0);
}

/// A browser with its own cookie jar, asking for JSON.
fn browser() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
    reqwest::Client::builder().cookie_store(true).default_headers(headers).build().unwrap()
}

async fn sign_in_with(client: &reqwest::Client, app: &TestApp, address: &str, user: &str, password: &str) -> u16 {
    let body = serde_json::json!({ "username": user, "password": password });
    let res = client.post(format!("{}/auth/login", app.url)).header("X-Real-IP", address).json(&body);
    res.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_one_nat_a_browser_that_signed_in_before_cannot_be_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_LOGIN_ADDRESS_FAILURES", "8".into()));
    settings.push(("TURNOUT_LOGIN_FAILURE_FLOOR_MS", "1".into()));
    let app = spawn_app(&as_refs(&settings)).await;
    let nat = "198.51.100.1";
    // Arrange: the victim signed in from their laptop before (it got a device cookie).
    let laptop = browser();
    assert_eq!(sign_in_with(&laptop, &app, nat, &student_uid(2), &student_password(2)).await, 200);

    // Act: someone on the same network fails for the victim, and sprays the address full.
    let attacker = browser();
    for _ in 0..4 {
        sign_in_with(&attacker, &app, nat, &student_uid(2), "guess").await;
    }
    for n in 10..20 {
        sign_in_with(&attacker, &app, nat, &student_uid(n), "guess").await;
    }
    assert_eq!(
        sign_in_with(&browser(), &app, nat, &student_uid(2), &student_password(2)).await,
        429,
        "a new browser waits"
    );

    // Assert: the victim's laptop signs in at once, from the same address.
    assert_eq!(sign_in_with(&laptop, &app, nat, &student_uid(2), &student_password(2)).await, 200);
    // Its cookie is the victim's: it does not help with another account.
    assert_eq!(sign_in_with(&laptop, &app, nat, &student_uid(3), &student_password(3)).await, 429);
    // And it is counted on its own: wrong passwords from it wait like any others.
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(sign_in_with(&laptop, &app, nat, &student_uid(2), "typo").await);
        }
        v
    };
    assert_eq!(statuses, [401, 401, 401, 429]);
}
