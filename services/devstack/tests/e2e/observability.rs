//! Metrics, request ids, structured logs and probes, seen from outside the processes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_devstack::slapd::{student_password, student_uid};

use crate::helpers::TestStack;

fn port_of(s: &TestStack, service: &str) -> u16 {
    s.stack.services.iter().find(|(n, _, _)| n == service).map(|(_, p, _)| *p).unwrap()
}

/// One service's `/metrics`, parsed as Prometheus text (a parse error fails the test).
async fn scrape(s: &TestStack, service: &str) -> prometheus_parse::Scrape {
    let url = format!("http://127.0.0.1:{}/metrics", port_of(s, service));
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("valid Prometheus text")
}

/// The value of the sample `name` whose labels include `labels` (0 when absent).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

pub async fn metrics_request_ids_logs_and_probes_hold(s: &TestStack) {
    let voter = 350;
    let before = scrape(s, "ballot").await;
    let cast_before = value(&before, "turnout_ballots_cast_total", &[("election", "demo")]);

    // A vote carrying a client's request id: the id comes back and is in the logs.
    let client = s.verified_voter(voter, "demo").await;
    let choices = json!({"choices": {"president": "ben-carter", "treasurer": "eli-novak"}});
    let res = client
        .post(s.url("/e/demo/ballot"))
        .header("x-request-id", "e2e-observe-0001")
        .json(&choices)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["x-request-id"], "e2e-observe-0001");
    // An error body carries the id too (a voter's screenshot can be traced).
    let again = client
        .post(s.url("/e/demo/ballot"))
        .header("x-request-id", "e2e-observe-0002")
        .json(&choices)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "e2e-observe-0002");

    // The ballot counter moved by exactly one.
    let after = scrape(s, "ballot").await;
    assert_eq!(value(&after, "turnout_ballots_cast_total", &[("election", "demo")]), cast_before + 1.0);
    assert_eq!(value(&after, "turnout_window_state", &[("election", "demo")]), 1.0, "demo is open");
    assert!(value(&after, "turnout_store_operation_duration_seconds_count", &[("op", "cast_ballot")]) >= 1.0);
    let templated = [("route", "/e/:election/ballot"), ("status", "201")];
    assert!(value(&after, "turnout_http_request_duration_seconds_count", &templated) >= 1.0);

    // Every service: route templates, never raw paths, and its own families.
    let auth = scrape(s, "auth").await;
    assert!(value(&auth, "turnout_logins_total", &[("outcome", "ok")]) >= 1.0);
    assert_eq!(value(&auth, "turnout_ldap_pool_connections", &[("state", "max")]), 16.0);
    assert_eq!(value(&auth, "turnout_ldap_breaker_state", &[]), 0.0, "breaker closed");
    let otp = scrape(s, "otp").await;
    // (issued, or resent when an earlier scenario already asked for this voter)
    assert!(value(&otp, "turnout_codes_requested_total", &[("election", "demo")]) >= 1.0);
    assert!(value(&otp, "turnout_codes_verified_total", &[("election", "demo"), ("outcome", "ok")]) >= 1.0);
    assert!(value(&otp, "turnout_mail_sent_total", &[]) >= 1.0);
    assert!(value(&otp, "turnout_mail_queue_to_sent_seconds_count", &[]) >= 1.0);
    assert!(value(&otp, "turnout_outbox_messages", &[("election", "demo"), ("state", "sent")]) >= 1.0);
    for (name, scrape) in [("auth", &auth), ("otp", &otp), ("ballot", &after)] {
        for sample in &scrape.samples {
            for (k, v) in sample.labels.iter() {
                assert!(!v.contains("/e/demo/"), "{name}: raw path in label {k}={v} of {}", sample.metric);
                assert!(!v.contains("student"), "{name}: a user id in label {k}={v} of {}", sample.metric);
            }
        }
    }

    // The request's log lines: JSON with the fixed keys, the id, the route and the election.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = std::fs::read_to_string(s.stack.dir.join("ballot.log")).unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains("e2e-observe-0001"))
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect();
    let request = lines.iter().find(|l| l["event"] == "request").expect("the request was logged");
    for key in ["ts", "level", "service", "event", "request_id", "route", "status", "latency_ms", "election"] {
        assert!(request.get(key).is_some(), "log line without {key}: {request}");
    }
    assert_eq!(request["service"], "ballot");
    assert_eq!(request["route"], "/e/{election}/ballot");
    assert_eq!(request["status"], 201);
    assert_eq!(request["election"], "demo");
    assert!(lines.iter().any(|l| l["event"] == "ballot_cast"), "events inside the request carry its id: {lines:?}");
    for name in ["auth", "otp", "ballot"] {
        let text = std::fs::read_to_string(s.stack.dir.join(format!("{name}.log"))).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            assert_eq!(v["service"], name, "every line names its service: {line}");
            assert!(v["ts"].is_string() && v["level"].is_string() && v["event"].is_string(), "{line}");
        }
    }

    // A session token never reaches a log, with or without its cookie name.
    let res = reqwest::Client::new()
        .post(s.url("/auth/login"))
        .header("accept", "application/json")
        .json(&json!({"username": student_uid(351), "password": student_password(351)}))
        .send()
        .await
        .unwrap();
    let token =
        res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    assert!(token.len() > 40);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!s.stack.service_logs().contains(&token), "a session token appears in the logs");

    // Probes: liveness is constant, readiness names each dependency.
    for (service, checks) in
        [("auth", vec!["store", "ldap"]), ("otp", vec!["store", "smtp_pool", "outbox_lag"]), ("ballot", vec!["store"])]
    {
        let base = format!("http://127.0.0.1:{}", port_of(s, service));
        assert_eq!(reqwest::get(format!("{base}/health/live")).await.unwrap().status(), StatusCode::OK);
        let ready = reqwest::get(format!("{base}/health/ready")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{service} ready");
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready", "{service}: {body}");
        for check in checks {
            assert_eq!(body["checks"][check]["ok"], true, "{service} {check}: {body}");
        }
    }
    // The metrics and readiness are read from each service's own port, never through nginx.
    for path in ["/metrics", "/health/ready"] {
        let public = reqwest::get(s.url(path)).await.unwrap();
        assert_eq!(public.status(), StatusCode::NOT_FOUND, "{path} is public");
    }

    // Every service answer is uncacheable: personal pages and JSON alike.
    let voter = s.verified_voter(355, "demo").await;
    for path in ["/e/demo/ballot", "/e/demo/otp/status", "/", "/auth/login", "/e/demo/receipt?receipt=ABCD-EFGH-IJKL"] {
        let res = voter.get(s.url(path)).send().await.unwrap();
        let cache = res.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(cache.as_deref(), Some("no-store"), "{path}");
    }

    // Attacker-sized labels: made-up methods and paths add no metric series.
    let ballot_metrics = format!("http://127.0.0.1:{}/metrics", port_of(s, "ballot"));
    let series = || async {
        let text = reqwest::get(&ballot_metrics).await.unwrap().text().await.unwrap();
        text.lines().filter(|l| l.starts_with("turnout_http_request")).count()
    };
    let raw = reqwest::Client::new();
    let poke = |i: u32| {
        // Letters only, as nginx passes a method on (digits would be its own 400).
        let letters: String = (0..4).map(|k| char::from(b'A' + ((i / 26u32.pow(k)) % 26) as u8)).collect();
        let method = reqwest::Method::from_bytes(format!("MADEUP{letters}").as_bytes()).unwrap();
        let (a, b) =
            (raw.request(method, s.url("/")).send(), raw.get(s.url(&format!("/random/{i}/x{}", i * 7))).send());
        async move {
            let _ = a.await;
            let _ = b.await;
        }
    };
    poke(0).await;
    let before = series().await;
    for chunk in (1..=1000).collect::<Vec<u32>>().chunks(50) {
        futures_util::future::join_all(chunk.iter().map(|i| poke(*i))).await;
    }
    assert_eq!(series().await, before, "1,000 random methods and 1,000 random paths made new series");
}
