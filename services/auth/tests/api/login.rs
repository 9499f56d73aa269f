use reqwest::StatusCode;
use serde_json::Value;
use turnout_devstack::slapd::{student_password, student_uid};

use crate::helpers::{as_refs, directory, search_settings, spawn_app, template_settings};

async fn code_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn both_bind_strategies_accept_the_right_password_and_refuse_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = directory(dir.path());
    for (strategy, settings) in
        [("dn template", template_settings(&slapd)), ("search then bind", search_settings(&slapd))]
    {
        let app = spawn_app(&as_refs(&settings)).await;

        let res = app.login(&student_uid(3), &student_password(3)).await;
        assert_eq!(res.status(), StatusCode::OK, "{strategy}: right password");
        assert!(res.headers().get("set-cookie").is_some());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["email"], "s**********3@students.turnout.test", "{strategy}: mail attribute read");

        let cases = [
            (student_uid(3), "wrong".to_owned(), "wrong password"),
            (student_uid(3), student_password(4), "another student's password"),
            ("ghost".into(), "x".into(), "unknown user"),
            ("*)(uid=*".into(), "x".into(), "filter injection"),
            ("*".into(), "x".into(), "wildcard"),
            ("student00003)(|(uid=*".into(), student_password(3), "injection with a real password"),
            ("student00003,ou=people".into(), student_password(3), "DN injection"),
            (student_uid(3), "".into(), "empty password"),
            (student_uid(3), " \t ".into(), "whitespace password"),
        ];
        for (i, (user, password, case)) in cases.into_iter().enumerate() {
            // Each from its own address, so the throttle stays out of the way.
            let address = format!("192.0.2.{}", i + 1);
            assert_eq!(
                code_of(app.login_from(&address, &user, &password).await).await,
                (401, "invalid_credentials".to_owned()),
                "{strategy}: {case}"
            );
        }
        // An entry without a mail attribute can't receive a code: refused clearly.
        let (status, code) = code_of(app.login("nomail", "vote-nomail").await).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{strategy}: no mail");
    }
}

#[tokio::test]
async fn a_dead_directory_gives_503_with_retry_after_and_an_empty_password_never_reaches_it() {
    // Nothing listens on this port.
    let port = turnout_devstack::process::free_port();
    let url = format!("ldap://127.0.0.1:{port}");
    let app = spawn_app(&[("TURNOUT_LDAP_URL", url.as_str()), ("TURNOUT_LDAP_CONNECT_TIMEOUT_MS", "500")]).await;

    let res = app.login(&student_uid(1), "some-password").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "directory_unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("directory"));

    // Refused before any network call: 401, not 503, although the directory is down.
    assert_eq!(code_of(app.login(&student_uid(1), "").await).await, (401, "invalid_credentials".to_owned()));
}

#[tokio::test]
async fn the_directory_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = directory(dir.path());
    let app = spawn_app(&as_refs(&template_settings(&slapd))).await;
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::OK);
    slapd.stop();
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    slapd.restart().unwrap();
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn liveness_never_touches_the_directory_and_the_login_page_renders() {
    let port = turnout_devstack::process::free_port();
    let url = format!("ldap://127.0.0.1:{port}");
    let app = spawn_app(&[("TURNOUT_LDAP_URL", url.as_str())]).await;
    let live = app.http.get(format!("{}/health/live", app.url)).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let ready: Value = app.http.get(format!("{}/health/ready", app.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["store"]["ok"], true);

    let page = reqwest::get(format!("{}/auth/login?next=//evil.example", app.url)).await.unwrap().text().await.unwrap();
    assert!(page.contains("name=\"password\"") && page.contains("value=\"/\""), "open redirect guarded: {page}");
}

#[tokio::test]
async fn starttls_to_the_directory_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let turnout_devstack::tls::PrivateCa { ca, cert, key } = turnout_devstack::tls::private_ca(dir.path()).unwrap();
    let tls = turnout_devstack::slapd::DirectoryTls { ca: &ca, cert: &cert, key: &key };
    let slapd = turnout_devstack::Slapd::start_tls(dir.path(), 5, &tls).unwrap();
    let url = format!("ldap://localhost:{}", slapd.port);
    let ca = ca.display().to_string();
    let secure =
        [("TURNOUT_LDAP_URL", url.as_str()), ("TURNOUT_LDAP_STARTTLS", "true"), ("TURNOUT_LDAP_CA_CERT", ca.as_str())];
    let app = spawn_app(&secure).await;
    assert_eq!(app.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::OK);

    // Without our CA the certificate is not trusted: the directory counts as unavailable.
    let untrusted = spawn_app(&[("TURNOUT_LDAP_URL", url.as_str()), ("TURNOUT_LDAP_STARTTLS", "true")]).await;
    assert_eq!(untrusted.login(&student_uid(1), &student_password(1)).await.status(), StatusCode::SERVICE_UNAVAILABLE);
}
