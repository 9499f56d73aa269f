//! HTTPS: nginx's TLS listener (certificate from config; the local stack signs one with
//! a private CA), HSTS on TLS answers only, and a Secure session cookie over TLS while the
//! same deployment's plain-HTTP cookie is not.

use std::process::Command;

use turnout_devstack::slapd::{student_password, student_uid};
use turnout_devstack::{Stack, StackOptions};

/// (status line and headers) of a JSON sign-in with curl.
fn sign_in(url: &str, ca: Option<&std::path::Path>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: application/json",
    ]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let body = format!(r#"{{"username":"{}","password":"{}"}}"#, student_uid(1), student_password(1));
    let out = cmd.args(["-d", &body]).arg(format!("{url}/auth/login")).output().expect("curl runs");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

pub async fn https_serves_the_site_with_hsts_and_secure_cookies() {
    turnout_devstack::process::require("/usr/bin/curl", "curl").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 5;
    opts.tls = Some(None);
    opts.login_rate = 1;
    let mut stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await.unwrap().expect("the stack starts");
    let (https, ca) = stack.https.clone().expect("an HTTPS listener");

    let secure = sign_in(&https, Some(&ca));
    assert!(secure.starts_with("http/1.1 200"), "{secure}");
    let cookie = secure.lines().find(|l| l.starts_with("set-cookie:")).expect("a session cookie");
    for flag in ["secure", "httponly", "samesite=strict"] {
        assert!(cookie.contains(flag), "over TLS the cookie lacks {flag}: {cookie}");
    }
    assert!(secure.contains("strict-transport-security: max-age="), "{secure}");
    assert!(secure.contains("content-security-policy:"), "{secure}");

    // The same deployment over plain HTTP: no HSTS, no Secure flag (it would never come back).
    let plain = sign_in(&stack.base_url, None);
    assert!(plain.starts_with("http/1.1 200"), "{plain}");
    let cookie = plain.lines().find(|l| l.starts_with("set-cookie:")).unwrap();
    assert!(!cookie.contains("secure"), "{cookie}");
    assert!(!plain.contains("strict-transport-security"), "{plain}");

    // An untrusted certificate is refused by a client that checks it.
    let out =
        Command::new("curl").args(["-sS", "-o", "/dev/null"]).arg(format!("{https}/health/live")).output().unwrap();
    assert!(!out.status.success(), "curl accepted a certificate from an unknown CA");

    // nginx's own answers carry each security header once, like the services' answers:
    // sign-ins beyond the burst (1/s, burst 4 here) get its 429, and with auth down, its 503.
    let throttled = (0..12).map(|_| sign_in(&https, Some(&ca))).find(|h| h.starts_with("http/1.1 429"));
    let throttled = throttled.expect("sign-ins beyond the burst are throttled");
    assert!(throttled.contains("retry-after: 1"), "{throttled}");
    each_security_header_once(&throttled);
    each_security_header_once(&secure);
    stack.kill_service("auth");
    std::thread::sleep(std::time::Duration::from_millis(1100)); // past the throttle
    let unavailable = sign_in(&https, Some(&ca));
    assert!(unavailable.starts_with("http/1.1 503"), "{unavailable}");
    assert!(unavailable.contains("retry-after: 5"), "{unavailable}");
    each_security_header_once(&unavailable);
}

fn each_security_header_once(headers: &str) {
    for name in [
        "strict-transport-security",
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "x-request-id",
    ] {
        let n = headers.lines().filter(|l| l.starts_with(&format!("{name}:"))).count();
        assert_eq!(n, 1, "{name} appears {n} times in:\n{headers}");
    }
}
