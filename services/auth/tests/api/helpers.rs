use std::sync::Arc;
use std::time::Duration;

use turnout_core::Settings;
use turnout_core::store::{SqliteStore, Store};
use turnout_devstack::slapd::{self, Slapd};

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// Starts a seeded slapd (kept by the caller) in `dir`.
pub fn directory(dir: &std::path::Path) -> Slapd {
    Slapd::start(dir, 20).expect("slapd starts")
}

pub async fn spawn_app(overrides: &[(&str, &str)]) -> TestApp {
    spawn(overrides, true).await
}

/// The app on the database named in `overrides`, as it is.
pub async fn spawn_app_without_demo(overrides: &[(&str, &str)]) -> TestApp {
    spawn(overrides, false).await
}

async fn spawn(overrides: &[(&str, &str)], with_demo: bool) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("turnout.db").display().to_string();
    let mut vars = vec![("TURNOUT_PORT", "0"), ("TURNOUT_DATABASE", db.as_str())];
    vars.extend_from_slice(overrides);
    let settings = Settings::for_tests(&vars);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&settings.database, turnout_core::store::store_keys(&settings)).await.unwrap());
    let now = jiff::Timestamp::now();
    if !with_demo {
        let app = turnout_auth::Application::build(&settings, store.clone()).unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        return TestApp { url, http: json_client(), store, _dir: dir };
    }
    let demo = turnout_devstack::stack::demo_election(
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_mins(60),
    );
    store.create_election(&serde_json::from_value(demo).unwrap(), now).await.unwrap();
    let app = turnout_auth::Application::build(&settings, store.clone()).unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = json_client();
    TestApp { url, http, store, _dir: dir }
}

impl TestApp {
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/login", self.url))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// A sign-in as nginx forwards it from `address` (the test client is on loopback,
    /// which the default `TURNOUT_TRUSTED_PROXIES` trusts).
    pub async fn login_from(&self, address: &str, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/auth/login", self.url))
            .header("X-Real-IP", address)
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap()
    }
}

pub fn template_settings(slapd: &Slapd) -> Vec<(&'static str, String)> {
    vec![("TURNOUT_LDAP_URL", slapd.url()), ("TURNOUT_LDAP_BIND_DN_TEMPLATE", slapd::BIND_TEMPLATE.into())]
}

pub fn search_settings(slapd: &Slapd) -> Vec<(&'static str, String)> {
    vec![
        ("TURNOUT_LDAP_URL", slapd.url()),
        ("TURNOUT_LDAP_SEARCH_BASE", slapd::PEOPLE_DN.into()),
        ("TURNOUT_LDAP_SERVICE_DN", slapd::SERVICE_DN.into()),
        ("TURNOUT_LDAP_SERVICE_PASSWORD", slapd::SERVICE_PASSWORD.into()),
    ]
}

pub fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, val)| (*k, val.as_str())).collect()
}

fn json_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, "application/json".parse().unwrap());
    reqwest::Client::builder().default_headers(headers).timeout(Duration::from_secs(30)).build().unwrap()
}
