//! A started stack plus voter clients that speak JSON through nginx.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use turnout_devstack::slapd::{student_email, student_password, student_uid};
use turnout_devstack::{Stack, StackOptions, unix_now};

pub struct TestStack {
    pub stack: Stack,
    /// Every code read from the sink, to prove none reaches a log.
    pub codes_seen: std::sync::Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(Vec::new()).await
    }

    /// The same stack with more `TURNOUT_*` settings (e.g. another store).
    pub async fn start_with(extra: Vec<(String, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = StackOptions::in_dir(dir.path());
        opts.students = 400;
        opts.union_election = true;
        opts.by_election = true;
        // Above the crash test's sign-ins, below the burst scenario's.
        opts.login_rate = 200;
        // A short step so "several steps later" takes seconds, not minutes.
        opts.env = vec![
            ("TURNOUT_OTP_STEP_SECS".into(), "2".into()),
            ("TURNOUT_OTP_VALIDITY_SECS".into(), "120".into()),
            ("TURNOUT_OTP_RESEND_COOLDOWN_SECS".into(), "1".into()),
            // A short send timeout keeps the outbox lease (and so the crash test) short.
            ("TURNOUT_MAIL_SEND_TIMEOUT_SECS".into(), "2".into()),
        ];
        opts.env.extend(extra);
        let stack = tokio::task::spawn_blocking(move || Stack::start(opts)).await.unwrap().expect("the stack starts");
        Self { stack, codes_seen: std::sync::Mutex::new(Vec::new()), _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.stack.base_url, path)
    }

    /// A fresh browser-like client (own cookie jar) asking for JSON.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    pub async fn login(&self, client: &reqwest::Client, n: u32) -> reqwest::Response {
        client
            .post(self.url("/auth/login"))
            .json(&json!({ "username": student_uid(n), "password": student_password(n) }))
            .send()
            .await
            .unwrap()
    }

    pub async fn request_code(&self, client: &reqwest::Client, election: &str) -> reqwest::Response {
        client.post(self.url(&format!("/e/{election}/otp/request"))).send().await.unwrap()
    }

    /// Requests a code and reads it from the sink.
    pub async fn fetch_code(&self, client: &reqwest::Client, election: &str, n: u32) -> String {
        let since = unix_now() - 0.5;
        let res = self.request_code(client, election).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "code request: {}", res.text().await.unwrap());
        let mail = self.stack.sink.wait_for(&student_email(n), since, Duration::from_secs(15)).await.unwrap();
        let code = mail.code().expect("the mail holds a 6-digit code");
        self.codes_seen.lock().unwrap().push(code.clone());
        code
    }

    pub async fn verify(&self, client: &reqwest::Client, election: &str, code: &str) -> reqwest::Response {
        client.post(self.url(&format!("/e/{election}/otp/verify"))).json(&json!({ "code": code })).send().await.unwrap()
    }

    pub async fn vote(&self, client: &reqwest::Client, election: &str, choices: Value) -> reqwest::Response {
        client
            .post(self.url(&format!("/e/{election}/ballot")))
            .json(&json!({ "choices": choices }))
            .send()
            .await
            .unwrap()
    }

    /// Logged in and verified for `election`.
    pub async fn verified_voter(&self, n: u32, election: &str) -> reqwest::Client {
        let client = self.client();
        assert_eq!(self.login(&client, n).await.status(), StatusCode::OK);
        let code = self.fetch_code(&client, election, n).await;
        assert_eq!(self.verify(&client, election, &code).await.status(), StatusCode::OK);
        client
    }

    /// The store the services use (as their settings choose it).
    pub async fn store(&self) -> std::sync::Arc<dyn turnout_core::store::Store> {
        let env: std::collections::HashMap<String, String> = self.stack.env.iter().cloned().collect();
        let settings = turnout_core::Settings::from_lookup(|k| env.get(k).cloned()).unwrap();
        turnout_core::store::open(&settings).await.unwrap()
    }
}

/// Asserts status and error code, that the body has the one error shape with a request id.
pub async fn expect_error(res: reqwest::Response, status: u16, code: &str, case: &str) -> Value {
    let got = res.status().as_u16();
    let header_id = res.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap_or_else(|e| panic!("{case}: body is not JSON ({e})"));
    assert_eq!(got, status, "{case}: status (body {body})");
    assert_eq!(body["error"]["code"], code, "{case}: error code (body {body})");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: message");
    let id = body["error"]["request_id"].as_str().unwrap_or_else(|| panic!("{case}: request_id missing ({body})"));
    assert_eq!(Some(id.to_owned()), header_id, "{case}: X-Request-Id matches the body");
    body
}
