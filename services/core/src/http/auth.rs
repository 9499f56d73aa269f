//! Session extractors: a handler that takes `Authenticated` only runs for a valid,
//! unexpired token whose account has not signed out since; the token is checked with the
//! shared key and the in-memory sign-out list (`sign_outs`), no store lookup.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use jiff::Timestamp;

use crate::error::{ApiError, ErrorCode};
use crate::session::{COOKIE_NAME, Role, Session, SessionKeys};
use crate::sign_outs::SignOuts;

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
    let session = keys.verify(cookie.value(), Timestamp::now()).map_err(|e| {
        tracing::info!(event = "session_rejected", reason = %e);
        ApiError::new(ErrorCode::NotAuthenticated, "Your session has expired or is invalid; please sign in again.")
    })?;
    if let Some(sign_outs) = req.app_data::<web::Data<SignOuts>>()
        && sign_outs.ended(&session)
    {
        tracing::info!(event = "session_rejected", reason = "signed out");
        return Err(ApiError::new(ErrorCode::NotAuthenticated, "You signed out. Please sign in again."));
    }
    Ok(session)
}

/// A signed-in admin. Any other session (a voter's, an officer's) gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Staff);

/// A signed-in election officer. Any other session gets 403.
#[derive(Debug, Clone)]
pub struct Officer(pub Staff);

/// A console user: the session and its anti-CSRF token.
#[derive(Debug, Clone)]
pub struct Staff {
    pub session: Session,
    pub csrf: String,
    keys: SessionKeys,
}

/// Header that carries the anti-CSRF token for JSON clients.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl Staff {
    pub fn name(&self) -> &str {
        self.session.sub.as_str()
    }

    /// Every console change must present the session's token, as the `csrf` form field
    /// (`from_body`) or the `X-CSRF-Token` header. A cross-site form can do neither.
    /// Checks the token first (a forged request learns nothing about the form's rules),
    /// then parses the body.
    pub fn checked<T: serde::de::DeserializeOwned>(
        &self,
        req: &HttpRequest,
        body: &crate::http::Body,
    ) -> Result<T, ApiError> {
        let token = body.field("csrf");
        self.check_csrf(req, token.as_deref())?;
        body.parse()
    }

    pub fn check_csrf(&self, req: &HttpRequest, from_body: Option<&str>) -> Result<(), ApiError> {
        let presented = from_body.or_else(|| req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        match presented {
            Some(token) if self.keys.csrf_matches(&self.session, token) => Ok(()),
            _ => {
                tracing::warn!(event = "csrf_rejected", user = %self.session.sub);
                Err(ApiError::new(
                    ErrorCode::CsrfFailed,
                    "This form has expired or did not come from Turnout. Reload the page and try again.",
                ))
            }
        }
    }
}

fn staff_with(req: &HttpRequest, role: Role, what: &str) -> Result<Staff, ApiError> {
    let session = session_of(req)?;
    if !session.roles.contains(&role) {
        tracing::info!(event = "console_forbidden", user = %session.sub, needed = what);
        return Err(ApiError::new(ErrorCode::Forbidden, format!("This page is for {what} only.")));
    }
    let keys = req.app_data::<web::Data<SessionKeys>>().ok_or_else(ApiError::internal)?.get_ref().clone();
    Ok(Staff { csrf: keys.csrf_token(&session), session, keys })
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(staff_with(req, Role::Admin, "election administrators").map(Admin))
    }
}

impl FromRequest for Officer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(staff_with(req, Role::Officer, "election officers").map(Officer))
    }
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure when served over TLS.
/// Whether the cookie must be `Secure`: always when `TURNOUT_COOKIE_SECURE` is set, and
/// whenever nginx says the browser reached it over TLS (`X-Forwarded-Proto: https`), so
/// one deployment can serve HTTP locally and HTTPS to everyone else.
pub fn cookie_secure(req: &actix_web::HttpRequest, configured: bool) -> bool {
    configured
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

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
