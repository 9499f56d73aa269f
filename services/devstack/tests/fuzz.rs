//! Schemathesis (from PyPI) fuzzes the running stack through nginx with the published
//! OpenAPI document (`/openapi.json`): generated and mutated requests to every operation,
//! signed in and verified as a voter. Zero 5xx and no crash allowed.
//!
//! Needs `target/schemathesis/bin/st` (scripts/test.sh installs it in a venv) or the
//! `TURNOUT_SCHEMATHESIS` variable pointing at an `st` binary.

use std::process::Command;

use turnout_devstack::{Stack, StackOptions, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_in_the_json_api() {
    let st = std::env::var("TURNOUT_SCHEMATHESIS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/schemathesis/bin/st"));
    assert!(st.exists(), "{} is missing: run scripts/test.sh (it installs schemathesis in a venv)", st.display());
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StackOptions::in_dir(dir.path());
    opts.students = 10;
    opts.login_rate = 1000;
    let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await.unwrap().expect("the stack starts");
    let cookie = stack.verified_session_cookie("student00001", "student00001@students.turnout.test").unwrap();

    // The document is served, and names only routes that exist.
    let doc: serde_json::Value =
        reqwest::get(format!("{}/openapi.json", stack.base_url)).await.unwrap().json().await.unwrap();
    // (A route that doesn't exist answers the catch-all "This page ... not found".)
    let http = reqwest::Client::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let probe = path.replace("{election}", "demo");
        for method in methods.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let res = http
                .request(method.clone(), format!("{}{probe}", stack.base_url))
                .header("accept", "application/json")
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(!message.starts_with("This page"), "{method} {path} is documented but not routed");
        }
    }

    let url = stack.base_url.clone();
    let hosts = dir.path().join("st-hosts.toml");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .args(["run", &format!("{url}/openapi.json"), "--base-url", &url])
            .args(["--checks", "not_a_server_error", "--hypothesis-max-examples", "100"])
            .args(["--hypothesis-deadline", "None", "--hypothesis-derandomize", "--workers", "2"])
            .args(["-H", &format!("Cookie: {cookie}"), "-H", "Accept: application/json"])
            .args(["--data-generation-method", "all", "--no-color"])
            .env("SCHEMATHESIS_HOSTS_PATH", hosts)
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "schemathesis found problems:\n{report}");
    // And every service is still up.
    for (name, port, _) in &stack.services {
        let live = reqwest::get(format!("http://127.0.0.1:{port}/health/live")).await.unwrap();
        assert_eq!(live.status(), 200, "{name} is down after fuzzing");
    }
}
