//! The console over HTTP: role guards, CSRF, later-only extension, sealed results, roll
//! imports, candidates and the audit log.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp, ToSpan};
use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_core::session::Role;

use crate::helpers::{TestApp, error_code, spawn_app};

const X_CSRF: &str = "x-csrf-token";

/// Every console route, with a body where it takes one.
fn routes() -> Vec<(&'static str, String)> {
    let e = "demo";
    let mut r: Vec<(&'static str, String)> = [
        "/admin",
        "/admin/elections/demo",
        "/admin/elections/demo/roll",
        "/admin/imports/nope",
        "/officer",
        "/officer/audit",
        "/officer/audit/verify",
        "/officer/elections/demo",
        "/officer/elections/demo/results",
        "/officer/elections/demo/outbox",
    ]
    .into_iter()
    .map(|p| ("GET", p.to_owned()))
    .collect();
    for p in [
        "/admin/elections".to_owned(),
        format!("/admin/elections/{e}"),
        format!("/admin/elections/{e}/candidates"),
        format!("/admin/elections/{e}/candidates/president/ben-carter"),
        format!("/admin/elections/{e}/roll"),
        format!("/officer/elections/{e}/extend"),
        format!("/officer/elections/{e}/widen"),
        format!("/officer/elections/{e}/close"),
    ] {
        r.push(("POST", p));
    }
    r
}

async fn call(client: &reqwest::Client, app: &TestApp, method: &str, path: &str) -> reqwest::Response {
    let url = format!("{}{path}", app.url);
    match method {
        "GET" => client.get(url).send().await.unwrap(),
        _ => client.post(url).json(&json!({})).send().await.unwrap(),
    }
}

#[tokio::test]
async fn every_console_route_is_closed_to_anonymous_users_voters_and_the_other_role() {
    // Arrange
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let voter = app.voter(1, Some("demo"), Timestamp::now());
    let (officer, _) = app.staff("officer1", vec![Role::Officer]);
    let (admin, _) = app.staff("admin1", vec![Role::Admin]);
    for (method, path) in routes() {
        // Act / Assert
        let res = anonymous
            .request(method.parse().unwrap(), format!("{}{path}", app.url))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "anonymous {method} {path}");
        assert_eq!(
            error_code(call(&voter, &app, method, &path).await).await,
            (403, "forbidden".into()),
            "voter {method} {path}"
        );
        let other = if path.starts_with("/admin") { &officer } else { &admin };
        assert_eq!(
            error_code(call(other, &app, method, &path).await).await,
            (403, "forbidden".into()),
            "wrong role {method} {path}"
        );
    }
}

#[tokio::test]
async fn console_changes_need_the_sessions_csrf_token() {
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let (officer, token) = app.staff("officer1", vec![Role::Officer, Role::Admin]);
    let (_, someone_elses) = app.staff("officer2", vec![Role::Officer]);
    let url = format!("{}/officer/elections/demo/extend", app.url);
    let body = json!({ "add_minutes": 10, "reason": "queue at the library" });
    for (case, header) in
        [("no token", None), ("another session's token", Some(someone_elses)), ("garbage", Some("x".into()))]
    {
        let mut req = officer.post(&url).json(&body);
        if let Some(h) = header {
            req = req.header(X_CSRF, h);
        }
        assert_eq!(error_code(req.send().await.unwrap()).await, (403, "csrf_failed".into()), "{case}");
    }
    // Every changing route checks it (a form post without the token too).
    for (method, path) in routes().into_iter().filter(|(m, _)| *m == "POST") {
        let res = officer.post(format!("{}{path}", app.url)).form(&[("reason", "x")]).send().await.unwrap();
        let (status, code) = error_code(res).await;
        assert_eq!((status, code.as_str()), (403, "csrf_failed"), "{method} {path} without a token");
    }
    let res = officer.post(&url).header(X_CSRF, &token).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The token is handed to JSON clients by the console index.
    let index: Value = officer.get(format!("{}/officer", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(index["csrf_token"], token.as_str());
}

#[tokio::test]
async fn the_window_only_moves_later_with_a_reason_and_is_audited() {
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let (officer, token) = app.staff("officer1", vec![Role::Officer]);
    let url = format!("{}/officer/elections/demo/extend", app.url);
    let close = app
        .store
        .election(&turnout_core::domain::ElectionId::parse("demo").unwrap())
        .await
        .unwrap()
        .unwrap()
        .schedule
        .closes_at;
    let extend = |body: Value| officer.post(&url).header(X_CSRF, &token).json(&body).send();

    let earlier = extend(json!({ "closes_at": (close - 5.minutes()).to_string(), "reason": "oops" })).await.unwrap();
    assert_eq!(error_code(earlier).await, (409, "conflict".into()), "an earlier close is refused");
    let no_reason = extend(json!({ "add_minutes": 10 })).await.unwrap();
    assert_eq!(error_code(no_reason).await, (422, "invalid_field".into()), "a reason is required");
    let too_far = extend(json!({ "add_minutes": 3000, "reason": "r" })).await.unwrap();
    assert_eq!(error_code(too_far).await, (422, "invalid_field".into()), "more than a day at once");
    let both = json!({ "closes_at": (close + 5.minutes()).to_string(), "add_minutes": 10, "reason": "r" });
    assert_eq!(error_code(extend(both).await.unwrap()).await, (422, "invalid_field".into()), "two answers at once");

    let res = extend(json!({ "add_minutes": 15, "reason": "library queue" })).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["closes_at"], (close + 15.minutes()).to_string());
    // The voter's ballot page sees the new close at once.
    let voter = app.voter(1, None, Timestamp::now());
    let ballot: Value = voter.get(format!("{}/e/demo/ballot", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ballot["closes_at"], (close + 15.minutes()).to_string());
    // Audited with who, what and why.
    let audit: Value = officer.get(format!("{}/officer/audit", app.url)).send().await.unwrap().json().await.unwrap();
    let entry = audit["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((entry["actor"].as_str(), entry["action"].as_str()), (Some("officer1"), Some("window.extended")));
    assert_eq!(entry["detail"]["reason"], "library queue");
    let verify = officer.get(format!("{}/officer/audit/verify", app.url)).send().await.unwrap();
    assert_eq!(verify.status(), StatusCode::OK);
    let verified: Value = verify.json().await.unwrap();
    assert_eq!(verified["intact"], true);
    // The head the dashboard shows is one the chain reaches; a head past its end is not.
    let head = verified["verification"]["head"].clone();
    let head = format!("{}:{}", head["seq"], head["hash"].as_str().unwrap());
    let dashboard = officer.get(format!("{}/officer/elections/demo", app.url)).send().await.unwrap();
    assert_eq!(dashboard.json::<Value>().await.unwrap()["audit_head"], head.as_str());
    let reaches = officer.get(format!("{}/officer/audit/verify?head={head}", app.url)).send().await.unwrap();
    assert_eq!(reaches.status(), StatusCode::OK);
    let (_, hash) = head.split_once(':').unwrap();
    let beyond = officer.get(format!("{}/officer/audit/verify?head=999:{hash}", app.url)).send().await.unwrap();
    assert_eq!(beyond.status(), StatusCode::CONFLICT);
    let bad = officer.get(format!("{}/officer/audit/verify?head=nonsense", app.url)).send().await.unwrap();
    assert_eq!(error_code(bad).await, (422, "invalid_field".into()));
    // On the page, the mistake is shown next to the field.
    let (cookie, _) = app.staff_cookie("officer1", vec![Role::Officer]);
    let html = reqwest::Client::new()
        .get(format!("{}/officer/audit/verify?head=nonsense", app.url))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = html.text().await.unwrap();
    assert!(html.contains(r#"aria-describedby="head-error""#) && html.contains("an audit head is SEQ:HASH"), "{html}");

    // The no-JavaScript form: the token as a field, then back to the dashboard.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (cookie, form_token) = app.staff_cookie("officer1", vec![Role::Officer]);
    let res = browser
        .post(&url)
        .header("cookie", cookie)
        .form(&[("csrf", form_token.as_str()), ("add_minutes", "5"), ("reason", "printer jam")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/officer/elections/demo");
    let now_closes =
        app.store.election(&turnout_core::domain::ElectionId::parse("demo").unwrap()).await.unwrap().unwrap();
    assert_eq!(now_closes.schedule.closes_at, close + 20.minutes());
}

#[tokio::test]
async fn results_are_sealed_until_close_and_grace_then_exported() {
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let (officer, token) = app.staff("officer1", vec![Role::Officer]);
    for n in 1..=3 {
        let voter = app.voter(n, Some("demo"), Timestamp::now());
        assert_eq!(app.vote(&voter, "demo").await.status(), StatusCode::CREATED);
    }
    let results = format!("{}/officer/elections/demo/results", app.url);
    let sealed = officer.get(&results).send().await.unwrap();
    assert_eq!(error_code(sealed).await, (403, "results_not_ready".into()), "results before close");
    let csv_sealed = officer.get(format!("{results}?format=csv")).send().await.unwrap();
    assert_eq!(csv_sealed.status(), StatusCode::FORBIDDEN, "the export is sealed too");

    // Close early: needs the typed confirmation.
    let close = format!("{}/officer/elections/demo/close", app.url);
    let unconfirmed =
        officer.post(&close).header(X_CSRF, &token).json(&json!({ "reason": "done" })).send().await.unwrap();
    assert_eq!(error_code(unconfirmed).await, (422, "invalid_field".into()));
    let res = officer
        .post(&close)
        .header(X_CSRF, &token)
        .json(&json!({ "confirm": "demo", "reason": "everyone voted" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Closed: votes refused, results open.
    let late = app.voter(4, Some("demo"), Timestamp::now());
    assert_eq!(app.vote(&late, "demo").await.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r: Value = officer.get(&results).send().await.unwrap().json().await.unwrap();
    let president = r["contests"].as_array().unwrap().iter().find(|c| c["id"] == "president").unwrap().clone();
    assert_eq!(president["method"], "plurality", "contests from before kinds count as one-seat plurality");
    let ben = president["options"].as_array().unwrap().iter().position(|o| o["id"] == "ben-carter").unwrap();
    assert_eq!(president["sheet"]["stages"][0]["votes"][ben], 3);
    assert_eq!(president["elected"][0]["id"], "ben-carter");
    assert_eq!((r["participation"].as_u64(), r["ballots"].as_u64()), (Some(3), Some(3)));
    assert_eq!(r["consistent"], true);
    let csv = officer.get(format!("{results}?format=csv")).send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("contest,method,stage,action,candidate,name,votes,state\n"), "{csv}");
    assert!(csv.contains("president,plurality,1,first_count,ben-carter,Ben Carter,3,elected\n"), "{csv}");
    assert!(csv.contains("president,plurality,,elected_1,ben-carter,Ben Carter,,elected\n"), "{csv}");
    assert!(csv.contains("(turnout),,,,(ballots),,3,\n"), "{csv}");
    // Each contest's ballots export on their own: grouped, no receipts, no order of casting.
    let export = officer.get(format!("{results}?export=president")).send().await.unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert!(export.headers()["content-disposition"].to_str().unwrap().contains("demo-president.csv"));
    let body = export.text().await.unwrap();
    assert!(body.starts_with("ballots,"), "{body}");
    assert!(body.lines().any(|l| l.starts_with("3,")), "three identical ballots are one line of weight 3: {body}");
    let missing = officer.get(format!("{results}?export=no-such-contest")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = officer.get(format!("{results}?format=xml")).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn wait_for_import(admin: &reqwest::Client, url: &str) -> Value {
    for _ in 0..200 {
        let body: Value = admin.get(url).send().await.unwrap().json().await.unwrap();
        if body["import"]["state"] != "running" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import did not finish");
}

/// A process stopped mid-import (one chunk of three committed, its lease still running);
/// two ballot processes start on the same database and upload directory. Neither takes
/// the import while the lease holds; once it passes, exactly one resumes it from the
/// second chunk, and every row is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_left_by_a_stopped_process_is_resumed_once_by_one_of_two_replicas() {
    use turnout_core::domain::Username;
    use turnout_core::store::{ImportChunk, ImportJob, ImportLease, ImportState, RollEntry};
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = crate::helpers::spawn_process_in(dir.path(), &[]).await;
    let now = Timestamp::now();
    let mut e = turnout_devstack::stack::demo_election(now + 1.hour(), now + 2.hours());
    e["id"] = "demo".into();
    turnout_ballot::seed::create_election(store.as_ref(), &e.to_string(), "test").await.unwrap();
    let election = turnout_core::domain::ElectionId::parse("demo").unwrap();

    let mut csv = String::from("uid\n");
    for n in 1..=2500u32 {
        csv.push_str(&format!("student{n:05}\n"));
    }
    std::fs::write(dir.path().join("imports/stopped.csv"), &csv).unwrap();
    let job = ImportJob::started("stopped", &election, "admin1", "roll.csv", 2500, now);
    let gone = ImportLease { owner: "the-stopped-process".into(), until: now + Duration::from_secs(3) };
    let entry = turnout_core::store::AuditEntry {
        actor: "admin1".into(),
        action: "roll.import_started".into(),
        election: Some(election.clone()),
        detail: json!({ "import": "stopped" }),
    };
    store.create_import(&job, &gone, &entry, now).await.unwrap();
    let first = ImportChunk {
        entries: (1..=1000u32)
            .map(|n| RollEntry {
                uid: Username::parse(&format!("student{n:05}")).unwrap(),
                email: None,
                name: None,
                columns: Default::default(),
            })
            .collect(),
        errors: vec![],
        rows: 1000,
    };
    store.import_chunk("stopped", &gone, &first, now).await.unwrap();

    // Two replicas start (sweeping every second) while the stopped process's lease holds.
    let lease = [("TURNOUT_IMPORT_LEASE_SECS", "2")];
    let (url_a, _) = crate::helpers::spawn_process_in(dir.path(), &lease).await;
    let (url_b, _) = crate::helpers::spawn_process_in(dir.path(), &lease).await;
    let held = store.import_job("stopped").await.unwrap().unwrap();
    assert_eq!((held.state, held.rows_done), (ImportState::Running, 1000), "taken over while its lease held");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let done = loop {
        let job = store.import_job("stopped").await.unwrap().unwrap();
        if job.state != ImportState::Running {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "the import was not resumed: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.state, ImportState::Done, "{done:?}");
    assert_eq!((done.rows_done, done.added, done.unchanged), (2500, 2500, 0), "a row was counted twice: {done:?}");
    assert_eq!(store.roll_size(&election).await.unwrap(), 2500);
    // One finish, by one run; the file is gone once it is imported.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let finished = store
        .list_audit(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "roll_import_finished" && a.detail["import"] == "stopped")
        .count();
    assert_eq!(finished, 1);
    assert!(!dir.path().join("imports/stopped.csv").exists());
    for url in [url_a, url_b] {
        assert_eq!(reqwest::get(format!("{url}/health/live")).await.unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_roll_import_runs_in_chunks_lists_bad_rows_and_changes_nothing_the_second_time() {
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(60), SignedDuration::from_mins(90), 0).await;
    let (admin, token) = app.staff("admin1", vec![Role::Admin]);
    // 2,500 rows (three chunks), a header, and three bad rows at known lines.
    let mut csv = String::from("uid,email,name\n");
    for n in 1..=2500u32 {
        match n {
            10 => csv.push_str("not a uid!,x@y.test,Bad\n"),
            1500 => csv.push_str("student01500,not-an-email,Bad Mail\n"),
            2500 => csv.push_str(",,\n"),
            _ => csv.push_str(&format!("student{n:05},student{n:05}@students.turnout.test,Student {n}\n")),
        }
    }
    let upload = format!("{}/admin/elections/demo/roll", app.url);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let res = admin
            .post(&upload)
            .header(X_CSRF, &token)
            .header("content-type", "text/csv")
            .body(csv.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let started: Value = res.json().await.unwrap();
        assert_eq!(started["rows"], 2500);
        let done = wait_for_import(&admin, &format!("{}{}", app.url, started["progress_url"].as_str().unwrap())).await;
        runs.push(done);
    }
    let first = &runs[0]["import"];
    assert_eq!(first["state"], "done");
    assert_eq!(
        (first["rows_done"].as_u64(), first["added"].as_u64(), first["rejected"].as_u64()),
        (Some(2500), Some(2497), Some(3))
    );
    let lines: Vec<u64> = runs[0]["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [11, 1501, 2501], "line numbers count the header");
    let second = &runs[1]["import"];
    assert_eq!(
        (second["added"].as_u64(), second["updated"].as_u64(), second["unchanged"].as_u64()),
        (Some(0), Some(0), Some(2497))
    );
    let roll: Value = admin.get(format!("{upload}?limit=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(roll["size"], 2497);
    assert_eq!(roll["roll"].as_array().unwrap().len(), 2);
    assert_eq!(roll["next_after"], "student00002");

    // The no-JavaScript form: multipart with the token as a field.
    let form = reqwest::multipart::Form::new()
        .text("csrf", token.clone())
        .part("file", reqwest::multipart::Part::text("uid\nstudent09999\n").file_name("late.csv"));
    let res = admin.post(&upload).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let started: Value = res.json().await.unwrap();
    let done = wait_for_import(&admin, &format!("{}{}", app.url, started["progress_url"].as_str().unwrap())).await;
    assert_eq!(done["import"]["added"], 1);
    assert_eq!(done["import"]["file_name"], "late.csv");
    // Not CSV at all, or empty: a clear 4xx and no job.
    let empty =
        admin.post(&upload).header(X_CSRF, &token).header("content-type", "text/csv").body("").send().await.unwrap();
    assert_eq!(error_code(empty).await, (422, "invalid_field".into()));
    let wrong = admin.post(&upload).header(X_CSRF, &token).json(&json!({})).send().await.unwrap();
    assert_eq!(error_code(wrong).await, (415, "unsupported_media_type".into()));
}

#[tokio::test]
async fn candidates_are_nominated_approved_or_rejected_with_a_reason_and_locked_at_opening() {
    let app = spawn_app().await;
    let (admin, token) = app.staff("admin1", vec![Role::Admin]);
    let now = Timestamp::now();
    let create = json!({
        "id": "council", "title": "Council", "time_zone": "Europe/London",
        "opens_at": (now + 2.seconds()).to_string(), "closes_at": (now + 1.hour()).to_string(),
        "quorum_pct": 20.0, "contests": [{ "id": "chair", "title": "Chair", "candidates": [] }]
    });
    let res =
        admin.post(format!("{}/admin/elections", app.url)).header(X_CSRF, &token).json(&create).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let nominate = format!("{}/admin/elections/council/candidates", app.url);
    for id in ["ada", "bob"] {
        let body = json!({ "contest": "chair", "id": id, "name": id.to_uppercase(), "statement": "vote me" });
        let res = admin.post(&nominate).header(X_CSRF, &token).json(&body).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "nominate {id}");
    }
    let decide = |who: &str| format!("{}/admin/elections/council/candidates/chair/{who}", app.url);
    let no_reason =
        admin.post(decide("bob")).header(X_CSRF, &token).json(&json!({ "decision": "reject" })).send().await.unwrap();
    assert_eq!(error_code(no_reason).await, (422, "invalid_field".into()), "a rejection needs a reason");
    let ok =
        admin.post(decide("ada")).header(X_CSRF, &token).json(&json!({ "decision": "approve" })).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let rejected = admin
        .post(decide("bob"))
        .header(X_CSRF, &token)
        .json(&json!({ "decision": "reject", "reason": "not a registered student" }))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), StatusCode::OK);
    // Only the approved candidate is on the ballot.
    let voter = app.voter(1, None, Timestamp::now());
    let ballot: Value = voter.get(format!("{}/e/council/ballot", app.url)).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        ballot["contests"][0]["candidates"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(names, ["ada"]);
    // Once voting opens, candidates are locked.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late =
        admin.post(decide("bob")).header(X_CSRF, &token).json(&json!({ "decision": "approve" })).send().await.unwrap();
    assert_eq!(error_code(late).await, (409, "conflict".into()));
    let body = json!({ "contest": "chair", "id": "cy", "name": "Cy" });
    let late = admin.post(&nominate).header(X_CSRF, &token).json(&body).send().await.unwrap();
    assert_eq!(error_code(late).await, (409, "conflict".into()));
    let edit = admin
        .post(format!("{}/admin/elections/council", app.url))
        .header(X_CSRF, &token)
        .json(&json!({ "title": "Renamed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(edit).await, (409, "conflict".into()), "edits after opening");
}

#[tokio::test]
async fn the_dashboard_shows_turnout_against_the_roll_and_activity() {
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let entries: Vec<_> = (1..=4u32)
        .map(|n| turnout_core::store::RollEntry {
            uid: turnout_core::domain::Username::parse(&format!("student{n:05}")).unwrap(),
            email: None,
            name: None,
            columns: Default::default(),
        })
        .collect();
    app.store.import_roll(&turnout_core::domain::ElectionId::parse("demo").unwrap(), &entries).await.unwrap();
    let voter = app.voter(1, Some("demo"), Timestamp::now());
    assert_eq!(app.vote(&voter, "demo").await.status(), StatusCode::CREATED);
    let (officer, _) = app.staff("officer1", vec![Role::Officer]);
    let d: Value =
        officer.get(format!("{}/officer/elections/demo", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!((d["voted"].as_u64(), d["roll"].as_u64()), (Some(1), Some(4)));
    assert_eq!(d["quorum"]["turnout_pct"], 25.0);
    let minutes = d["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    assert_eq!(minutes.last().unwrap()["counts"]["ballot"], 1, "{}", minutes.last().unwrap());
    assert!(d["seconds_left"].as_i64().unwrap() > 25 * 60);
    // The page renders too (server-side, no script needed).
    let page = reqwest::Client::new()
        .get(format!("{}/officer/elections/demo", app.url))
        .header("cookie", officer_cookie(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Ballots per minute") && html.contains("Extend the window"), "dashboard page");
}

fn officer_cookie(app: &TestApp) -> String {
    app.staff_cookie("officer1", vec![Role::Officer]).0
}

#[tokio::test]
async fn the_verify_audit_command_finds_an_edited_entry() {
    use turnout_core::store::{Audit, AuditEntry, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("turnout.db");
    let secret = "7a3bfe706c37e4c1f1e8da1fd1a654acf057ef783a8d102119ad3f3644de4e43";
    let keys = turnout_core::store::store_keys(&turnout_core::Settings::for_tests(&[("TURNOUT_SECRET", secret)]));
    let store = SqliteStore::open(&db, keys).await.unwrap();
    for reason in ["queues", "mail slow", "power cut"] {
        let entry = AuditEntry {
            actor: "officer1".into(),
            action: "window.extended".into(),
            election: None,
            detail: json!({ "reason": reason }),
        };
        store.append_audit(&entry, Timestamp::now()).await.unwrap();
    }
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_turnout-ballot"))
            .arg("verify-audit")
            // A process reads its own secret from the environment, where the test secret is refused.
            .env("TURNOUT_SECRET", secret)
            .env("TURNOUT_DATABASE", &db)
            .output()
            .unwrap()
    };
    let ok = run();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact: 3 entries"));

    let conn = deadpool_sqlite::rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2").unwrap();
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("BROKEN at entry 2"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
}

#[tokio::test]
async fn the_officer_pages_through_the_outbox_newest_first_with_masked_addresses() {
    // Arrange: five codes queued.
    let app = spawn_app().await;
    app.election("demo", SignedDuration::from_mins(-5), SignedDuration::from_mins(30), 0).await;
    let e = turnout_core::domain::ElectionId::parse("demo").unwrap();
    let policy = turnout_core::store::OtpPolicy {
        validity: Duration::from_secs(600),
        cooldown: Duration::ZERO,
        max_sends: 3,
        max_attempts: 5,
    };
    for n in 1..=5 {
        let voter = turnout_core::domain::Username::parse(&format!("student{n:05}")).unwrap();
        let to = turnout_core::domain::VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap();
        app.store.issue_otp(&e, &voter, &to, policy, Timestamp::now()).await.unwrap();
    }
    let (officer, _) = app.staff("officer1", vec![Role::Officer]);

    // Act: pages of two, following `next_before`.
    let (mut voters, mut pages, mut before) = (Vec::new(), Vec::new(), None::<i64>);
    loop {
        let url = match before {
            Some(b) => format!("{}/officer/elections/demo/outbox?limit=2&before={b}", app.url),
            None => format!("{}/officer/elections/demo/outbox?limit=2", app.url),
        };
        let page = outbox_page(&officer, &url).await;
        let mail = page["mail"].as_array().unwrap();
        pages.push(mail.len());
        for row in mail {
            assert!(row["recipient"].as_str().unwrap().contains('*'), "masked: {row}");
            voters.push(row["voter"].as_str().unwrap().to_owned());
        }
        match page["next_before"].as_i64() {
            Some(next) => before = Some(next),
            None => break,
        }
        assert!(pages.len() < 10, "the cursor moves on");
    }

    // Assert: 2 + 2 + 1, newest first, and no link to an empty page after the last.
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(voters, ["student00005", "student00004", "student00003", "student00002", "student00001"]);
    let whole = outbox_page(&officer, &format!("{}/officer/elections/demo/outbox?limit=5", app.url)).await;
    assert_eq!((whole["mail"].as_array().unwrap().len(), whole["next_before"].is_null()), (5, true), "{whole}");
    let bad = officer.get(format!("{}/officer/elections/demo/outbox?before=soon", app.url)).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "a cursor that is not a number is a 400");
}

async fn outbox_page(officer: &reqwest::Client, url: &str) -> Value {
    let res = officer.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_election_is_created_with_its_audit_line_and_an_unreadable_filter_is_a_422() {
    let app = spawn_app().await;
    let (admin, token) = app.staff("admin1", vec![Role::Admin]);
    let now = Timestamp::now();
    let create = |id: &str, eligibility: Value| {
        json!({
            "id": id, "title": "Physics rep", "time_zone": "Europe/London",
            "opens_at": (now + 1.hour()).to_string(), "closes_at": (now + 2.hours()).to_string(),
            "eligibility": eligibility, "contests": [{ "id": "rep", "title": "Rep", "candidates": [] }]
        })
    };
    let post =
        |body: Value| admin.post(format!("{}/admin/elections", app.url)).header(X_CSRF, &token).json(&body).send();
    for bad in ["(departmentNumber=PHYS", "(&(ou=a)(ou=b)", "((ou=a))", "(=PHYS)"] {
        let res = post(create("physics", json!({ "kind": "ldap_filter", "filter": bad }))).await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            (status.as_u16(), body["error"]["field"].as_str()),
            (422, Some("eligibility.filter")),
            "{bad}: {body}"
        );
    }
    let physics = turnout_core::domain::ElectionId::parse("physics").unwrap();
    assert!(app.store.election(&physics).await.unwrap().is_none(), "nothing saved");

    let good = create("physics", json!({ "kind": "ldap_filter", "filter": "(&(departmentNumber=PHYS)(ou=students))" }));
    assert_eq!(post(good).await.unwrap().status(), StatusCode::CREATED);
    let audit = app.store.list_audit(0, 100).await.unwrap();
    let created: Vec<_> = audit.iter().filter(|a| a.action == "election.created").collect();
    assert_eq!(created.len(), 1, "{audit:?}");
    assert_eq!(created[0].election.as_deref(), Some("physics"));
}
