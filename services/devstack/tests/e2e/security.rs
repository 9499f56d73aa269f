//! Web security seen from a browser's side: nginx's security headers on every kind of
//! answer, and the session cookie's flags.

use reqwest::StatusCode;
use serde_json::json;
use turnout_devstack::slapd::{student_password, student_uid};

use crate::helpers::TestStack;

fn assert_security_headers(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP")).to_str().unwrap();
    for part in ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "form-action 'self'"] {
        assert!(csp.contains(part), "{what}: CSP without {part}: {csp}");
    }
    assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{what}");
    assert_eq!(h.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{what}");
    assert_eq!(h.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("same-origin"), "{what}");
    assert!(h.contains_key("x-request-id"), "{what}: no request id");
}

pub async fn security_headers_and_cookie_flags_hold(s: &TestStack) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (path, what) in [
        ("/", "home page"),
        ("/e/demo/ballot", "ballot page"),
        ("/auth/login", "login page"),
        ("/static/turnout.css", "static file"),
        ("/nope", "404 from a service"),
        ("/metrics", "404 from nginx"),
    ] {
        let res = http.get(s.url(path)).send().await.unwrap();
        assert_security_headers(&res, what);
    }
    // nginx's own 413 and a service's JSON error carry them too.
    let big = http.post(s.url("/e/demo/ballot")).body(vec![b'x'; 2 * 1024 * 1024]).send().await.unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&big, "nginx 413");

    // The session cookie: HttpOnly, SameSite=Strict, scoped to the whole site.
    let res = http
        .post(s.url("/auth/login"))
        .header("accept", "application/json")
        .json(&json!({"username": student_uid(352), "password": student_password(352)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_security_headers(&res, "sign-in answer");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "session cookie without {flag}: {cookie}");
    }
    // Served over plain HTTP here (TURNOUT_COOKIE_SECURE=false), so not Secure.
    assert!(!cookie.contains("Secure"), "{cookie}");

    // A form posted from another site is refused, sign-in included (login CSRF); the
    // same form from the site itself, or a script sending no Origin, goes through.
    let login = json!({"username": student_uid(354), "password": student_password(354)});
    for (path, body) in
        [("/auth/login", login.clone()), ("/e/demo/ballot", json!({"choices": {}})), ("/e/demo/otp/request", json!({}))]
    {
        let res = http
            .post(s.url(path))
            .header("accept", "application/json")
            .header("origin", "https://evil.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} from another site");
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "csrf_failed", "{path}: {v}");
        assert!(v["error"]["request_id"].is_string());
    }
    let own = format!("http://127.0.0.1:{}", s.stack.nginx_port);
    let res = http
        .post(s.url("/auth/login"))
        .header("accept", "application/json")
        .header("origin", own)
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the site's own form");
}

/// Signing out ends the session on every service, not only in this browser: a copy of
/// the cookie is refused by the ballot service's console and the OTP service within 1 s.
pub async fn a_sign_out_ends_the_session_on_every_service_within_a_second(s: &TestStack) {
    // Arrange: an officer signs in; someone copies the cookie.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = http
        .post(s.url("/auth/login"))
        .header("accept", "application/json")
        .json(&json!({ "username": "officer1", "password": "vote-officer1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("turnout_session="))
        .unwrap();
    let with_copy =
        |path: &str| http.get(s.url(path)).header("accept", "application/json").header("cookie", cookie.clone()).send();
    assert_eq!(with_copy("/officer").await.unwrap().status(), StatusCode::OK, "signed in");

    // Act: sign out.
    let res = http.post(s.url("/auth/logout")).header("accept", "application/json").header("cookie", cookie.clone());
    assert_eq!(res.send().await.unwrap().status(), StatusCode::OK);
    let signed_out = std::time::Instant::now();

    // Assert: the copied cookie stops working on the ballot and OTP services within 1 s.
    for path in ["/officer", "/e/demo/otp/status"] {
        loop {
            let status = with_copy(path).await.unwrap().status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(signed_out.elapsed().as_millis() < 1000, "{path} still answers {status} after 1 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    println!("sign-out reached every service in {} ms", signed_out.elapsed().as_millis());
}
