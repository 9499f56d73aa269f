//! A locked-down campus directory: only the service account may read `ou=groups`. Roles
//! and group eligibility work through the service account, and without one a refused
//! read is a clear 503 for that sign-in, never an empty group cached for everyone.

use jiff::Timestamp;
use serde_json::{Value, json};
use turnout_devstack::slapd::{self, ADMIN_GROUP, OFFICER_GROUP, PHYSICS_GROUP, Slapd, student_password, student_uid};

use crate::helpers::{TestApp, as_refs, spawn_app};

fn campus(dir: &std::path::Path) -> Slapd {
    Slapd::start_with(dir, 20, slapd::Access::Campus).expect("slapd starts")
}

fn settings(slapd: &Slapd, with_service_account: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("TURNOUT_LDAP_URL", slapd.url()),
        ("TURNOUT_LDAP_BIND_DN_TEMPLATE", slapd::BIND_TEMPLATE.into()),
        ("TURNOUT_LDAP_ADMIN_GROUP", ADMIN_GROUP.into()),
        ("TURNOUT_LDAP_OFFICER_GROUP", OFFICER_GROUP.into()),
    ];
    if with_service_account {
        v.push(("TURNOUT_LDAP_SERVICE_DN", slapd::SERVICE_DN.into()));
        v.push(("TURNOUT_LDAP_SERVICE_PASSWORD", slapd::SERVICE_PASSWORD.into()));
    }
    v
}

async fn physics_election(app: &TestApp) {
    let now = Timestamp::now();
    let mut e = turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_mins(60),
    );
    e["id"] = "physics".into();
    e["eligibility"] = json!({"kind": "ldap_group", "group_dn": PHYSICS_GROUP});
    app.store.create_election(&serde_json::from_value(e).unwrap(), now).await.unwrap();
}

async fn login_json(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    let res = app.login(user, password).await;
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_group_eligibility_are_read_with_the_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = campus(dir.path());
    let app = spawn_app(&as_refs(&settings(&slapd, true))).await;
    physics_election(&app).await;

    let (status, body) = login_json(&app, "admin1", "vote-admin1").await;
    assert_eq!((status, body["roles"].clone()), (200, json!(["admin"])), "{body}");
    let (status, body) = login_json(&app, "officer1", "vote-officer1").await;
    assert_eq!((status, body["roles"].clone()), (200, json!(["officer"])), "{body}");
    // Student 2 is in the physics group, student 3 is not.
    let (status, body) = login_json(&app, &student_uid(2), &student_password(2)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["eligible"].as_array().unwrap().contains(&json!("physics")), "{body}");
    let (_, body) = login_json(&app, &student_uid(3), &student_password(3)).await;
    assert!(!body["eligible"].as_array().unwrap().contains(&json!("physics")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_service_account_a_refused_group_read_is_a_503_and_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = campus(dir.path());
    let app = spawn_app(&as_refs(&settings(&slapd, false))).await;
    for attempt in 1..=3 {
        let res = app.login("admin1", "vote-admin1").await;
        let status = res.status().as_u16();
        let retry = res.headers().contains_key("retry-after");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str(), retry),
            (503, Some("directory_unavailable"), true),
            "{attempt}: {body}"
        );
    }
    // The refusals are not an outage: the breaker stays closed (a wrong password is still 401).
    let (status, _) = login_json(&app, &student_uid(4), "wrong").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_nobody_can_read_holds_up_only_elections_this_session_could_reach() {
    // No service account, and an election whose group does not exist (a typo): under a
    // voter's bind that is indistinguishable from "hidden from you", so it is an error,
    // but only for elections that open before this session would expire.
    let dir = tempfile::tempdir().unwrap();
    let slapd = crate::helpers::directory(dir.path());
    let app = spawn_app(&as_refs(&crate::helpers::template_settings(&slapd))).await;
    let now = Timestamp::now();
    let typo = json!({"kind": "ldap_group", "group_dn": "cn=phsyics,ou=groups,dc=turnout,dc=test"});
    let create = |id: &str, opens: Timestamp| {
        let mut e = turnout_devstack::stack::demo_election(opens, opens + jiff::SignedDuration::from_hours(2));
        e["id"] = id.into();
        e["eligibility"] = typo.clone();
        serde_json::from_value::<turnout_core::store::NewElection>(e).unwrap()
    };
    app.store
        .create_election(&create("next-month", now + jiff::SignedDuration::from_hours(24 * 30)), now)
        .await
        .unwrap();
    let (status, body) = login_json(&app, &student_uid(5), &student_password(5)).await;
    assert_eq!(status, 200, "next month's election does not hold up today's sign-ins: {body}");

    app.store.create_election(&create("today", now - jiff::SignedDuration::from_mins(1)), now).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the elections cache
    let (status, body) = login_json(&app, &student_uid(6), &student_password(6)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("directory_unavailable")), "{body}");
}
