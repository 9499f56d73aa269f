use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_core::Settings;
use turnout_core::domain::{ElectionId, Username, VoterEmail};
use turnout_core::session::{COOKIE_NAME, Session, SessionKeys};
use turnout_core::store::{NewElection, SqliteStore, Store};

pub struct TestApp {
    pub url: String,
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub dir: Arc<tempfile::TempDir>,
}

pub fn election_json(id: &str) -> serde_json::Value {
    let now = Timestamp::now();
    turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_mins(60),
    )
    .as_object()
    .cloned()
    .map(|mut o| {
        o.insert("id".into(), id.into());
        serde_json::Value::Object(o)
    })
    .unwrap()
}

/// Boots the service with `accounts` as `TURNOUT_SMTP_ACCOUNTS` and a demo election.
pub async fn spawn_app(accounts: &str, overrides: &[(&str, &str)]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_in(dir.clone(), accounts, overrides).await;
    let election: NewElection = serde_json::from_value(election_json("demo")).unwrap();
    app.store.create_election(&election, Timestamp::now()).await.unwrap();
    app
}

/// Another instance on the same database file (its own store handle, as another process
/// would have).
pub async fn spawn_in(dir: Arc<tempfile::TempDir>, accounts: &str, overrides: &[(&str, &str)]) -> TestApp {
    let db = dir.path().join("turnout.db").display().to_string();
    let mut vars = vec![("TURNOUT_PORT", "0"), ("TURNOUT_DATABASE", db.as_str()), ("TURNOUT_SMTP_ACCOUNTS", accounts)];
    vars.extend_from_slice(overrides);
    let settings = Settings::for_tests(&vars);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&settings.database, turnout_core::store::store_keys(&settings)).await.unwrap());
    let app = turnout_otp::Application::build(&settings, store.clone()).unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp { url, settings, store, dir }
}

impl TestApp {
    /// A JSON client holding a signed-in session for student `n` (as auth would issue).
    pub fn voter(&self, n: u32) -> reqwest::Client {
        self.voter_with_email(n, &turnout_devstack::slapd::student_email(n))
    }

    /// A session eligible (as decided at login) for exactly these elections.
    pub fn voter_eligible_for(&self, n: u32, elections: &[&str]) -> reqwest::Client {
        let eligible = elections.iter().map(|e| ElectionId::parse(e).unwrap()).collect();
        self.client_for(n, &turnout_devstack::slapd::student_email(n), eligible)
    }

    pub fn voter_with_email(&self, n: u32, email: &str) -> reqwest::Client {
        self.client_for(n, email, vec![ElectionId::parse("demo").unwrap()])
    }

    fn client_for(&self, n: u32, email: &str, eligible: Vec<ElectionId>) -> reqwest::Client {
        let session = Session::new(
            Username::parse(&turnout_devstack::slapd::student_uid(n)).unwrap(),
            VoterEmail::parse(email).unwrap(),
            vec![],
            Timestamp::now(),
            Duration::from_secs(600),
        )
        .with_eligible(eligible);
        let token = SessionKeys::from_settings(&self.settings).sign(&session);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
        headers.insert(reqwest::header::COOKIE, format!("{COOKIE_NAME}={token}").parse().unwrap());
        reqwest::Client::builder().default_headers(headers).timeout(Duration::from_secs(3)).build().unwrap()
    }

    pub async fn request(&self, client: &reqwest::Client) -> reqwest::Response {
        client.post(format!("{}/e/demo/otp/request", self.url)).send().await.unwrap()
    }

    pub async fn status(&self, client: &reqwest::Client) -> serde_json::Value {
        client.get(format!("{}/e/demo/otp/status", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn verify(&self, client: &reqwest::Client, code: &str) -> reqwest::Response {
        client
            .post(format!("{}/e/demo/otp/verify", self.url))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
            .unwrap()
    }

    /// Polls the delivery status until `state` (or fails after `timeout`).
    pub async fn wait_for_state(&self, client: &reqwest::Client, state: &str, timeout: Duration) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let status = self.status(client).await;
            if status["state"] == state || std::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn account_json(port: u16, password: &str) -> String {
    serde_json::json!([{
        "name": "elections-1", "host": "127.0.0.1", "port": port,
        "username": "elections-1", "password": password,
        "from": "elections-1@turnout.test", "max_concurrent": 2
    }])
    .to_string()
}

/// Waits until the sink holds `n` messages in all.
pub async fn wait_for_count(sink: &turnout_devstack::MailSink, n: u64, timeout: Duration) -> u64 {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let count = sink.count().await.unwrap();
        if count >= n || std::time::Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
