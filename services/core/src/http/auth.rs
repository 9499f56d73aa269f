//! Session extractors: a handler that takes `Authenticated` only runs for a valid,
//! unexpired token; the token is checked with the shared key, no store lookup.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use jiff::Timestamp;

use crate::error::{ApiError, ErrorCode};
use crate::session::{COOKIE_NAME, Session, SessionKeys};

/// A signed-in voter (any stage).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Session);

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(session_of(req).map(Authenticated))
    }
}

fn session_of(req: &HttpRequest) -> Result<Session, ApiError> {
    let not_signed_in = || ApiError::new(ErrorCode::NotAuthenticated, "Please sign in first.");
    let keys = req.app_data::<web::Data<SessionKeys>>().ok_or_else(ApiError::internal)?;
    let cookie = req.cookie(COOKIE_NAME).ok_or_else(not_signed_in)?;
    keys.verify(cookie.value(), Timestamp::now()).map_err(|e| {
        tracing::info!(event = "session_rejected", reason = %e);
        ApiError::new(ErrorCode::NotAuthenticated, "Your session has expired or is invalid; please sign in again.")
    })
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure when served over TLS.
pub fn session_cookie(token: String, ttl: std::time::Duration, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(ttl.as_secs() as i64))
        .finish()
}

pub fn clear_session_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), std::time::Duration::ZERO, secure);
    cookie.make_removal();
    cookie
}
