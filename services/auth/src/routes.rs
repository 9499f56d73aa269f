//! Thin handlers: parse, call the directory, issue the session, answer JSON or HTML.

use actix_web::cookie::{self, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use jiff::Timestamp;
use secrecy::SecretString;
use serde::Deserialize;
use turnout_core::http::{
    Authenticated, Input, Nav, clear_session_cookie, client_address, cookie_secure, html, session_cookie, wants_json,
};
use turnout_core::session::SessionKeys;
use turnout_core::sign_outs::SignOuts;
use turnout_core::{ApiError, ErrorCode};

use crate::AuthConfig;
use crate::device;
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
    /// What was typed, kept when the form comes back with an error.
    username: String,
    error: Option<FormError>,
}

/// A sign-in that did not work, said on the form itself.
struct FormError {
    title: &'static str,
    message: String,
}

/// The page title for a failed sign-in: what happened, in words.
fn failure_title(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidCredentials => "Wrong username or password",
        ErrorCode::LoginThrottled => "Too many tries: please wait",
        ErrorCode::DirectoryUnavailable => "Sign-in is busy: please try again",
        ErrorCode::NotEligible => "You are not on a voter list",
        _ => "You could not be signed in",
    }
}

/// Only same-site paths: `next` must not turn sign-in into an open redirect. Browsers
/// drop tabs and newlines and read `\` as `/`, so `/%09/evil.example` or `/\evil.example`
/// would leave the site: a target is refused if it, or any percent-decoding of it, has a
/// control character, a backslash or a blank, or starts with `//`.
fn safe_next(next: Option<&str>) -> String {
    fn plain_path(p: &str) -> bool {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    }
    let Some(n) = next.filter(|n| n.len() < 512) else { return "/".to_owned() };
    let mut form = n.to_owned();
    // Each decoding must stay a plain path too (`%252F` is `/` after two).
    for _ in 0..4 {
        if !plain_path(&form) {
            return "/".to_owned();
        }
        let decoded = percent_decode(&form);
        if decoded == form {
            return n.to_owned();
        }
        form = decoded;
    }
    "/".to_owned()
}

/// `%XX` sequences decoded to bytes (invalid UTF-8 replaced), anything else kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn login_page(query: web::Query<LoginQuery>, session: Option<Authenticated>) -> HttpResponse {
    let page = LoginPage {
        nav: Nav { user: session.map(|s| s.0.sub.to_string()) },
        next: safe_next(query.next.as_deref()),
        username: String::new(),
        error: None,
    };
    html(StatusCode::OK, &page)
}

/// The sign-in form again, with the error, the username as typed (never the password)
/// and the status and `Retry-After` of the JSON answer.
fn login_failed(err: &ApiError, form: &LoginForm, user: Option<String>) -> HttpResponse {
    let page = LoginPage {
        nav: Nav { user },
        next: safe_next(form.next.as_deref()),
        username: form.username.chars().take(64).collect(),
        error: Some(FormError { title: failure_title(err.code), message: err.message.clone() }),
    };
    let mut res = html(err.status_code(), &page);
    if let Some(secs) = err.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    res
}

#[tracing::instrument(skip_all)]
pub async fn login(
    req: HttpRequest,
    signed_in: Option<Authenticated>,
    Input(form): Input<LoginForm>,
    login: web::Data<Login>,
    keys: web::Data<SessionKeys>,
    config: web::Data<AuthConfig>,
) -> Result<HttpResponse, ApiError> {
    let client = client_address(&req, &config.trusted_proxies).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let device = req.cookie(device::COOKIE_NAME).map(|c| c.value().to_owned());
    let session = match login.login(&form.username, &form.password, client, device.as_deref()).await {
        Ok(session) => session,
        Err(err) if wants_json(&req) => return Err(err),
        // A browser gets the form back, with what happened next to it.
        Err(err) => return Ok(login_failed(&err, &form, signed_in.map(|s| s.0.sub.to_string()))),
    };
    let secure = cookie_secure(&req, config.cookie_secure);
    let cookie = session_cookie(keys.sign(&session), config.session_ttl, secure);
    // This browser is now known for this account (kept if it already was).
    let now = Timestamp::now();
    let known = device.as_deref().and_then(|d| login.devices.account_of(d, now)).is_some_and(|a| a == session.sub);
    let device_cookie = (!known).then(|| {
        Cookie::build(device::COOKIE_NAME, login.devices.issue(&session.sub, now))
            .path("/auth/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .max_age(cookie::time::Duration::seconds(device::LIFETIME.as_secs() as i64))
            .finish()
    });
    let mut res = if wants_json(&req) { HttpResponse::Ok() } else { HttpResponse::SeeOther() };
    res.cookie(cookie);
    if let Some(d) = device_cookie {
        res.cookie(d);
    }
    Ok(if wants_json(&req) {
        res.json(serde_json::json!({
            "user": session.sub,
            "email": session.email.masked(),
            "roles": session.roles,
            "eligible": session.eligible,
            "expires_at": Timestamp::from_second(session.exp).map(|t| t.to_string()).unwrap_or_default(),
        }))
    } else {
        res.insert_header((header::LOCATION, safe_next(form.next.as_deref()))).finish()
    })
}

/// Ends the session here and, through the store, on every service within a second
/// (a copied cookie stops working too).
pub async fn logout(
    req: HttpRequest,
    session: Option<Authenticated>,
    login: web::Data<Login>,
    sign_outs: web::Data<SignOuts>,
    config: web::Data<AuthConfig>,
) -> Result<HttpResponse, ApiError> {
    if let Some(Authenticated(session)) = session {
        let at = SignOuts::moment(&session, Timestamp::now());
        login.sign_out(&session.sub, at).await?;
        sign_outs.note(&session.sub, at);
    }
    let cookie = clear_session_cookie(cookie_secure(&req, config.cookie_secure));
    Ok(if wants_json(&req) {
        HttpResponse::Ok().cookie(cookie).json(serde_json::json!({ "signed_out": true }))
    } else {
        HttpResponse::SeeOther().cookie(cookie).insert_header((header::LOCATION, "/")).finish()
    })
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        for good in ["/", "/e/demo/otp", "/officer/elections/demo?tab=outbox", "/e/demo/ballot#top", "/a%2Db"] {
            assert_eq!(safe_next(Some(good)), good, "{good}");
        }
        let bad = [
            ("//evil.example", "protocol-relative"),
            ("https://evil.example", "absolute"),
            ("/\\evil.example", "backslash"),
            ("evil", "relative"),
            ("/%09/evil.example", "encoded tab"),
            ("/\t/evil.example", "raw tab"),
            ("/\n/evil.example", "raw newline"),
            ("/%0a/evil.example", "encoded newline"),
            ("/%2fevil.example", "encoded slash makes //"),
            ("/%2Fevil.example", "upper-case encoding"),
            ("%2f%2fevil.example", "fully encoded"),
            ("/%5cevil.example", "encoded backslash"),
            ("/%252f/evil.example", "double encoding"),
            ("/ /evil.example", "blank"),
            ("/\u{0}x", "NUL"),
        ];
        for (target, case) in bad {
            assert_eq!(safe_next(Some(target)), "/", "{case}: {target:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(600)))), "/", "too long");
        assert_eq!(safe_next(None), "/");
    }
}
