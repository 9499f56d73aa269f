//! actix-web glue shared by the service crates (feature `http`). Domain modules never
//! import from here.
//!
//! Layout:
//! - `respond`: `ApiError` as a response, content negotiation, page rendering;
//! - `middleware`: request ids, access logs, and errors re-rendered as JSON or HTML;
//! - `input`: the body extractor (JSON or form, size-limited, clear 4xx on bad input);
//! - `auth`: session cookie extractors;
//! - `health`: `/health/live` and `/health/ready`.

mod auth;
mod health;
mod input;
mod middleware;
mod respond;

pub use auth::{Authenticated, clear_session_cookie, session_cookie};
pub use health::{Readiness, ReadinessCheck, StoreCheck, health_routes};
pub use input::{Body, BodyLimit, Input};
pub use middleware::{RequestId, request_context};
pub use respond::{Nav, html, not_found, wants_json};

use actix_web::web;

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
