use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use turnout_devstack::mailsink::SINK_PASSWORD;
use turnout_devstack::slapd::student_email;
use turnout_devstack::{MailSink, repo_root, unix_now};

use crate::helpers::{account_json, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_never_waits_for_smtp() {
    // Arrange: an "SMTP server" that accepts connections and never says a word.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = black_hole.local_addr().unwrap().port();
    let app = spawn_app(&account_json(port, "x"), &[("TURNOUT_MAIL_SEND_TIMEOUT_SECS", "20")]).await;
    let voter = app.voter(1);

    // Act: the client gives up after 3 s; a send inline would hold the request 20 s.
    let res = app.request(&voter).await;

    // Assert: accepted at once, and the voter can see it is still on its way.
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let status = app.status(&voter).await;
    assert!(status["state"] == "queued" || status["state"] == "sending", "{status}");
    assert!(status["message"].as_str().unwrap().contains("on its way"), "{status}");
    drop(black_hole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_address_fails_the_message_and_tells_the_voter_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app = spawn_app(&account_json(sink.smtp_port, SINK_PASSWORD), &[]).await;
    // The sink answers 550 5.1.1 for addresses starting with "bounce".
    let voter = app.voter_with_email(1, "bounce-student@students.turnout.test");
    assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
    let status = app.wait_for_state(&voter, "failed", Duration::from_secs(10)).await;
    assert_eq!(status["state"], "failed", "{status}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains("does not accept mail") && message.contains("5.1.1"), "{message}");
    assert!(message.contains("Contact the election office"), "{message}");
    assert_eq!(sink.count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tries_count_down_then_void_the_code_and_codes_are_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app = spawn_app(&account_json(sink.smtp_port, SINK_PASSWORD), &[]).await;
    let voter = app.voter(1);

    let since = unix_now() - 0.5;
    assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
    let mail = sink.wait_for(&student_email(1), since, Duration::from_secs(10)).await.unwrap();
    let code = mail.code().unwrap();
    let status = app.wait_for_state(&voter, "sent", Duration::from_secs(5)).await;
    assert_eq!(status["from"], "elections-1@turnout.test");

    // The code appears nowhere in the database files.
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(6).any(|w| w == code.as_bytes()), "the code is stored on disk");
    }

    let wrong = if code == "111111" { "222222" } else { "111111" };
    let mut left = Vec::new();
    for _ in 0..5 {
        let body: Value = app.verify(&voter, wrong).await.json().await.unwrap();
        assert_eq!(body["error"]["code"], "wrong_code");
        left.push(body["error"]["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [4, 3, 2, 1, 0]);
    // Now even the right code is refused: the code is void.
    let body: Value = app.verify(&voter, &code).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert_eq!(sink.count().await.unwrap(), 1, "failed tries sent mail");

    // 1,000 more wrong verifications: not one mail.
    for _ in 0..1000 {
        let res = app.verify(&voter, wrong).await;
        assert!(res.status().is_client_error());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count().await.unwrap(), 1, "wrong verifications sent mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_inside_the_cooldown_is_refused_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app =
        spawn_app(&account_json(sink.smtp_port, SINK_PASSWORD), &[("TURNOUT_OTP_RESEND_COOLDOWN_SECS", "60")]).await;
    let voter = app.voter(2);
    assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
    let res = app.request(&voter).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "resend_cooldown");
    assert!(body["error"]["message"].as_str().unwrap().contains("seconds"), "says when: {body}");
    // Only the first request sent mail; the status call shows the countdown too.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(sink.count().await.unwrap(), 1);
    assert!(app.status(&voter).await["resend_after_secs"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_code_expires_after_its_validity_without_sending_mail() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app = spawn_app(
        &account_json(sink.smtp_port, SINK_PASSWORD),
        &[("TURNOUT_OTP_STEP_SECS", "1"), ("TURNOUT_OTP_VALIDITY_SECS", "2")],
    )
    .await;
    let voter = app.voter(3);
    let since = unix_now() - 0.5;
    assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
    let code = sink.wait_for(&student_email(3), since, Duration::from_secs(10)).await.unwrap().code().unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let body: Value = app.verify(&voter, &code).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], "code_expired");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count().await.unwrap(), 1, "an expired code sent mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_eligible_voters_get_codes_and_the_roll_address_wins() {
    use turnout_core::domain::{ElectionId, Username, VoterEmail};
    use turnout_core::store::RollEntry;

    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app = spawn_app(&account_json(sink.smtp_port, SINK_PASSWORD), &[]).await;

    // A session not eligible for "demo" (decided at login) gets a clear 403 and no mail.
    let outsider = app.voter_eligible_for(4, &[]);
    let res = app.request(&outsider).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_eligible");
    assert!(body["error"]["message"].as_str().unwrap().contains("voter list"));
    let res = app.verify(&outsider, "123456").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A roll election whose roll holds another address for student 5: the code goes there.
    let mut roll = crate::helpers::election_json("roll");
    roll["eligibility"] = serde_json::json!({"kind": "roll"});
    app.store.create_election(&serde_json::from_value(roll).unwrap(), jiff::Timestamp::now()).await.unwrap();
    let roll_id = ElectionId::parse("roll").unwrap();
    let entry = RollEntry {
        uid: Username::parse(&turnout_devstack::slapd::student_uid(5)).unwrap(),
        email: Some(VoterEmail::parse("five@roll.turnout.test").unwrap()),
        name: None,
        columns: Default::default(),
    };
    app.store.import_roll(&roll_id, &[entry]).await.unwrap();
    let voter = app.voter_eligible_for(5, &["roll"]);
    let since = turnout_devstack::unix_now() - 0.5;
    let res = voter.post(format!("{}/e/roll/otp/request", app.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap()["sent_to"], "f**e@roll.turnout.test");
    assert!(sink.wait_for("five@roll.turnout.test", since, Duration::from_secs(10)).await.is_ok());
    // The status (and the page) name the address the code really went to.
    let status: Value = voter.get(format!("{}/e/roll/otp/status", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["to"], "f**e@roll.turnout.test", "{status}");
}
