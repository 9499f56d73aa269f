//! The scenarios, each against the shared stack with its own voters.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_core::store::Turnout;
use turnout_devstack::slapd::{student_email, student_password, student_uid};
use turnout_devstack::unix_now;

use crate::helpers::{TestStack, expect_error};

const DEMO: &str = "demo";

pub fn good_choices() -> Value {
    json!({ "president": "ben-carter", "treasurer": "eli-novak" })
}

pub async fn json_flow_login_code_vote_receipt_and_second_vote_refused(s: &TestStack) {
    let client = s.client();
    // Arrange: sign in.
    let res = s.login(&client, 1).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("turnout_session=") && c.contains("HttpOnly") && c.contains("SameSite=Strict")
    }));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"], student_uid(1));
    assert_eq!(body["email"], "s**********1@students.turnout.test");

    // The code request is accepted at once and says where the mail goes and from whom.
    let since = unix_now() - 0.5;
    let res = s.request_code(&client, DEMO).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sent_to"], "s**********1@students.turnout.test");
    assert!(body["senders"].as_array().unwrap().iter().any(|f| f == "elections-1@turnout.test"));
    assert!(body["resend_after_secs"].as_u64().is_some());

    let mail = s.stack.sink.wait_for(&student_email(1), since, Duration::from_secs(15)).await.unwrap();
    assert!(mail.auth_user.as_deref().is_some_and(|u| u.starts_with("elections-")), "the sender authenticated to SMTP");
    assert!(mail.subject.contains("Student Union Election 2026"));
    let code = mail.code().unwrap();

    // Delivery status names the sender (recorded within moments of the send).
    let mut status = Value::Null;
    for _ in 0..50 {
        status = client.get(s.url("/e/demo/otp/status")).send().await.unwrap().json().await.unwrap();
        if status["state"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["state"], "sent", "{status}");
    assert!(status["message"].as_str().unwrap().contains("@turnout.test"), "{status}");

    // The ballot lists approved candidates only.
    let ballot: Value = client.get(s.url("/e/demo/ballot")).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        ballot["contests"][0]["candidates"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(names, ["amara-okafor", "ben-carter", "chen-wei"], "pending candidate shown");
    assert_eq!(ballot["verified"], false);
    assert!(ballot["closes_local"].as_str().unwrap().contains("(Europe/London)"));

    // Act: verify and vote.
    let res = s.verify(&client, DEMO, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = s.vote(&client, DEMO, good_choices()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cast = res.json::<Value>().await.unwrap();
    let receipt = cast["receipt"].as_str().unwrap().to_owned();
    assert_eq!(cast["check_url"], format!("/e/demo/receipt?receipt={receipt}"), "the receipt goes in the query");

    // Assert: a second vote is refused; the receipt is in the box, for anyone to check.
    expect_error(s.vote(&client, DEMO, good_choices()).await, 409, "already_voted", "second vote").await;
    let anyone = s.client();
    let res = anyone.get(s.url(cast["check_url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["in_ballot_box"], true);
    let lower = receipt.to_lowercase().replace('-', "");
    let res = anyone.get(s.url("/e/demo/receipt")).query(&[("receipt", &lower)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "receipts are forgiving about case and dashes");
    let fake = turnout_core::domain::Receipt::generate().to_string();
    expect_error(
        anyone.get(s.url("/e/demo/receipt")).query(&[("receipt", &fake)]).send().await.unwrap(),
        404,
        "not_found",
        "unknown receipt",
    )
    .await;
}

pub async fn html_flow_without_javascript(s: &TestStack) {
    // A browser: no Accept: application/json, forms, redirects followed by hand.
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let n = 2;

    let res = browser.get(s.url("/e/demo/otp")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "no session: off to the login page");
    assert_eq!(res.headers()["location"], "/auth/login?next=%2Fe%2Fdemo%2Fotp");

    let page = browser.get(s.url("/auth/login?next=/e/demo/otp")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form method=\"post\" action=\"/auth/login\">") && page.contains("value=\"/e/demo/otp\""));

    let res = browser
        .post(s.url("/auth/login"))
        .form(&[("username", student_uid(n)), ("password", student_password(n)), ("next", "/e/demo/otp".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/e/demo/otp");

    let page = browser.get(s.url("/e/demo/otp")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Email me a code") && page.contains("s**********2@students.turnout.test"), "{page}");

    let since = unix_now() - 0.5;
    let res = browser.post(s.url("/e/demo/otp/request")).form(&[("go", "1")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code = s.stack.sink.wait_for(&student_email(n), since, Duration::from_secs(15)).await.unwrap().code().unwrap();
    let mut page = String::new();
    for _ in 0..50 {
        page = browser.get(s.url("/e/demo/otp")).send().await.unwrap().text().await.unwrap();
        if page.contains("from elections-") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(page.contains("Send the code again") && page.contains("from elections-"), "status shown: {page}");

    // A wrong code brings the code page back: what happened in the title, the tries left
    // beside the field, the voter still shown as signed in, the form ready to use.
    let res = browser.post(s.url("/e/demo/otp/verify")).form(&[("code", "000000")]).send().await.unwrap();
    if code != "000000" {
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let page = res.text().await.unwrap();
        assert!(page.contains("<title>That code is not right · "), "{page}");
        assert!(page.contains("id=\"code-error\"") && page.contains("4 more tries"), "{page}");
        assert!(page.contains(&format!("Signed in as <strong>{}</strong>", student_uid(n))), "{page}");
        assert!(page.contains("action=\"/e/demo/otp/verify\"") && !page.contains("Please sign in again"), "{page}");
    }
    // So does a wrong password, with the username kept (and never the password).
    let other = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [("username", student_uid(n + 20)), ("password", "wrong-one".into()), ("next", "/e/demo/otp".into())];
    let res = other.post(s.url("/auth/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let page = res.text().await.unwrap();
    assert!(page.contains("<title>Wrong username or password · Sign in"), "{page}");
    assert!(page.contains(&format!("value=\"{}\"", student_uid(n + 20))) && !page.contains("wrong-one"), "{page}");
    assert!(page.contains("id=\"password-error\"") && page.contains("value=\"/e/demo/otp\""), "{page}");

    let res = browser.post(s.url("/e/demo/otp/verify")).form(&[("code", code.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/e/demo/ballot");

    let page = browser.get(s.url("/e/demo/ballot")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Review my choices") && page.contains("name=\"c.president\" value=\"amara-okafor\""));
    assert!(!page.contains("dana-pending"), "pending candidates are not on the ballot");

    // The review step: the choices in words, cast from its own form (hidden fields).
    let review = browser
        .post(s.url("/e/demo/ballot/review"))
        .form(&[("c.president", "chen-wei"), ("c.treasurer", "fatima-haddad")])
        .send()
        .await
        .unwrap();
    assert_eq!(review.status(), StatusCode::OK);
    let review = review.text().await.unwrap();
    assert!(review.contains("Check your choices") && review.contains("Chen Wei") && review.contains("Fatima Haddad"));
    assert!(review.contains(r#"<input type="hidden" name="c.president" value="chen-wei">"#), "{review}");
    let res = browser
        .post(s.url("/e/demo/ballot"))
        .form(&[("c.president", "chen-wei"), ("c.treasurer", "fatima-haddad")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    assert!(page.contains("Your vote is in the ballot box") && page.contains("class=\"receipt\""));

    let res = browser.post(s.url("/e/demo/ballot")).form(&[("president", "chen-wei")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("already voted"));

    // Static files come straight from nginx.
    let css = browser.get(s.url("/static/turnout.css")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
}

pub async fn bad_input_gets_a_clear_4xx_with_the_error_body(s: &TestStack) {
    let c = s.client();
    let login = |body: Value| {
        let c = c.clone();
        let url = s.url("/auth/login");
        async move { c.post(url).json(&body).send().await.unwrap() }
    };
    expect_error(
        login(json!({"username": student_uid(3), "password": "wrong"})).await,
        401,
        "invalid_credentials",
        "wrong password",
    )
    .await;
    expect_error(
        login(json!({"username": student_uid(3), "password": ""})).await,
        401,
        "invalid_credentials",
        "empty password",
    )
    .await;
    expect_error(
        login(json!({"username": student_uid(3), "password": "   "})).await,
        401,
        "invalid_credentials",
        "blank password",
    )
    .await;
    expect_error(
        login(json!({"username": "*)(uid=*", "password": "x"})).await,
        401,
        "invalid_credentials",
        "filter injection",
    )
    .await;
    expect_error(login(json!({"username": "*", "password": "x"})).await, 401, "invalid_credentials", "wildcard").await;
    expect_error(
        login(json!({"username": "nobody-here", "password": "x"})).await,
        401,
        "invalid_credentials",
        "unknown user",
    )
    .await;
    expect_error(login(json!({"username": student_uid(3)})).await, 422, "invalid_field", "missing password").await;
    expect_error(login(json!({"username": 42, "password": "x"})).await, 422, "invalid_field", "mistyped username")
        .await;
    let res = c
        .post(s.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "malformed_body", "truncated JSON").await;
    let res = c.post(s.url("/auth/login")).header("content-type", "text/plain").body("hi").send().await.unwrap();
    expect_error(res, 415, "unsupported_media_type", "wrong content type").await;

    // Oversized: the service's limit (16 KiB) and nginx's (1 MiB) both answer 413 JSON.
    let big = json!({"username": "x".repeat(20_000), "password": "x"});
    expect_error(login(big).await, 413, "body_too_large", "oversized body (service)").await;
    let huge = json!({"username": "x".repeat(2_000_000), "password": "x"});
    expect_error(login(huge).await, 413, "body_too_large", "oversized body (nginx)").await;

    // Unknown election, on each service.
    expect_error(
        c.get(s.url("/e/no-such-election/ballot")).send().await.unwrap(),
        404,
        "unknown_election",
        "ballot of unknown election",
    )
    .await;
    expect_error(
        c.get(s.url("/e/Robert'%3B--/ballot")).send().await.unwrap(),
        404,
        "unknown_election",
        "injection in election id",
    )
    .await;
    expect_error(c.get(s.url("/nowhere")).send().await.unwrap(), 404, "not_found", "unknown route").await;

    // Signed in but not verified (another student: three failures make student 3 wait).
    assert_eq!(s.login(&c, 13).await.status(), StatusCode::OK);
    expect_error(s.request_code(&c, "no-such-election").await, 404, "unknown_election", "code for unknown election")
        .await;
    expect_error(s.vote(&c, DEMO, good_choices()).await, 403, "not_verified", "vote before verifying").await;
    expect_error(s.verify(&c, DEMO, "12345").await, 422, "invalid_field", "short code").await;
    expect_error(s.verify(&c, DEMO, "123456").await, 401, "no_active_code", "verify without a code").await;

    // Verified: now the ballot's own checks.
    let v = s.verified_voter(4, DEMO).await;
    expect_error(s.vote(&v, DEMO, json!({"president": "nobody"})).await, 422, "unknown_candidate", "unknown candidate")
        .await;
    expect_error(
        s.vote(&v, DEMO, json!({"president": "dana-pending"})).await,
        422,
        "unknown_candidate",
        "pending candidate",
    )
    .await;
    expect_error(s.vote(&v, DEMO, json!({"dean": "ben-carter"})).await, 422, "unknown_candidate", "unknown contest")
        .await;
    expect_error(s.vote(&v, DEMO, json!({"president": 7})).await, 422, "invalid_field", "mistyped choice").await;
    expect_error(
        s.vote(&v, DEMO, json!({"president": "' OR 1=1 --"})).await,
        422,
        "invalid_field",
        "injection in choice",
    )
    .await;
    let res = v.post(s.url("/e/demo/ballot")).json(&json!({"vote": {}})).send().await.unwrap();
    expect_error(res, 422, "invalid_field", "missing choices").await;
    // None of those used up the vote.
    assert_eq!(s.vote(&v, DEMO, good_choices()).await.status(), StatusCode::CREATED);

    // Without a session at all.
    let anon = s.client();
    expect_error(s.vote(&anon, DEMO, good_choices()).await, 401, "not_authenticated", "vote without session").await;
    let res = anon
        .post(s.url("/e/demo/ballot"))
        .header("cookie", "turnout_session=forged.token")
        .json(&json!({"choices": {}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "not_authenticated", "forged session").await;
}

pub async fn two_hundred_concurrent_votes_for_one_voter_store_one_ballot(s: &TestStack) {
    let voter = s.verified_voter(5, DEMO).await;
    let store = s.store().await;
    let election = turnout_core::domain::ElectionId::parse(DEMO).unwrap();
    let before = store.turnout(&election).await.unwrap();

    let attempts = (0..200).map(|_| {
        let voter = voter.clone();
        let url = s.url("/e/demo/ballot");
        async move { voter.post(url).json(&json!({"choices": good_choices()})).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, conflicts), (1, 199), "statuses: {statuses:?}");

    let after = store.turnout(&election).await.unwrap();
    assert_eq!(after.ballots, before.ballots + 1);
    assert_eq!(after.participation, after.ballots, "participation == ballots");
}

pub async fn wrong_codes_never_send_mail(s: &TestStack) {
    let n = 6;
    let c = s.client();
    assert_eq!(s.login(&c, n).await.status(), StatusCode::OK);
    let _code = s.fetch_code(&c, DEMO, n).await;
    let mails_before = s.stack.sink.all_to(&student_email(n)).await.unwrap().len();

    let mut codes = Vec::new();
    for _ in 0..100 {
        let res = s.verify(&c, DEMO, "999999").await;
        codes.push(res.json::<Value>().await.unwrap()["error"]["code"].as_str().unwrap().to_owned());
    }
    // The first five are counted wrong tries; then the code is void.
    assert!(codes[..5].iter().all(|c| c == "wrong_code" || c == "too_many_attempts"), "{codes:?}");
    assert!(codes[5..].iter().all(|c| c == "too_many_attempts"), "{codes:?}");

    // Give a (wrongly) triggered send time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.stack.sink.all_to(&student_email(n)).await.unwrap().len(), mails_before, "a wrong code sent mail");
}

pub async fn a_session_verified_for_one_election_cannot_vote_in_another(s: &TestStack) {
    let now = jiff::Timestamp::now();
    let mut other = turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_mins(60),
    );
    other["id"] = json!("council");
    other["title"] = json!("Council 2026");
    s.stack.create_election(&other).unwrap();

    let voter = s.verified_voter(7, DEMO).await;
    expect_error(s.vote(&voter, "council", good_choices()).await, 403, "not_verified", "demo session used for council")
        .await;
    assert_eq!(s.vote(&voter, DEMO, good_choices()).await.status(), StatusCode::CREATED);
}

pub async fn a_code_used_after_several_steps_but_inside_validity_verifies(s: &TestStack) {
    // Step is 2 s, validity 120 s: wait 5 s (more than two steps) before typing the code.
    let n = 8;
    let c = s.client();
    assert_eq!(s.login(&c, n).await.status(), StatusCode::OK);
    let code = s.fetch_code(&c, DEMO, n).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // A resend inside validity re-sends the same code, and it still works.
    let since = unix_now() - 0.5;
    let res = s.request_code(&c, DEMO).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["resent_same_code"], true);
    let again = s.stack.sink.wait_for(&student_email(n), since, Duration::from_secs(15)).await.unwrap();
    assert_eq!(again.code().unwrap(), code, "resend within validity sends the same code");

    let res = s.verify(&c, DEMO, &code).await;
    assert_eq!(res.status(), StatusCode::OK, "late code refused: {}", res.text().await.unwrap());
    // A used code can't verify another session.
    let other = s.client();
    assert_eq!(s.login(&other, n).await.status(), StatusCode::OK);
    expect_error(s.verify(&other, DEMO, &code).await, 401, "no_active_code", "reused code").await;
}

pub async fn voting_outside_the_window_is_refused(s: &TestStack) {
    // Opens later: no codes yet.
    let now = jiff::Timestamp::now();
    let mut later = turnout_devstack::stack::demo_election(
        now + jiff::SignedDuration::from_mins(60),
        now + jiff::SignedDuration::from_mins(90),
    );
    later["id"] = json!("later");
    s.stack.create_election(&later).unwrap();
    let c = s.client();
    assert_eq!(s.login(&c, 9).await.status(), StatusCode::OK);
    let body = expect_error(s.request_code(&c, "later").await, 403, "window_not_open", "code before opening").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("(Europe/London)"));

    // Closes in 4 s with no grace: verify in time, vote after close.
    let mut closing = turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_secs(4),
    );
    closing["id"] = json!("closing");
    closing["grace_secs"] = json!(0);
    s.stack.create_election(&closing).unwrap();
    let voter = s.verified_voter(10, "closing").await;
    let until_closed = (now + jiff::SignedDuration::from_millis(6300)).duration_since(jiff::Timestamp::now());
    tokio::time::sleep(Duration::try_from(until_closed).unwrap_or_default()).await;
    expect_error(s.vote(&voter, "closing", good_choices()).await, 403, "window_closed", "vote after close").await;
    expect_error(s.request_code(&voter, "closing").await, 403, "window_closed", "code after close").await;

    let store = s.store().await;
    let t = store.turnout(&turnout_core::domain::ElectionId::parse("closing").unwrap()).await.unwrap();
    assert_eq!(t, Turnout { participation: 0, ballots: 0 });
}

pub async fn no_secret_appears_in_any_log(s: &TestStack) {
    let logs = s.stack.service_logs();
    assert!(logs.lines().count() > 50, "the services logged their requests");
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "not a JSON log line: {line}");
    }
    for secret in [student_password(1), student_password(2), "sink-secret".into(), "turnout_session=".into()] {
        assert!(!logs.contains(&secret), "{secret:?} appears in the logs");
    }
    for choice in ["ben-carter", "eli-novak", "chen-wei", "fatima-haddad"] {
        assert!(!logs.contains(choice), "a ballot choice ({choice}) appears in the logs");
    }
    // No code, as a number standing on its own: latencies like 1.185669 and hex request
    // ids like "…f961548e…" that happen to hold the digits don't count.
    let codes = s.codes_seen.lock().unwrap().clone();
    assert!(codes.len() >= 5, "the scenarios read codes from the sink: {codes:?}");
    for code in codes {
        let leaked = logs.match_indices(&code).any(|(i, _)| {
            let before = logs[..i].chars().next_back();
            let after = logs[i + code.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        });
        assert!(!leaked, "code {code} appears in the logs");
    }
}

pub async fn nginx_limits_sign_in_bursts_with_a_json_429(s: &TestStack) {
    // 1,200 sign-ins at once from one address: beyond nginx's burst (800) they get 429.
    let c = s.client();
    let attempts = (0..1200).map(|_| {
        let c = c.clone();
        let url = s.url("/auth/login");
        async move {
            let res = c.post(url).header("content-type", "text/plain").body("x").send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let limited = answers.iter().filter(|(s, c)| *s == 429 && c == "rate_limited").count();
    let passed = answers.iter().filter(|(s, c)| *s == 415 && c == "unsupported_media_type").count();
    assert!(limited > 0, "no request was rate limited");
    assert_eq!(limited + passed, 1200, "every answer is a 415 from auth or a JSON 429 from nginx: {answers:?}");
    // The limit refills: let the next scenarios sign in again.
    tokio::time::sleep(Duration::from_secs(5)).await;
}
