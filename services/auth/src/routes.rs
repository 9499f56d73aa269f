//! Thin handlers: parse, call the directory, issue the session, answer JSON or HTML.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use secrecy::SecretString;
use serde::Deserialize;
use turnout_core::ApiError;
use turnout_core::http::{
    Authenticated, Input, Nav, clear_session_cookie, client_address, cookie_secure, html, session_cookie, wants_json,
};
use turnout_core::session::SessionKeys;

use crate::AuthConfig;
use crate::login::Login;

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: SecretString,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Nav,
    next: String,
}

/// Only same-site paths: `next=//evil.example` must not turn login into an open redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() < 512 => n.to_owned(),
        _ => "/".to_owned(),
    }
}

pub async fn login_page(query: web::Query<LoginQuery>, session: Option<Authenticated>) -> HttpResponse {
    let page =
        LoginPage { nav: Nav { user: session.map(|s| s.0.sub.to_string()) }, next: safe_next(query.next.as_deref()) };
    html(StatusCode::OK, &page)
}

#[tracing::instrument(skip_all)]
pub async fn login(
    req: HttpRequest,
    Input(form): Input<LoginForm>,
    login: web::Data<Login>,
    keys: web::Data<SessionKeys>,
    config: web::Data<AuthConfig>,
) -> Result<HttpResponse, ApiError> {
    let client = client_address(&req, &config.trusted_proxies).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let session = login.login(&form.username, &form.password, client).await?;
    let cookie = session_cookie(keys.sign(&session), config.session_ttl, cookie_secure(&req, config.cookie_secure));
    Ok(if wants_json(&req) {
        HttpResponse::Ok().cookie(cookie).json(serde_json::json!({
            "user": session.sub,
            "email": session.email.masked(),
            "roles": session.roles,
            "eligible": session.eligible,
            "expires_at": Timestamp::from_second(session.exp).map(|t| t.to_string()).unwrap_or_default(),
        }))
    } else {
        HttpResponse::SeeOther()
            .cookie(cookie)
            .insert_header((header::LOCATION, safe_next(form.next.as_deref())))
            .finish()
    })
}

pub async fn logout(req: HttpRequest, config: web::Data<AuthConfig>) -> HttpResponse {
    let cookie = clear_session_cookie(cookie_secure(&req, config.cookie_secure));
    if wants_json(&req) {
        HttpResponse::Ok().cookie(cookie).json(serde_json::json!({ "signed_out": true }))
    } else {
        HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/")).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/e/demo/otp")), "/e/demo/otp");
        for bad in ["//evil.example", "https://evil.example", "/\\evil.example", "evil"] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
