//! Who may vote where, who runs the election, and how sign-in resists guessing.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_core::domain::{ElectionId, Username, VoterEmail};
use turnout_core::store::RollEntry;
use turnout_devstack::slapd::{ADMIN_GROUP, OFFICER_GROUP, PHYSICS_GROUP, student_password, student_uid};

use crate::helpers::{TestApp, as_refs, directory, spawn_app, template_settings};

async fn election(app: &TestApp, id: &str, eligibility: Value) {
    let now = Timestamp::now();
    let mut e = turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_mins(60),
    );
    e["id"] = id.into();
    e["eligibility"] = eligibility;
    app.store.create_election(&serde_json::from_value(e).unwrap(), now).await.unwrap();
}

async fn login_json(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    let res = app.login(user, password).await;
    (res.status().as_u16(), res.json().await.unwrap())
}

fn eligible(body: &Value) -> Vec<String> {
    let mut list: Vec<String> =
        body["eligible"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    list.sort();
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligibility_per_election_from_roll_group_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let app = spawn_app(&as_refs(&template_settings(&slapd))).await;
    election(&app, "roll", json!({"kind": "roll"})).await;
    election(&app, "physics", json!({"kind": "ldap_group", "group_dn": PHYSICS_GROUP})).await;
    election(&app, "phys-filter", json!({"kind": "ldap_filter", "filter": "(departmentNumber=PHYS)"})).await;
    let roll = ElectionId::parse("roll").unwrap();
    let entry = RollEntry {
        uid: Username::parse(&student_uid(1)).unwrap(),
        email: Some(VoterEmail::parse("first@roll.turnout.test").unwrap()),
        name: None,
        columns: Default::default(),
    };
    app.store.import_roll(&roll, &[entry]).await.unwrap();

    let (status, body) = login_json(&app, &student_uid(1), &student_password(1)).await;
    assert_eq!(status, 200);
    assert_eq!(eligible(&body), ["demo", "roll"]);
    let (_, body) = login_json(&app, &student_uid(2), &student_password(2)).await;
    assert_eq!(eligible(&body), ["demo", "phys-filter", "physics"]);
    let (_, body) = login_json(&app, &student_uid(3), &student_password(3)).await;
    assert_eq!(eligible(&body), ["demo"]);
    assert_eq!(body["roles"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_eligible_nowhere_gets_403_and_roles_come_from_groups_or_lists() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    settings.extend([
        ("TURNOUT_LDAP_ADMIN_GROUP", ADMIN_GROUP.to_owned()),
        ("TURNOUT_LDAP_OFFICER_GROUP", OFFICER_GROUP.to_owned()),
        ("TURNOUT_ADMINS", format!("{}, someone-else", student_uid(7))),
    ]);
    let app = spawn_app(&as_refs(&settings)).await;

    let (_, body) = login_json(&app, "admin1", "vote-admin1").await;
    assert_eq!(body["roles"], json!(["admin"]));
    let (_, body) = login_json(&app, "officer1", "vote-officer1").await;
    assert_eq!(body["roles"], json!(["officer"]));
    let (_, body) = login_json(&app, &student_uid(7), &student_password(7)).await;
    assert_eq!(body["roles"], json!(["admin"]), "from TURNOUT_ADMINS");
    let (_, body) = login_json(&app, &student_uid(3), &student_password(3)).await;
    assert_eq!(body["roles"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_on_any_open_election_is_a_clear_403() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("turnout.db").display().to_string();
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_LDAP_ADMIN_GROUP", ADMIN_GROUP.to_owned()));
    // A store holding only a roll election with nobody on it.
    let store = turnout_core::store::SqliteStore::open(
        std::path::Path::new(&db),
        turnout_core::store::store_keys(&turnout_core::Settings::for_tests(&[])),
    )
    .await
    .unwrap();
    let now = Timestamp::now();
    let mut e = turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_mins(60),
    );
    e["id"] = "roll-only".into();
    e["eligibility"] = json!({"kind": "roll"});
    turnout_core::store::Elections::create_election(&store, &serde_json::from_value(e).unwrap(), now).await.unwrap();
    drop(store);
    settings.push(("TURNOUT_DATABASE", db.clone()));
    let app = crate::helpers::spawn_app_without_demo(&as_refs(&settings)).await;

    let (status, body) = login_json(&app, &student_uid(3), &student_password(3)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "not_eligible");
    assert!(body["error"]["message"].as_str().unwrap().contains("not on the voter list"));
    // Staff still get in.
    let (status, body) = login_json(&app, "admin1", "vote-admin1").await;
    assert_eq!((status, body["roles"].clone()), (200, json!(["admin"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_slow_one_username_down_whether_or_not_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_LOGIN_FREE_FAILURES", "3".to_owned()));
    let app = spawn_app(&as_refs(&settings)).await;

    for user in [student_uid(5), "no-such-student".to_owned()] {
        let mut codes = Vec::new();
        for _ in 0..5 {
            let res = app.login(&user, "wrong-password").await;
            let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let body: Value = res.json().await.unwrap();
            codes.push((body["error"]["code"].as_str().unwrap().to_owned(), retry));
        }
        assert!(codes[..3].iter().all(|(c, _)| c == "invalid_credentials"), "{user}: {codes:?}");
        assert_eq!(codes[3].0, "login_throttled", "{user}: {codes:?}");
        assert!(codes[3].1.is_some(), "throttled answers say when");
    }
    // Other usernames are unaffected; after the wait, the right password works and resets.
    assert_eq!(app.login(&student_uid(6), &student_password(6)).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login(&student_uid(5), &student_password(5)).await.status(), StatusCode::OK);
    assert_eq!(app.login(&student_uid(5), "wrong").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_look_alike_in_message_and_timing() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let app = spawn_app(&as_refs(&template_settings(&slapd))).await;

    async fn median_ms(app: &TestApp, cases: Vec<(String, String)>) -> (f64, Vec<String>) {
        let mut times = Vec::new();
        let mut messages = Vec::new();
        for (user, password) in cases {
            let started = Instant::now();
            let res = app.login(&user, &password).await;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let body: Value = res.json().await.unwrap();
            messages.push(body["error"]["message"].as_str().unwrap().to_owned());
        }
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], messages)
    }
    // Distinct usernames each time, so throttling does not enter into it.
    let wrong_password = median_ms(&app, (1..=9).map(|n| (student_uid(n), "wrong".to_owned())).collect()).await;
    let unknown_user = median_ms(&app, (1..=9).map(|n| (format!("ghost{n}"), "wrong".to_owned())).collect()).await;
    let malformed = median_ms(&app, (1..=9).map(|n| (format!("*)(uid=*{n}"), "wrong".to_owned())).collect()).await;
    let empty = median_ms(&app, (10..=18).map(|n| (student_uid(n), " ".to_owned())).collect()).await;

    let medians = [wrong_password.0, unknown_user.0, malformed.0, empty.0];
    println!(
        "failed-login medians (ms): wrong password {:.1}, unknown user {:.1}, malformed {:.1}, blank {:.1}",
        medians[0], medians[1], medians[2], medians[3]
    );
    for m in medians {
        assert!(m >= 115.0, "a failure answered in {m:.1} ms, under the floor");
    }
    let spread = medians.iter().cloned().fold(f64::MIN, f64::max) - medians.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 40.0, "timing tells failures apart: {medians:?}");
    for (_, messages) in [&wrong_password, &unknown_user, &malformed, &empty] {
        assert!(messages.iter().all(|m| m == "Wrong username or password."), "{messages:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_awkward_usernames_get_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let app = spawn_app(&as_refs(&template_settings(&slapd))).await;
    let long = "a".repeat(10_000);
    let cases: &[(&str, &str)] = &[
        ("*)(uid=*", "x"),
        ("admin)(|(password=*)", "x"),
        ("a,b=c", "x"),
        ("cn=admin,dc=turnout,dc=test", "x"),
        ("étudiant", "x"),
        ("学生", "x"),
        ("user\\0", "x"),
        (long.as_str(), "x"),
        (&"b".repeat(64), "x"),
        (" ", "x"),
        ("student00001", ""),
        ("student00001", "\t \n"),
    ];
    for (user, password) in cases {
        let status = app.login(user, password).await.status();
        assert!(status.is_client_error(), "{user:?}/{password:?} gave {status}");
    }
    let huge = app.login(&"c".repeat(40_000), "x").await.status();
    assert_eq!(huge, StatusCode::PAYLOAD_TOO_LARGE);
}

/// An auth service whose only open election, "council", takes its voters from the roll.
async fn roll_election_only(slapd: &turnout_devstack::slapd::Slapd) -> TestApp {
    let app = crate::helpers::spawn_app_without_demo(&as_refs(&template_settings(slapd))).await;
    election(&app, "council", json!({"kind": "roll"})).await;
    app
}

/// Logins per case in the directory-operation test (the test directory has 20 students).
const LOGINS: u32 = 20;

async fn roll_of(app: &TestApp, id: &str, students: std::ops::RangeInclusive<u32>, with_email: bool) {
    let roll = ElectionId::parse(id).unwrap();
    let entries: Vec<RollEntry> = students
        .map(|n| RollEntry {
            uid: Username::parse(&student_uid(n)).unwrap(),
            email: with_email.then(|| VoterEmail::parse(&format!("{}@roll.turnout.test", student_uid(n))).unwrap()),
            name: None,
            columns: Default::default(),
        })
        .collect();
    app.store.import_roll(&roll, &entries).await.unwrap();
}

fn masked(email: &str) -> String {
    VoterEmail::parse(email).unwrap().masked()
}

/// Directory binds and searches made by `LOGINS` sign-ins of students 1..=LOGINS, net of
/// what reading the counters costs (and of the readiness probe's occasional search).
async fn directory_ops(app: &TestApp, slapd: &turnout_devstack::slapd::Slapd) -> (u64, u64) {
    let s0 = slapd.operations().unwrap();
    let s1 = slapd.operations().unwrap();
    for n in 1..=LOGINS {
        let (status, body) = login_json(app, &student_uid(n), &student_password(n)).await;
        assert_eq!(status, 200, "{body}");
    }
    let s2 = slapd.operations().unwrap();
    let reading = (s1.0 - s0.0, s1.1 - s0.1);
    (s2.0 - s1.0 - reading.0, s2.1 - s1.1 - reading.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_that_gives_the_address_makes_sign_in_one_directory_operation() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    // Only a roll election is open, and its roll has every voter's address.
    let app = roll_election_only(&slapd).await;
    roll_of(&app, "council", 1..=LOGINS, true).await;

    let (binds, searches) = directory_ops(&app, &slapd).await;
    assert_eq!(binds, u64::from(LOGINS), "one bind per sign-in");
    assert!(searches <= 2, "no mail read when the roll gives the address: {searches} searches");
    let (_, body) = login_json(&app, &student_uid(1), &student_password(1)).await;
    assert_eq!(body["email"], masked(&format!("{}@roll.turnout.test", student_uid(1))), "{body}");

    // Once an election the roll does not cover opens, the directory's address is read again.
    election(&app, "everyone", json!({"kind": "everyone"})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the open-elections cache
    let (binds, searches) = directory_ops(&app, &slapd).await;
    assert_eq!(binds, u64::from(LOGINS));
    assert!(searches >= u64::from(LOGINS), "{searches} searches");
    let (_, body) = login_json(&app, &student_uid(1), &student_password(1)).await;
    assert_eq!(body["email"], masked(&turnout_devstack::slapd::student_email(1)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_address_lets_a_voter_without_directory_mail_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let app = roll_election_only(&slapd).await;
    let nomail = |email: Option<&str>| RollEntry {
        uid: Username::parse("nomail").unwrap(),
        email: email.map(|e| VoterEmail::parse(e).unwrap()),
        name: None,
        columns: Default::default(),
    };

    // On the roll without an address, and none in the directory: no code could be sent.
    app.store.import_roll(&ElectionId::parse("council").unwrap(), &[nomail(None)]).await.unwrap();
    let (status, body) = login_json(&app, "nomail", "vote-nomail").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no email address"), "{body}");

    // The roll gains the address: the same voter signs in, and codes go there.
    app.store
        .import_roll(&ElectionId::parse("council").unwrap(), &[nomail(Some("no.mail@roll.turnout.test"))])
        .await
        .unwrap();
    let (status, body) = login_json(&app, "nomail", "vote-nomail").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], masked("no.mail@roll.turnout.test"));
    assert_eq!(eligible(&body), ["council"]);
}
