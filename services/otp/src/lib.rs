//! Turnout's code service: issues one-time codes by email and upgrades a session to
//! "verified" for one election.
//!
//! Layout:
//! - `codes`: TOTP codes with a long step, keyed per voter/election/generation;
//! - `verification`: the issue/verify rules (no HTTP);
//! - `mailer`: the outbox worker that sends codes with lettre; `smtp_outcome`: what an
//!   SMTP answer means for the message and its account;
//! - `routes`: `/e/{election}/otp` page, `request`, `status`, `verify`;
//! - `admin`: officer operations from the command line (widen acceptance, the accounts);
//! - `health`: readiness beyond the store (sender pool, outbox lag); `metrics`.

pub mod admin;
mod codes;
mod health;
mod mailer;
mod metrics;
mod routes;
mod smtp_outcome;
mod verification;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use tokio::sync::{Notify, watch};
use turnout_core::Settings;
use turnout_core::http::{ReadinessCheck, serve_with};
use turnout_core::store::Store;

pub use codes::CodeMaker;
pub use mailer::Mailer;

#[derive(Debug, Clone)]
pub struct OtpConfig {
    pub session_ttl: Duration,
    pub cookie_secure: bool,
}

pub struct Application {
    port: u16,
    server: Server,
    mailer: Arc<Mailer>,
}

impl Application {
    pub fn build(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let codes = Arc::new(CodeMaker::new(settings));
        let wake = Arc::new(Notify::new());
        let mailer = Arc::new(Mailer::new(settings, store.clone(), codes.clone(), wake.clone())?);
        metrics::register(store.clone());
        let deps = web::Data::new(routes::Deps {
            store: store.clone(),
            verifier: verification::Verifier::new(settings, store.clone(), codes),
            mailer: mailer.clone(),
            wake,
            config: OtpConfig { session_ttl: settings.session_ttl, cookie_secure: settings.cookie_secure },
        });
        let checks: Vec<Box<dyn ReadinessCheck>> = vec![
            Box::new(health::SmtpPool(store.clone())),
            Box::new(health::OutboxLag { store: store.clone(), alert: settings.mail.lag_alert }),
        ];
        let (port, server) = serve_with(settings, store, checks, move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(deps.clone())
                .route("/e/{election}/otp", web::get().to(routes::page))
                .route("/e/{election}/otp/request", web::post().to(routes::request))
                .route("/e/{election}/otp/status", web::get().to(routes::status))
                .route("/e/{election}/otp/verify", web::post().to(routes::verify));
        })?;
        Ok(Self { port, server, mailer })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves HTTP and drains the outbox side by side; when the server stops (signal or
    /// handle), the mailer finishes its batch and stops too.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(self.mailer.clone().run(stopped));
        let result = self.server.await;
        let _ = stop.send(true);
        if let Err(e) = worker.await {
            tracing::error!(event = "mailer_exit", error = %e, "the mail worker panicked");
        }
        result
    }
}
