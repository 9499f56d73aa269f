//! Candidates put themselves forward (issue 22), through the ballot service's HTTP API
//! and its no-JavaScript pages: the nomination with a photo, proposers, edits, the admin's
//! decision on a version, the nominee's mail, the candidates page and the ballot.

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use turnout_core::domain::{ElectionId, Username};
use turnout_core::session::Role;

use crate::helpers::{TestApp, error_code, spawn_app};

/// An election whose nomination period runs now (until `closes` from now) and whose
/// voting opens two hours on; each nomination needs `proposers`, and a student may
/// second `max_seconds` per contest.
async fn nominating(app: &TestApp, id: &str, proposers: u32, max_seconds: u32) {
    let now = Timestamp::now();
    let mut e = turnout_devstack::stack::union_election(
        now + SignedDuration::from_hours(2),
        now + SignedDuration::from_hours(3),
    );
    e["id"] = id.into();
    e["nominations"] = json!({
        "opens_at": (now - SignedDuration::from_mins(5)).to_string(),
        "closes_at": (now + SignedDuration::from_mins(60)).to_string(),
        "proposers": proposers, "max_seconds": max_seconds,
    });
    turnout_ballot::seed::create_election(app.store.as_ref(), &e.to_string(), "test").await.unwrap();
}

/// A PNG of `w`×`h` with a text chunk that must not survive.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    let mut bytes = out.into_inner();
    // A tEXt chunk after IHDR (8 signature + 25 IHDR bytes).
    let data = b"Comment\0HOME-ADDRESS-12-ELM-ROAD";
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = b"tEXt".to_vec();
    typed.extend_from_slice(data);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    bytes.splice(33..33, chunk);
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn form(csrf: &str, contest: &str, name: &str, manifesto: &str, photo: Option<(Vec<u8>, &str)>) -> Form {
    let mut f = Form::new()
        .text("csrf", csrf.to_owned())
        .text("contest", contest.to_owned())
        .text("name", name.to_owned())
        .text("manifesto", manifesto.to_owned());
    if let Some((bytes, mime)) = photo {
        f = f.part("photo", Part::bytes(bytes).file_name("me.png").mime_str(mime).unwrap());
    }
    f
}

async fn nominate(app: &TestApp, client: &reqwest::Client, election: &str, form: Form) -> reqwest::Response {
    client.post(format!("{}/e/{election}/nominate", app.url)).multipart(form).send().await.unwrap()
}

async fn post(client: &reqwest::Client, url: String, csrf: &str, body: Value) -> reqwest::Response {
    client.post(url).header("x-csrf-token", csrf).json(&body).send().await.unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.store.list_audit(0, 500).await.unwrap().into_iter().map(|r| r.action).collect()
}

#[tokio::test]
async fn a_student_nominates_with_a_photo_two_others_second_and_the_admin_puts_them_on_the_ballot() {
    let app = spawn_app().await;
    nominating(&app, "spring", 2, 0).await;
    let (nominee, csrf) = app.student(1, "spring", &[], true);
    let manifesto = "Cheaper coffee.\n\nMore seats in the library: https://union.test/plan <script>alert(1)</script>";
    let res = nominate(
        &app,
        &nominee,
        "spring",
        form(&csrf, "president", "Ada Quinn", manifesto, Some((png(1200, 800), "image/png"))),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    let url = format!("{}{}", app.url, body["url"].as_str().unwrap());
    let id = body["nomination"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["nomination"]["status"], "pending");
    assert_eq!(body["nomination"]["version"], 1);

    // The photo: re-encoded JPEG at most 600 px, its text chunk gone, cached for ever.
    let hash = body["nomination"]["content"]["photo"].as_str().unwrap().to_owned();
    let photo = reqwest::get(format!("{}/photos/{hash}.jpg", app.url)).await.unwrap();
    assert_eq!(photo.status(), StatusCode::OK);
    assert_eq!(photo.headers()["content-type"], "image/jpeg");
    assert_eq!(photo.headers()["cache-control"], "public, max-age=60", "pending: it may yet be set aside");
    let bytes = photo.bytes().await.unwrap();
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (600, 400));
    assert!(!bytes.windows(12).any(|w| w == b"HOME-ADDRESS"), "metadata stripped");
    let missing = reqwest::get(format!("{}/photos/{}.jpg", app.url, "0".repeat(64))).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Approving before the proposers are in is refused.
    let (admin, admin_csrf) = app.staff("returning", vec![Role::Admin]);
    let decide = format!("{}/admin/elections/spring/nominations/{id}/decision", app.url);
    let res = post(&admin, decide.clone(), &admin_csrf, json!({ "decision": "approve", "version": 1 })).await;
    assert_eq!(error_code(res).await, (409, "conflict".into()));

    // Two others second; the nominee can't, nobody can twice.
    let res = post(&nominee, format!("{url}/second"), &csrf, json!({ "version": 1 })).await;
    assert_eq!(error_code(res).await.0, 403, "not one's own");
    for n in [2, 3] {
        let (s, c) = app.student(n, "spring", &[], true);
        let unsaid = post(&s, format!("{url}/second"), &c, json!({})).await;
        assert_eq!(unsaid.status().as_u16() / 100, 4, "a second says which version it read");
        let res = post(&s, format!("{url}/second"), &c, json!({ "version": 1 })).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
        let again = post(&s, format!("{url}/second"), &c, json!({ "version": 1 })).await;
        assert_eq!(error_code(again).await, (409, "already_exists".into()));
    }
    // The nominee sees who seconded; anyone else sees only how many.
    let mine: Value = nominee.get(&url).send().await.unwrap().json().await.unwrap();
    let by: Vec<&str> =
        mine["nomination"]["seconds"].as_array().unwrap().iter().map(|s| s["by"].as_str().unwrap()).collect();
    assert_eq!(by, ["student00002", "student00003"]);
    let (other, _) = app.student(9, "spring", &[], true);
    let theirs: Value = other.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(theirs["nomination"]["seconds"], 2);
    assert!(theirs["nomination"].get("nominee").is_none(), "the nominee's account is theirs: {theirs}");
    assert_eq!(mine["nomination"]["nominee"], "student00001");
    let html = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(!html.contains("student00002"), "the public page names no seconder");
    // The nominee is told, before they change anything, that a change asks again.
    let (nominee_page, _) = app.student(1, "spring", &[], false);
    let html = nominee_page.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("the 2 seconds so far: your proposers second the new version again"), "{html}");

    let res = post(&admin, decide.clone(), &admin_csrf, json!({ "decision": "approve", "version": 1 })).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    // A retried decision changes nothing.
    let res = post(&admin, decide, &admin_csrf, json!({ "decision": "approve", "version": 1 })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let photo = reqwest::get(format!("{}/photos/{hash}.jpg", app.url)).await.unwrap();
    assert_eq!(photo.headers()["cache-control"], "public, max-age=60", "a candidate's, still changeable");

    // The candidates page (JSON and HTML, escaped) and the ballot list the candidate.
    let page: Value = reqwest::Client::new()
        .get(format!("{}/e/spring/candidates", app.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let president = &page["contests"][0];
    let listed = president["candidates"].as_array().unwrap().iter().find(|c| c["name"] == "Ada Quinn").unwrap();
    assert_eq!(listed["manifesto"], manifesto);
    assert_eq!(listed["photo"], format!("/photos/{hash}.jpg"));
    assert!(!president["candidates"].as_array().unwrap().iter().any(|c| c["id"] == "ron"), "RON is no candidate");
    let html = reqwest::get(format!("{}/e/spring/candidates", app.url)).await.unwrap().text().await.unwrap();
    assert!(!html.contains("<script>alert"), "escaped");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{html}");
    assert!(html.contains(r#"<a href="https://union.test/plan" rel="nofollow ugc noopener noreferrer">"#));
    let candidate = format!("n-{id}");
    assert!(html.contains(&format!(r#"id="c-president-{candidate}""#)));
    let voter = app.voter_in(4, "spring", &[], false);
    let ballot = voter.get(format!("{}/e/spring/ballot", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(ballot.contains("Ada Quinn"));
    assert!(
        ballot.contains(&format!("/e/spring/candidates#c-president-{candidate}")),
        "the ballot links the manifesto"
    );

    // Told by mail, once; every step is in the audit log.
    let notices = app.store.notices(&format!("nomination:{id}:"), 10).await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].recipient, "student00001@students.turnout.test");
    assert!(notices[0].subject.contains("approved"));
    let actions = audit_actions(&app).await;
    for a in ["nomination.submitted", "nomination.seconded", "nomination.approved"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert_eq!(actions.iter().filter(|a| *a == "nomination.approved").count(), 1);
}

#[tokio::test]
async fn a_decision_names_the_version_read_and_a_rejection_gives_the_nominee_its_reason() {
    let app = spawn_app().await;
    nominating(&app, "spring", 0, 0).await;
    let (nominee, csrf) = app.student(1, "spring", &[], true);
    let res = nominate(&app, &nominee, "spring", form(&csrf, "council", "Bo Grant", "Version one.", None)).await;
    let body: Value = res.json().await.unwrap();
    let url = format!("{}{}", app.url, body["url"].as_str().unwrap());
    let id = body["nomination"]["id"].as_str().unwrap().to_owned();
    // The nominee edits: version 2.
    let res = nominee.post(&url).multipart(form(&csrf, "", "Bo Grant", "Version two.", None)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    // Someone else can't edit it.
    let (other, other_csrf) = app.student(2, "spring", &[], true);
    let res = other.post(&url).multipart(form(&other_csrf, "", "Mallory", "Mine now.", None)).send().await.unwrap();
    assert_eq!(error_code(res).await.0, 403);

    let (admin, admin_csrf) = app.staff("returning", vec![Role::Admin]);
    let decide = format!("{}/admin/elections/spring/nominations/{id}/decision", app.url);
    let res = post(&admin, decide.clone(), &admin_csrf, json!({ "decision": "approve", "version": 1 })).await;
    assert_eq!(error_code(res).await, (409, "conflict".into()), "decided on an old version");
    let res = post(&admin, decide.clone(), &admin_csrf, json!({ "decision": "reject", "version": 2 })).await;
    let (status, code) = error_code(res).await;
    assert_eq!((status, code.as_str()), (422, "invalid_field"), "a rejection needs a reason");
    let res = post(
        &admin,
        decide.clone(),
        &admin_csrf,
        json!({ "decision": "reject", "version": 2, "reason": "Not a registered student." }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let seen: Value = nominee.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["nomination"]["status"], "rejected");
    assert_eq!(seen["nomination"]["reason"], "Not a registered student.");
    assert_eq!(seen["versions"].as_array().unwrap().len(), 2, "every version kept");
    let (stranger, _) = app.student(7, "spring", &[], true);
    let theirs: Value = stranger.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(theirs["nomination"]["status"], "rejected");
    assert!(theirs["nomination"].get("reason").is_none(), "the reason is the nominee's: {theirs}");
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(!page.contains("Not a registered student."));
    let notices = app.store.notices(&format!("nomination:{id}:"), 10).await.unwrap();
    assert!(notices[0].body.contains("Not a registered student."));
    // The admin's queue shows both versions and which was decided.
    let queue: Value = admin
        .get(format!("{}/admin/elections/spring/nominations?status=all", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queue["nominations"][0]["versions"].as_array().unwrap().len(), 2);
    assert_eq!(queue["nominations"][0]["nomination"]["decided_version"], 2);
    // Withdrawn: gone from the queue's pending view, and no more edits.
    let res = post(&nominee, format!("{url}/withdraw"), &csrf, json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = nominee.post(&url).multipart(form(&csrf, "", "Bo Grant", "Back again.", None)).send().await.unwrap();
    assert_eq!(error_code(res).await.0, 409);
    let actions = audit_actions(&app).await;
    for a in ["nomination.edited", "nomination.rejected", "nomination.withdrawn"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let app = spawn_app().await;
    nominating(&app, "spring", 1, 1).await;
    let (s, csrf) = app.student(1, "spring", &[], true);
    let refused =
        |photo: Vec<u8>, mime: &'static str| form(&csrf, "president", "Cy Dunn", "Hello.", Some((photo, mime)));
    // Not an image, whatever it claims to be.
    let res = nominate(&app, &s, "spring", refused(b"<svg onload=alert(1)>".to_vec(), "image/png")).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_field");
    assert_eq!(body["error"]["field"], "photo");
    // A PNG whose header claims a 100000×100000 canvas (a decompression bomb).
    let mut bomb = png(64, 64);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let ihdr_crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&ihdr_crc.to_be_bytes());
    let res = nominate(&app, &s, "spring", refused(bomb, "image/png")).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "photo", "{body}");
    // Over 5 MB.
    let res = nominate(&app, &s, "spring", refused(vec![0x89; 5 * 1024 * 1024 + 1], "image/png")).await;
    assert_eq!(error_code(res).await, (413, "body_too_large".into()));
    // A manifesto over 5,000 characters; no name.
    let long = "é".repeat(5001);
    let res = nominate(&app, &s, "spring", form(&csrf, "president", "Cy Dunn", &long, None)).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "manifesto", "{body}");
    let res = nominate(&app, &s, "spring", form(&csrf, "president", "  ", "Hi", None)).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A contest of another constituency: the physics rep is for the physics group.
    let res = nominate(&app, &s, "spring", form(&csrf, "physics-rep", "Cy Dunn", "Hi", None)).await;
    assert_eq!(error_code(res).await, (403, "not_eligible".into()));
    // No anti-CSRF token; not signed in; not multipart.
    let res = nominate(&app, &s, "spring", form("forged", "president", "Cy Dunn", "Hi", None)).await;
    assert_eq!(error_code(res).await, (403, "csrf_failed".into()));
    let res = reqwest::Client::new()
        .post(format!("{}/e/spring/nominate", app.url))
        .header("accept", "application/json")
        .multipart(form(&csrf, "president", "Cy Dunn", "Hi", None))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await.0, 401);
    let res = post(&s, format!("{}/e/spring/nominate", app.url), &csrf, json!({ "contest": "president" })).await;
    assert_eq!(error_code(res).await.0, 415);
    assert!(
        app.store
            .nominations_of(&ElectionId::parse("spring").unwrap(), &Username::parse("student00001").unwrap())
            .await
            .unwrap()
            .is_empty()
    );

    // Once for a contest; then the second limit (1 per contest per student).
    let ok = nominate(&app, &s, "spring", form(&csrf, "president", "Cy Dunn", "Hi", None)).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let again = nominate(&app, &s, "spring", form(&csrf, "president", "Cy Dunn", "Twice", None)).await;
    assert_eq!(error_code(again).await, (409, "already_exists".into()));
    let (t, t_csrf) = app.student(2, "spring", &[], true);
    let other: Value =
        nominate(&app, &t, "spring", form(&t_csrf, "president", "Di Ekwe", "Me", None)).await.json().await.unwrap();
    let first: Value = app
        .student(1, "spring", &[], true)
        .0
        .get(format!("{}/e/spring/nominate", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_url = format!("{}/e/spring/nominations/{}", app.url, first["mine"][0]["id"].as_str().unwrap());
    let (u, u_csrf) = app.student(3, "spring", &[], true);
    let v1 = json!({ "version": 1 });
    assert_eq!(post(&u, format!("{first_url}/second"), &u_csrf, v1.clone()).await.status(), StatusCode::OK);
    let res = post(&u, format!("{}{}/second", app.url, other["url"].as_str().unwrap()), &u_csrf, v1).await;
    assert_eq!(error_code(res).await, (409, "conflict".into()), "one second per contest");

    // Outside the period.
    let now = Timestamp::now();
    let mut late = turnout_devstack::stack::union_election(
        now + SignedDuration::from_hours(2),
        now + SignedDuration::from_hours(3),
    );
    late["id"] = "late".into();
    late["nominations"] = json!({ "opens_at": (now + SignedDuration::from_mins(30)).to_string(), "closes_at": (now + SignedDuration::from_mins(60)).to_string() });
    turnout_ballot::seed::create_election(app.store.as_ref(), &late.to_string(), "test").await.unwrap();
    let (l, l_csrf) = app.student(1, "late", &[], true);
    let res = nominate(&app, &l, "late", form(&l_csrf, "president", "Cy Dunn", "Hi", None)).await;
    assert_eq!(error_code(res).await, (403, "nominations_closed".into()));
}

#[tokio::test]
async fn the_pages_work_without_javascript_and_show_each_mistake_beside_its_field() {
    let app = spawn_app().await;
    nominating(&app, "spring", 1, 0).await;
    let (browser, csrf) = app.student(1, "spring", &[], false);
    let home = reqwest::get(format!("{}/", app.url)).await.unwrap().text().await.unwrap();
    assert!(home.contains(r#"<a href="/e/spring/nominate">stand as a candidate</a>"#), "the home page leads there");
    let page = browser.get(format!("{}/e/spring/nominate", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"enctype="multipart/form-data""#) && page.contains(r#"name="token""#));
    assert!(!page.contains(r#"value="physics-rep""#), "only contests this student may stand for");
    let token = page.split(r#"name="token" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let long = "x".repeat(5001);
    let res =
        nominate(&app, &browser, "spring", form(&csrf, "council", "Eve Fox", &long, None).text("token", token.clone()))
            .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="manifesto-error""#), "{html}");
    assert!(html.contains(r#"aria-invalid="true" autofocus"#));
    assert!(html.contains(r#"value="Eve Fox""#), "what was typed is kept");
    // A fake photo: the page comes back with the reason beside the photo field.
    let res = nominate(
        &app,
        &browser,
        "spring",
        form(&csrf, "council", "Eve Fox", "Hi", Some((b"GIF89a".to_vec(), "image/gif"))).text("token", token.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains(r#"id="photo-error""#));
    // Sent: to the nomination's page; the same form sent again is the same nomination.
    let res =
        nominate(&app, &browser, "spring", form(&csrf, "council", "Eve Fox", "Hi", None).text("token", token.clone()))
            .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/e/spring/nominations/").expect("the nomination's page").to_owned();
    assert_ne!(id, token, "the server makes the id; the form's token only recognises a resend");
    let res =
        nominate(&app, &browser, "spring", form(&csrf, "council", "Eve Fox", "Hi", None).text("token", token.clone()))
            .await;
    assert_eq!(res.headers()["location"].to_str().unwrap(), location);
    // A signed-out visitor is asked to sign in to second; a student gets the button.
    let public = reqwest::get(format!("{}{location}", app.url)).await.unwrap().text().await.unwrap();
    assert!(public.contains(&format!("/auth/login?next={location}")));
    let (second, second_csrf) = app.student(2, "spring", &[], false);
    let theirs = second.get(format!("{}{location}", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(theirs.contains("Second this nomination"));
    assert!(theirs.contains(r#"<input type="hidden" name="version" value="1">"#), "the form names what was read");
    let res = second
        .post(format!("{}{location}/second", app.url))
        .form(&[("csrf", second_csrf.as_str()), ("version", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let mine = browser.get(format!("{}{location}", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(mine.contains("student00002"), "the nominee sees who seconded");
    // The admin's queue as a page, with a refused decision shown beside its nomination.
    let (cookie, admin_csrf) = app.staff_cookie("returning", vec![Role::Admin]);
    let admin = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let queue = admin
        .get(format!("{}/admin/elections/spring/nominations", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(queue.status(), StatusCode::OK);
    assert!(queue.text().await.unwrap().contains("Eve Fox"));
    let res = admin
        .post(format!("{}/admin/elections/spring/nominations/{id}/decision", app.url))
        .header("cookie", &cookie)
        .form(&[("csrf", admin_csrf.as_str()), ("decision", "reject"), ("version", "1"), ("reason", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains(&format!(r#"id="reason-{id}-error""#)));
    // Students get no admin queue.
    let res = browser
        .get(format!("{}/admin/elections/spring/nominations", app.url))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn an_admin_still_adds_a_candidate_directly_and_the_audit_log_says_so() {
    let app = spawn_app().await;
    nominating(&app, "spring", 0, 0).await;
    let (admin, csrf) = app.staff("returning", vec![Role::Admin]);
    let res = post(
        &admin,
        format!("{}/admin/elections/spring/candidates", app.url),
        &csrf,
        json!({ "contest": "president", "id": "paper-nominee", "name": "Fay Gold", "statement": "Late paper nomination." }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let log = app.store.list_audit(0, 100).await.unwrap();
    let added = log.iter().find(|r| r.action == "candidate.added_by_admin").expect("marked");
    assert_eq!(added.detail["added_by"], "admin");
    assert_eq!(added.actor, "returning");
    // Ids of students' nominations are theirs alone.
    let res = post(
        &admin,
        format!("{}/admin/elections/spring/candidates", app.url),
        &csrf,
        json!({ "contest": "president", "id": "n-0123456789ab", "name": "Impostor" }),
    )
    .await;
    assert_eq!(error_code(res).await.0, 422);
}

#[tokio::test]
async fn a_student_cannot_take_a_rivals_place_by_copying_their_nomination_id() {
    let app = spawn_app().await;
    nominating(&app, "spring", 0, 0).await;
    let (rival, rival_csrf) = app.student(1, "spring", &[], true);
    let res = nominate(&app, &rival, "spring", form(&rival_csrf, "president", "Ada Quinn", "Me.", None)).await;
    let theirs: Value = res.json().await.unwrap();
    let rival_id = theirs["nomination"]["id"].as_str().unwrap().to_owned();
    let (admin, admin_csrf) = app.staff("returning", vec![Role::Admin]);
    let decide = |id: &str| format!("{}/admin/elections/spring/nominations/{id}/decision", app.url);
    let res = post(&admin, decide(&rival_id), &admin_csrf, json!({ "decision": "approve", "version": 1 })).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The attacker sends a token that begins like the rival's id (read from the share
    // link), has their own rejected and withdraws it: the rival stays on the ballot.
    let aimed = format!("{}{}", &rival_id[..12], if rival_id.ends_with('0') { "1".repeat(20) } else { "0".repeat(20) });
    let (attacker, csrf) = app.student(2, "spring", &[], true);
    let res = nominate(
        &app,
        &attacker,
        "spring",
        form(&csrf, "president", "Mallory", "Hi", None).text("token", aimed.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let mine: Value = res.json().await.unwrap();
    let my_id = mine["nomination"]["id"].as_str().unwrap().to_owned();
    assert_ne!(my_id, rival_id);
    assert_ne!(my_id[..12], rival_id[..12], "no shared prefix to aim at");
    let res =
        post(&admin, decide(&my_id), &admin_csrf, json!({ "decision": "reject", "version": 1, "reason": "No." })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = post(&attacker, format!("{}/e/spring/nominations/{my_id}/withdraw", app.url), &csrf, json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let election = app.store.election(&ElectionId::parse("spring").unwrap()).await.unwrap().unwrap();
    let president = election.contests.iter().find(|c| c.id.as_str() == "president").unwrap();
    let ada = president.candidates.iter().find(|c| c.id.as_str() == format!("n-{rival_id}")).expect("still there");
    assert_eq!((ada.name.as_str(), ada.status), ("Ada Quinn", turnout_core::store::CandidateStatus::Approved));
    assert!(!president.candidates.iter().any(|c| c.name == "Mallory"));
}

#[tokio::test]
async fn a_rejected_or_replaced_photo_is_the_nominees_and_the_admins_only() {
    let app = spawn_app().await;
    nominating(&app, "spring", 0, 0).await;
    let (nominee, csrf) = app.student(1, "spring", &[], true);
    let sent = form(&csrf, "president", "Ada Quinn", "Hello.", Some((png(64, 64), "image/png")));
    let body: Value = nominate(&app, &nominee, "spring", sent).await.json().await.unwrap();
    let id = body["nomination"]["id"].as_str().unwrap().to_owned();
    let photo = format!("{}/photos/{}.jpg", app.url, body["nomination"]["content"]["photo"].as_str().unwrap());
    assert_eq!(reqwest::get(&photo).await.unwrap().status(), StatusCode::OK, "its share link shows it");

    let (admin, admin_csrf) = app.staff("returning", vec![Role::Admin]);
    let decide = format!("{}/admin/elections/spring/nominations/{id}/decision", app.url);
    let reason = json!({ "decision": "reject", "version": 1, "reason": "Not a photo of you." });
    assert_eq!(post(&admin, decide, &admin_csrf, reason).await.status(), StatusCode::OK);
    let (stranger, _) = app.student(2, "spring", &[], false);
    for (who, client) in [("signed out", reqwest::Client::new()), ("another student", stranger)] {
        let res = client.get(&photo).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{who}");
    }
    for (who, client) in [("the nominee", &nominee), ("an admin", &admin)] {
        let res = client.get(&photo).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{who}");
        assert_eq!(res.headers()["cache-control"], "private, no-store", "{who}");
    }
    // Its share link no longer shows its name, manifesto or photo to anyone else.
    let url = format!("{}{}", app.url, body["url"].as_str().unwrap());
    let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(page.contains("not approved") && !page.contains("Ada Quinn") && !page.contains("/photos/"), "{page}");
    let (stranger, _) = app.student(3, "spring", &[], true);
    let theirs: Value = stranger.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(theirs["nomination"].get("content").is_none(), "{theirs}");
    let mine: Value = nominee.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(mine["nomination"]["content"]["name"], "Ada Quinn", "the nominee still reads their own");
}
