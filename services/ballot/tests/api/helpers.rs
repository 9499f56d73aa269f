use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use turnout_core::Settings;
use turnout_core::domain::{ElectionId, Username, VoterEmail};
use turnout_core::session::{COOKIE_NAME, Role, Session, SessionKeys};
use turnout_core::store::{SqliteStore, Store};

pub struct TestApp {
    pub url: String,
    pub store: Arc<dyn Store>,
    settings: Settings,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The database file.
    pub fn database(&self) -> std::path::PathBuf {
        self.settings.database.clone()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A ballot service with `extra` settings (a secret of its own, say, so the command-line
/// tools, which refuse the test secret, can open the same database).
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("turnout.db").display().to_string();
    let mut vars = vec![("TURNOUT_PORT", "0"), ("TURNOUT_DATABASE", db.as_str())];
    vars.extend_from_slice(extra);
    let settings = Settings::for_tests(&vars);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&settings.database, turnout_core::store::store_keys(&settings)).await.unwrap());
    let app = turnout_ballot::Application::build(&settings, store.clone()).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp { url, store, settings, _dir: dir }
}

/// Another ballot process on the database (and roll upload directory) in `dir`, with
/// `extra` settings: its URL and its own store handle.
pub async fn spawn_process_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> (String, Arc<dyn Store>) {
    let db = dir.join("turnout.db").display().to_string();
    let mut vars = vec![("TURNOUT_PORT", "0"), ("TURNOUT_DATABASE", db.as_str())];
    vars.extend_from_slice(extra);
    let settings = Settings::for_tests(&vars);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&settings.database, turnout_core::store::store_keys(&settings)).await.unwrap());
    let app = turnout_ballot::Application::build(&settings, store.clone()).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (url, store)
}

impl TestApp {
    /// Creates election `id` open from `opens` to `closes` (relative to now) with `grace_secs`.
    pub async fn election(&self, id: &str, opens: SignedDuration, closes: SignedDuration, grace_secs: u64) {
        let now = Timestamp::now();
        let mut e = turnout_devstack::stack::demo_election(now + opens, now + closes);
        e["id"] = id.into();
        e["grace_secs"] = grace_secs.into();
        turnout_ballot::seed::create_election(self.store.as_ref(), &e.to_string(), "test").await.unwrap();
    }

    /// Creates the union election (`turnout_devstack::stack::union_election`) as `id`.
    pub async fn union(&self, id: &str, opens: SignedDuration, closes: SignedDuration, grace_secs: u64) {
        let now = Timestamp::now();
        let mut e = turnout_devstack::stack::union_election(now + opens, now + closes);
        e["id"] = id.into();
        e["grace_secs"] = grace_secs.into();
        turnout_ballot::seed::create_election(self.store.as_ref(), &e.to_string(), "test").await.unwrap();
    }

    /// A voter verified for `election` now whose sign-in found them in `constituencies`
    /// (contest ids of that election), and whether the client asks for JSON.
    pub fn voter_in(&self, n: u32, election: &str, constituencies: &[&str], json: bool) -> reqwest::Client {
        let now = Timestamp::now();
        let id = ElectionId::parse(election).unwrap();
        let session = Session::new(
            Username::parse(&format!("student{n:05}")).unwrap(),
            VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap(),
            vec![],
            now,
            Duration::from_secs(3600),
        )
        .with_constituencies(
            constituencies.iter().map(|c| (id.clone(), turnout_core::domain::ContestId::parse(c).unwrap())).collect(),
        )
        .verified_for(&id, now, Duration::from_secs(3600));
        let token = SessionKeys::from_settings(&self.settings).sign(&session);
        let mut headers = reqwest::header::HeaderMap::new();
        if json {
            headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
        }
        headers.insert(reqwest::header::COOKIE, format!("{COOKIE_NAME}={token}").parse().unwrap());
        reqwest::Client::builder().default_headers(headers).build().unwrap()
    }

    /// A student signed in (not verified) who may take part in `election`, and in the
    /// constituency `contests`: a JSON client (or a browser's, `json` false, that does
    /// not follow redirects) and its anti-CSRF token.
    pub fn student(&self, n: u32, election: &str, constituencies: &[&str], json: bool) -> (reqwest::Client, String) {
        let id = ElectionId::parse(election).unwrap();
        let session = Session::new(
            Username::parse(&format!("student{n:05}")).unwrap(),
            VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap(),
            vec![],
            Timestamp::now(),
            Duration::from_secs(3600),
        )
        .with_eligible(vec![id.clone()])
        .with_constituencies(
            constituencies.iter().map(|c| (id.clone(), turnout_core::domain::ContestId::parse(c).unwrap())).collect(),
        );
        let keys = SessionKeys::from_settings(&self.settings);
        let mut headers = reqwest::header::HeaderMap::new();
        if json {
            headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
        }
        headers.insert(reqwest::header::COOKIE, format!("{COOKIE_NAME}={}", keys.sign(&session)).parse().unwrap());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        (client, keys.csrf_token(&session))
    }

    /// A JSON client whose session was verified for `election` at `verified_at`.
    pub fn voter(&self, n: u32, election: Option<&str>, verified_at: Timestamp) -> reqwest::Client {
        let mut session = Session::new(
            Username::parse(&format!("student{n:05}")).unwrap(),
            VoterEmail::parse(&format!("student{n:05}@students.turnout.test")).unwrap(),
            vec![],
            verified_at,
            Duration::from_secs(3600),
        );
        if let Some(e) = election {
            session = session.verified_for(&ElectionId::parse(e).unwrap(), verified_at, Duration::from_secs(3600));
        }
        let token = SessionKeys::from_settings(&self.settings).sign(&session);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
        headers.insert(reqwest::header::COOKIE, format!("{COOKIE_NAME}={token}").parse().unwrap());
        reqwest::Client::builder().default_headers(headers).build().unwrap()
    }

    fn staff_session(&self, name: &str, roles: Vec<Role>) -> Session {
        Session::new(
            Username::parse(name).unwrap(),
            VoterEmail::parse(&format!("{name}@staff.turnout.test")).unwrap(),
            roles,
            Timestamp::now(),
            Duration::from_secs(3600),
        )
    }

    /// The `Cookie` header value of a console user with `roles`, and its anti-CSRF token.
    pub fn staff_cookie(&self, name: &str, roles: Vec<Role>) -> (String, String) {
        let session = self.staff_session(name, roles);
        let keys = SessionKeys::from_settings(&self.settings);
        (format!("{COOKIE_NAME}={}", keys.sign(&session)), keys.csrf_token(&session))
    }

    /// A JSON client signed in with `roles`, and its anti-CSRF token.
    pub fn staff(&self, name: &str, roles: Vec<Role>) -> (reqwest::Client, String) {
        let session = self.staff_session(name, roles);
        let keys = SessionKeys::from_settings(&self.settings);
        let token = keys.sign(&session);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
        headers.insert(reqwest::header::COOKIE, format!("{COOKIE_NAME}={token}").parse().unwrap());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        (client, keys.csrf_token(&session))
    }

    pub async fn vote(&self, client: &reqwest::Client, election: &str) -> reqwest::Response {
        client
            .post(format!("{}/e/{election}/ballot", self.url))
            .json(&serde_json::json!({ "choices": { "president": "ben-carter" } }))
            .send()
            .await
            .unwrap()
    }
}

pub async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap();
    (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
}
