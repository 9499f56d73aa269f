//! Delivery through a pool of sender accounts against a sink that throttles like a real
//! provider: rate, sessions, blocks, hangs, refused logins.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use turnout_devstack::mailsink::SINK_PASSWORD;
use turnout_devstack::slapd::student_email;
use turnout_devstack::{MailSink, SinkAccount, TurnoutAccount, repo_root};

use crate::helpers::{TestApp, account_json, spawn_app, spawn_in, wait_for_count};

fn pool(names: &[&str], per_minute: u32, max_concurrent: u32) -> Vec<TurnoutAccount> {
    names.iter().map(|n| TurnoutAccount { name: (*n).into(), per_minute, max_concurrent, daily_cap: 100_000 }).collect()
}

async fn request_codes(apps: &[&TestApp], voters: std::ops::RangeInclusive<u32>) {
    let requests = voters.map(|n| {
        let app = apps[n as usize % apps.len()];
        async move {
            let res = app.request(&app.voter(n)).await;
            assert_eq!(res.status(), StatusCode::ACCEPTED, "voter {n}");
        }
    });
    futures_util::future::join_all(requests).await;
}

/// Every voter in `voters` got exactly one code mail; returns how many got more than one.
async fn duplicates(sink: &MailSink, voters: std::ops::RangeInclusive<u32>) -> usize {
    let mut dups = 0;
    for n in voters {
        let got = sink.all_to(&student_email(n)).await.unwrap().len();
        assert!(got >= 1, "voter {n} never got a code");
        if got > 1 {
            dups += 1;
        }
    }
    dups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_drains_at_capacity_within_every_limit_with_two_instances() {
    // Arrange: 5 accounts at 30 messages a minute and 2 sessions each, enforced by the
    // sink; two OTP instances on one database share them.
    let names = ["elections-1", "elections-2", "elections-3", "elections-4", "elections-5"];
    let dir = tempfile::tempdir().unwrap();
    let sink_accounts: Vec<SinkAccount> = names
        .iter()
        .map(|n| SinkAccount { name: (*n).into(), rate: Some(30), concurrency: Some(2), ..SinkAccount::default() })
        .collect();
    let sink = MailSink::start_with(dir.path(), &repo_root(), &sink_accounts).unwrap();
    let accounts = sink.turnout_accounts_json(&pool(&names, 30, 2));
    let a = spawn_app(&accounts, &[]).await;
    let b = spawn_in(a.dir.clone(), &accounts, &[]).await;

    // Act: 600 voters ask for a code, half through each instance.
    let started = Instant::now();
    request_codes(&[&a, &b], 1..=600).await;
    let enqueue_secs = started.elapsed().as_secs_f64();
    let delivered = wait_for_count(&sink, 600, Duration::from_secs(330)).await;
    let drain_secs = started.elapsed().as_secs_f64();

    // Assert: all delivered, at about the pool's capacity (150 a minute), within limits.
    assert_eq!(delivered, 600);
    let capacity_per_sec = 5.0 * 30.0 / 60.0;
    let ratio = (600.0 / drain_secs) / capacity_per_sec;
    println!("600 codes: enqueued in {enqueue_secs:.1}s, delivered in {drain_secs:.1}s = {ratio:.3} of pool capacity");
    assert!(ratio >= 0.9, "drained at {ratio:.3} of capacity");
    for record in sink.accounts().await.unwrap().iter().filter(|r| r.name.starts_with("elections-")) {
        assert!(record.max_per_minute() <= 30, "{} sent {} in a minute", record.name, record.max_per_minute());
        assert!(record.peak_concurrency <= 2, "{} had {} sessions", record.name, record.peak_concurrency);
        assert!(record.refused.is_empty(), "{} was refused: {:?}", record.name, record.refused);
        assert!(record.accepted.len() >= 100, "{} carried only {}", record.name, record.accepted.len());
    }
    assert_eq!(duplicates(&sink, 1..=600).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blocked_accounts_are_quarantined_and_every_message_still_goes_out() {
    let names = ["elections-1", "elections-2", "elections-3", "elections-4"];
    let dir = tempfile::tempdir().unwrap();
    let sink_accounts: Vec<SinkAccount> = names.iter().map(|n| SinkAccount::unlimited(n)).collect();
    let sink = MailSink::start_with(dir.path(), &repo_root(), &sink_accounts).unwrap();
    let app = spawn_app(&sink.turnout_accounts_json(&pool(&names, 300, 2)), &[]).await;

    request_codes(&[&app], 1..=300).await;
    // Mid-run, the provider blocks two accounts.
    wait_for_count(&sink, 40, Duration::from_secs(30)).await;
    sink.control("elections-1", "block").await.unwrap();
    sink.control("elections-2", "block").await.unwrap();

    let delivered = wait_for_count(&sink, 300, Duration::from_secs(120)).await;
    assert_eq!(delivered, 300, "messages lost after the block");
    assert_eq!(duplicates(&sink, 1..=300).await, 0);

    let records = sink.accounts().await.unwrap();
    let health = app.store.sender_health().await.unwrap();
    for blocked in ["elections-1", "elections-2"] {
        let h = health.iter().find(|h| h.account == blocked).unwrap();
        assert!(h.quarantined_until.is_some(), "{blocked} not quarantined: {h:?}");
        assert!(h.quarantine_reason.as_deref().unwrap().contains("5.1.8"), "{h:?}");
        let refused = records.iter().find(|r| r.name == blocked).unwrap().refused.get("550 5.1.8").copied();
        assert_eq!(refused, Some(1), "{blocked} was tried again after its quarantine");
    }
    for healthy in ["elections-3", "elections-4"] {
        assert!(health.iter().find(|h| h.account == healthy).unwrap().quarantined_until.is_none());
    }
    // Officers can see it: the quarantine is counted in the metrics.
    let metrics = reqwest::get(format!("{}/metrics", app.url)).await.unwrap().text().await.unwrap();
    // The registry is per process (other tests here share it): at least one each.
    for blocked in ["elections-1", "elections-2"] {
        let prefix = format!(r#"turnout_mail_account_quarantines_total{{account="{blocked}"}} "#);
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        assert!(count >= 1, "{blocked} quarantine not counted: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_provider_times_out_and_another_account_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let sink_accounts = [
        SinkAccount { name: "elections-1".into(), delay_secs: Some(60.0), ..SinkAccount::default() },
        SinkAccount::unlimited("elections-2"),
    ];
    let sink = MailSink::start_with(dir.path(), &repo_root(), &sink_accounts).unwrap();
    let accounts = sink.turnout_accounts_json(&pool(&["elections-1", "elections-2"], 600, 2));
    let app =
        spawn_app(&accounts, &[("TURNOUT_MAIL_SEND_TIMEOUT_SECS", "1"), ("TURNOUT_MAIL_RETRY_BASE_SECS", "1")]).await;

    request_codes(&[&app], 1..=6).await;
    let delivered = wait_for_count(&sink, 6, Duration::from_secs(30)).await;
    assert_eq!(delivered, 6);
    let records = sink.accounts().await.unwrap();
    assert!(records.iter().find(|r| r.name == "elections-1").unwrap().accepted.is_empty());
    assert_eq!(records.iter().find(|r| r.name == "elections-2").unwrap().accepted.len(), 6);
    let health = app.store.sender_health().await.unwrap();
    let hung = health.iter().find(|h| h.account == "elections-1").unwrap();
    assert!(hung.last_error.as_deref().unwrap_or("").contains("did not answer"), "{hung:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_quarantines_the_account_and_the_voter_sees_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app =
        spawn_app(&account_json(sink.smtp_port, "not-the-password"), &[("TURNOUT_MAIL_LAG_ALERT_SECS", "1")]).await;
    let voter = app.voter(1);
    assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
    let status = app.wait_for_state(&voter, "deferred", Duration::from_secs(10)).await;
    assert_eq!(status["state"], "deferred", "{status}");
    assert!(status["message"].as_str().unwrap().contains("retrying automatically"), "{status}");
    let health = app.store.sender_health().await.unwrap();
    assert!(health[0].quarantine_reason.as_deref().unwrap().contains("login refused"), "{health:?}");
    assert_eq!(sink.count().await.unwrap(), 0);

    // Readiness names the problem but keeps the service in rotation: requests still queue.
    let ready = reqwest::get(format!("{}/health/ready", app.url)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["store"]["ok"], true, "{ready}");
    assert_eq!(ready["checks"]["smtp_pool"]["ok"], false, "{ready}");
    assert_eq!(ready["checks"]["smtp_pool"]["critical"], false, "{ready}");
    assert!(ready["checks"]["smtp_pool"]["error"].as_str().unwrap().contains("every sender account is quarantined"));
    // With no account able to send, the message rests as deferred: the worker reads the
    // accounts' health before claiming, and claims nothing while all are quarantined
    // (before: again every 5 s, and at first ~20 times a second; the voter saw it flicker
    // to "sending").
    let claims = times_shown_sending(&app, &voter, "deferred", Duration::from_millis(5600)).await;
    assert_eq!(claims, 0, "claimed {claims} times in 5.6 s with every account quarantined");
    // The code has waited past the (1 s) lag alert: reported, still not critical.
    let ready: Value = reqwest::get(format!("{}/health/ready", app.url)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["outbox_lag"]["ok"], false, "{ready}");
    assert!(ready["checks"]["outbox_lag"]["error"].as_str().unwrap().contains("has waited"), "{ready}");
}

/// How many times the voter's code went to "sending" while watched for `watch`; it is
/// otherwise always `resting` ("queued" or "deferred").
async fn times_shown_sending(app: &TestApp, voter: &reqwest::Client, resting: &str, watch: Duration) -> usize {
    let (until, mut claims, mut was_sending) = (Instant::now() + watch, 0, false);
    while Instant::now() < until {
        let status = app.status(voter).await;
        let sending = status["state"] == "sending";
        assert!(sending || status["state"] == resting, "{status}");
        claims += usize::from(sending && !was_sending);
        was_sending = sending;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_beyond_the_daily_cap_waits_queued_instead_of_flickering_to_sending() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start_with(dir.path(), &repo_root(), &[SinkAccount::unlimited("elections-1")]).unwrap();
    let spent = [TurnoutAccount { name: "elections-1".into(), per_minute: 600, max_concurrent: 2, daily_cap: 1 }];
    let app = spawn_app(&sink.turnout_accounts_json(&spent), &[]).await;
    let (first, second) = (app.voter(1), app.voter(2));
    assert_eq!(app.request(&first).await.status(), StatusCode::ACCEPTED);
    assert_eq!(wait_for_count(&sink, 1, Duration::from_secs(10)).await, 1);
    assert_eq!(app.request(&second).await.status(), StatusCode::ACCEPTED);
    // The first round to meet the spent account claims it once (it learns there is no
    // capacity by asking); after that the worker sees from the accounts' health that none
    // can send, and leaves it queued (before, it claimed it every 250 ms, all day).
    let claims = times_shown_sending(&app, &second, "queued", Duration::from_millis(5600)).await;
    assert!(claims <= 1, "claimed {claims} times in 5.6 s with the only account spent for the day");
    assert_eq!(sink.count().await.unwrap(), 1, "the cap holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_codes_lock_the_voter_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app = spawn_app(
        &account_json(sink.smtp_port, SINK_PASSWORD),
        &[
            ("TURNOUT_OTP_RESEND_COOLDOWN_SECS", "0"),
            ("TURNOUT_OTP_LOCK_AFTER_VOIDS", "2"),
            ("TURNOUT_OTP_VALIDITY_SECS", "2"),
        ],
    )
    .await;
    let voter = app.voter(1);
    let mut last = Value::Null;
    for round in 0..2 {
        if round == 1 {
            // Past half the validity, so the next request is a fresh code.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
        for _ in 0..5 {
            last = app.verify(&voter, "000001").await.json().await.unwrap();
        }
    }
    assert_eq!(last["error"]["code"], "voter_locked", "{last}");
    assert!(last["error"]["message"].as_str().unwrap().contains("paused for you until"), "{last}");
    // Locked: no new code is sent, and the status says so.
    let res = app.request(&voter).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    assert!(app.status(&voter).await["locked_until"].is_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_can_widen_code_acceptance_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MailSink::start(dir.path(), &repo_root()).unwrap();
    let app = spawn_app(
        &account_json(sink.smtp_port, SINK_PASSWORD),
        &[("TURNOUT_OTP_STEP_SECS", "1"), ("TURNOUT_OTP_VALIDITY_SECS", "2")],
    )
    .await;
    let voter = app.voter(1);
    let since = turnout_devstack::unix_now() - 0.5;
    assert_eq!(app.request(&voter).await.status(), StatusCode::ACCEPTED);
    let code = sink.wait_for(&student_email(1), since, Duration::from_secs(10)).await.unwrap().code().unwrap();

    // Mail is slow today: an officer adds 10 minutes, with a reason, no restart.
    let election = turnout_core::domain::ElectionId::parse("demo").unwrap();
    turnout_otp::admin::widen_acceptance(app.store.as_ref(), &election, 10, "mail provider slow", "officer:jo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let res = app.verify(&voter, &code).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());

    let refused = turnout_otp::admin::widen_acceptance(app.store.as_ref(), &election, 10, " ", "officer:jo").await;
    assert!(refused.is_err(), "a reason is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_private_ca_delivers_and_plain_smtp_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let turnout_devstack::tls::PrivateCa { ca, cert, key } = turnout_devstack::tls::private_ca(dir.path()).unwrap();
    let sink =
        MailSink::start_tls(dir.path(), &repo_root(), &[SinkAccount::unlimited("elections-1")], &cert, &key).unwrap();
    let account = |tls: &str| {
        serde_json::json!([{
            "name": "elections-1", "host": "localhost", "port": sink.smtp_port, "tls": tls,
            "ca_cert": ca.display().to_string(), "username": "elections-1", "password": SINK_PASSWORD,
            "from": "elections-1@turnout.test"
        }])
        .to_string()
    };
    let app = spawn_app(&account("starttls"), &[]).await;
    request_codes(&[&app], 1..=3).await;
    assert_eq!(wait_for_count(&sink, 3, Duration::from_secs(20)).await, 3, "STARTTLS delivery");

    // The same server without TLS on our side: it insists on STARTTLS, so nothing goes out.
    let plain = spawn_app(&account("none"), &[]).await;
    let voter = plain.voter(9);
    assert_eq!(plain.request(&voter).await.status(), StatusCode::ACCEPTED);
    let status = plain.wait_for_state(&voter, "deferred", Duration::from_secs(10)).await;
    assert_ne!(status["state"], "sent", "{status}");
    assert_eq!(sink.count().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_wait_behind_every_code_and_go_out_once_each() {
    use turnout_core::domain::VoterEmail;
    use turnout_core::store::{MailState, Notice};
    // One account at 120 a minute: 20 codes take about 10 s, so the notices' place in
    // the queue shows.
    let dir = tempfile::tempdir().unwrap();
    let sink_accounts = [SinkAccount { name: "elections-1".into(), rate: Some(120), ..SinkAccount::default() }];
    let sink = MailSink::start_with(dir.path(), &repo_root(), &sink_accounts).unwrap();
    let app = spawn_app(&sink.turnout_accounts_json(&pool(&["elections-1"], 120, 2)), &[]).await;

    request_codes(&[&app], 1..=20).await;
    let notices: Vec<Notice> = (1..=3)
        .map(|n| Notice {
            key: "anchor:demo:opened".into(),
            to: VoterEmail::parse(&format!("officer{n}@example.test")).unwrap(),
            subject: "Audit head at the opening of Demo".into(),
            body: "The audit log's head is:\n\n    7:abcd\n".into(),
        })
        .collect();
    assert_eq!(app.store.queue_notices(&notices, jiff::Timestamp::now()).await.unwrap(), 3);
    // A second ballot process queuing the same event adds nothing.
    assert_eq!(app.store.queue_notices(&notices, jiff::Timestamp::now()).await.unwrap(), 0);

    assert_eq!(wait_for_count(&sink, 23, Duration::from_secs(60)).await, 23);
    let mut last_code = 0.0_f64;
    for n in 1..=20 {
        let mail = sink.all_to(&student_email(n)).await.unwrap();
        assert_eq!(mail.len(), 1, "voter {n}");
        last_code = last_code.max(mail[0].received_at);
    }
    for n in 1..=3 {
        let mail = sink.all_to(&format!("officer{n}@example.test")).await.unwrap();
        assert_eq!(mail.len(), 1, "officer {n} got one notice");
        assert_eq!(mail[0].subject, "Audit head at the opening of Demo");
        assert!(mail[0].body.contains("7:abcd"), "{}", mail[0].body);
        assert!(mail[0].received_at >= last_code, "a notice went out before a waiting code");
    }
    let rows = app.store.notices("anchor:demo:", 10).await.unwrap();
    assert!(rows.iter().all(|r| r.state == MailState::Sent), "{rows:?}");
}
