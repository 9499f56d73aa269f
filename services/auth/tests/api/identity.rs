//! The voter is the directory's account, not the string typed: every spelling signs in
//! as one canonical username, under both bind strategies, and roles match it.

use serde_json::{Value, json};
use turnout_devstack::slapd::{MIXED_CASE_PASSWORD, MIXED_CASE_UID, student_password};

use crate::helpers::{as_refs, directory, search_settings, spawn_app, template_settings};

async fn signed_in_as(app: &crate::helpers::TestApp, typed: &str, password: &str) -> (u16, Value) {
    let res = app.login(typed, password).await;
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_an_account_is_one_voter_under_both_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    for (strategy, settings) in
        [("dn template", template_settings(&slapd)), ("search then bind", search_settings(&slapd))]
    {
        let app = spawn_app(&as_refs(&settings)).await;
        for typed in ["student00001", "STUDENT00001", "Student00001", " student00001 ", "\tsTuDeNt00001"] {
            let (status, body) = signed_in_as(&app, typed, &student_password(1)).await;
            assert_eq!((status, body["user"].clone()), (200, json!("student00001")), "{strategy}: {typed:?}");
        }
        // Stored as `Mixed.Case`: every spelling works and is the one folded name.
        for typed in [MIXED_CASE_UID, "mixed.case", "MIXED.CASE"] {
            let (status, body) = signed_in_as(&app, typed, MIXED_CASE_PASSWORD).await;
            assert_eq!((status, body["user"].clone()), (200, json!("mixed.case")), "{strategy}: {typed:?}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_search_then_bind_the_identity_is_read_from_the_entry() {
    // A filter that also finds students by mail: signing in with the address is still
    // the account `student00002`, never a second voter named after the address.
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = search_settings(&slapd);
    settings.push((
        "TURNOUT_LDAP_SEARCH_FILTER",
        "(&(objectClass=inetOrgPerson)(|(uid={username})(mail={username})))".into(),
    ));
    let app = spawn_app(&as_refs(&settings)).await;
    for typed in ["student00002", "Student00002@Students.Turnout.Test", "student00002@students.turnout.test"] {
        let (status, body) = signed_in_as(&app, typed, &student_password(2)).await;
        assert_eq!((status, body["user"].clone()), (200, json!("student00002")), "{typed:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_lists_match_the_account_however_it_is_spelled() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    let mut settings = template_settings(&slapd);
    settings.push(("TURNOUT_ADMINS", " Admin1 ".into()));
    settings.push(("TURNOUT_OFFICERS", "OFFICER1,Student00004".into()));
    let app = spawn_app(&as_refs(&settings)).await;
    let cases = [
        ("ADMIN1", "vote-admin1", json!(["admin"])),
        ("admin1", "vote-admin1", json!(["admin"])),
        ("Officer1", "vote-officer1", json!(["officer"])),
        ("student00004", &student_password(4), json!(["officer"])),
        ("STUDENT00003", &student_password(3), json!([])),
    ];
    for (typed, password, roles) in cases {
        let (status, body) = signed_in_as(&app, typed, password).await;
        assert_eq!((status, body["roles"].clone()), (200, roles), "{typed}: {body}");
    }
    // Each staff sign-in leaves the address the officers' notices go to, under the
    // account's own name; a voter's sign-in leaves nothing.
    let since = jiff::Timestamp::now() - std::time::Duration::from_secs(60);
    let officers = app.store.officer_contacts(since).await.unwrap();
    let mut names: Vec<&str> = officers.iter().map(|c| c.username.as_str()).collect();
    names.sort();
    assert_eq!(names, ["officer1", "student00004"], "{officers:?}");
    assert!(officers.iter().all(|c| c.officer && !c.admin && c.email.as_str().contains('@')), "{officers:?}");
}
