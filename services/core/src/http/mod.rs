//! actix-web glue shared by the service crates (feature `http`). Domain modules never
//! import from here.
//!
//! Layout:
//! - `respond`: `ApiError` as a response, content negotiation, page rendering;
//! - `middleware`: request ids, access logs, and errors re-rendered as JSON or HTML;
//! - `input`: the body extractor (JSON or form, size-limited, clear 4xx on bad input);
//! - `auth`: session cookie extractors;
//! - `client_address`: who is asking, through nginx but never from a client's own header;
//! - `health`: `/health/live` and `/health/ready`.

mod auth;
mod client_address;
mod health;
mod input;
mod middleware;
mod respond;

pub use auth::{
    Admin, Authenticated, CSRF_HEADER, Officer, Staff, clear_session_cookie, cookie_secure, session_cookie,
};
pub use client_address::client_address;
pub use health::{Readiness, ReadinessCheck, StoreCheck, health_routes};
pub use input::{Body, BodyLimit, Input};
pub use middleware::{RequestId, request_context};
pub use respond::{Nav, html, not_found, wants_json};

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::Settings;
use crate::session::SessionKeys;
use crate::store::Store;

/// Binds `settings.host:settings.port` (0 picks a free port) and builds a service's
/// server with everything services share: the request middleware, the body limit, the
/// session keys and the sign-out list (kept fresh from the store), the probes and the JSON/HTML 404. `routes` adds the service's own data
/// and routes. Returns the bound port and the server (not yet awaited).
pub fn serve<F>(settings: &Settings, store: Arc<dyn Store>, routes: F) -> std::io::Result<(u16, Server)>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    serve_with(settings, store, Vec::new(), routes)
}

/// `serve`, with readiness checks beyond the store (e.g. the directory).
pub fn serve_with<F>(
    settings: &Settings,
    store: Arc<dyn Store>,
    extra_checks: Vec<Box<dyn ReadinessCheck>>,
    routes: F,
) -> std::io::Result<(u16, Server)>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
    let port = listener.local_addr()?.port();
    let keys = web::Data::new(SessionKeys::from_settings(settings));
    let sign_outs = crate::sign_outs::SignOuts::new(settings.session_ttl);
    sign_outs.keep_fresh(store.clone());
    let sign_outs = web::Data::from(sign_outs);
    let mut readiness = Readiness::with_store(store);
    readiness.0.extend(extra_checks);
    let readiness = web::Data::new(readiness);
    let body_limit = BodyLimit(settings.body_limit);
    let workers = settings.http_worker_count();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(request_context))
            .app_data(body_limit)
            .app_data(keys.clone())
            .app_data(sign_outs.clone())
            .app_data(readiness.clone())
            .configure(common)
            .configure(routes.clone())
            .default_service(web::to(not_found))
    })
    // Longer than nginx's upstream keepalive_timeout (60 s): nginx must always be the side
    // that closes an idle connection, or a request it sends on a connection the service
    // is closing at that instant fails with a 502 (and a POST is not retried).
    .keep_alive(std::time::Duration::from_secs(UPSTREAM_KEEPALIVE_SECS))
    .workers(workers)
    .listen(listener)?
    .run();
    Ok((port, server))
}

/// How long a service keeps an idle connection from nginx open (see `serve`).
pub const UPSTREAM_KEEPALIVE_SECS: u64 = 75;

/// Routes and data every service mounts: health probes, and actix's own extractor
/// errors (query strings, path segments) answered in the one error shape.
pub fn common(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _| {
        crate::error::ApiError::new(crate::error::ErrorCode::MalformedBody, format!("bad query string: {err}")).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err, _| {
        crate::error::ApiError::new(crate::error::ErrorCode::NotFound, format!("bad path: {err}")).into()
    }));
    health_routes(cfg);
}
