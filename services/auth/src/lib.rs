//! Turnout's authentication service: checks university LDAP credentials and issues the
//! session token the other services trust.
//!
//! Layout:
//! - `login`: the sign-in rules: throttle, directory, eligibility, roles, the session;
//! - `directory`: the LDAP check (bind-DN template or search-then-bind), escaping, timeouts,
//!   the service account's reads; `shares`: its pool, one share per worker; `breaker`;
//! - `device`: device cookies, so a known browser is throttled on its own;
//! - `routes`: the login page, `POST /auth/login`, `POST /auth/logout`;
//! - `metrics`: sign-ins by outcome, the directory pool and breaker.

mod breaker;
mod device;
mod directory;
mod login;
mod metrics;
mod routes;
mod shares;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use turnout_core::Settings;
use turnout_core::http::{ReadinessCheck, serve_with};
use turnout_core::store::Store;

pub use directory::{Directory, DirectoryError, DirectoryUser, LoginChecks};
pub use login::Login;

/// What the handlers need from the settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub session_ttl: Duration,
    pub cookie_secure: bool,
    /// Peers allowed to name the client's address (nginx).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Readiness: the directory's breaker, pool and one round trip.
struct DirectoryCheck(Arc<Login>);

#[async_trait::async_trait]
impl ReadinessCheck for DirectoryCheck {
    fn name(&self) -> &'static str {
        "ldap"
    }
    async fn check(&self) -> Result<serde_json::Value, String> {
        self.0.directory.status().await
    }
}

pub struct Application {
    port: u16,
    server: Server,
    login: Arc<Login>,
}

impl Application {
    /// Binds `settings.host:settings.port` (port 0 picks a free one) and builds the server.
    pub fn build(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let login = web::Data::new(Login::new(settings, store.clone())?);
        let reporter = login.clone().into_inner();
        metrics::register(login.clone().into_inner());
        let config = web::Data::new(AuthConfig {
            session_ttl: settings.session_ttl,
            cookie_secure: settings.cookie_secure,
            trusted_proxies: settings.login.trusted_proxies.clone(),
        });
        let checks = vec![Box::new(DirectoryCheck(login.clone().into_inner())) as Box<dyn ReadinessCheck>];
        let (port, server) = serve_with(settings, store, checks, move |cfg: &mut web::ServiceConfig| {
            // Runs once on each HTTP worker thread as it starts: that worker's sign-ins
            // use directory connections it opened itself.
            login.directory.claim_share();
            cfg.app_data(login.clone())
                .app_data(config.clone())
                .route("/auth/login", web::get().to(routes::login_page))
                .route("/auth/login", web::post().to(routes::login))
                .route("/auth/logout", web::post().to(routes::logout));
        })?;
        Ok(Self { port, server, login: reporter })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves, with the dashboard reporter (sign-in counts, directory state) beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let reporter = tokio::spawn(self.login.report());
        let served = self.server.await;
        reporter.abort();
        served
    }
}
