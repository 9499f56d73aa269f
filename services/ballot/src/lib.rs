//! Turnout's ballot service: elections, the ballot, casting, receipts.
//!
//! Layout:
//! - `voting`: the rules for casting (verified, window, approved candidates, one ballot);
//! - `routes`: the election list, `/e/{election}/ballot`, receipts;
//! - `seed`: the `create-election` command (the console comes later).

mod routes;
pub mod seed;
mod voting;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use turnout_core::Settings;
use turnout_core::http::{BodyLimit, Readiness, common, not_found, request_context};
use turnout_core::session::SessionKeys;
use turnout_core::store::Store;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub fn build(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let keys = web::Data::new(SessionKeys::from_settings(settings));
        let readiness = web::Data::new(Readiness::with_store(store.clone()));
        let store = web::Data::new(store);
        let body_limit = BodyLimit(settings.body_limit);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(request_context))
                .app_data(body_limit)
                .app_data(keys.clone())
                .app_data(store.clone())
                .app_data(readiness.clone())
                .configure(common)
                .route("/", web::get().to(routes::home))
                .route("/e/{election}/ballot", web::get().to(routes::ballot))
                .route("/e/{election}/ballot", web::post().to(routes::cast))
                .route("/e/{election}/receipt", web::get().to(routes::receipt_lookup))
                .route("/e/{election}/receipt/{receipt}", web::get().to(routes::receipt))
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
