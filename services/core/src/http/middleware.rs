//! One middleware for every request: takes the request id from nginx (or makes one), logs
//! one JSON line per request, and renders every `ApiError` in the shape the client wants,
//! with the request id in it so a voter's screenshot can be traced.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use askama::Template;
use tracing::Instrument;

use super::respond::{html, wants_json};
use crate::error::{ApiError, ErrorCode};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Accept an incoming id only if it is short and plain; anything else is replaced, so a
/// client can't inject text into our logs.
fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let raw = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| raw.to_owned())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: super::Nav,
    title: &'a str,
    message: &'a str,
    code: &'a str,
    request_id: &'a str,
    back: Option<String>,
}

fn title_for(code: ErrorCode) -> &'static str {
    match code.status() {
        400 | 413 | 415 | 422 => "That request could not be read",
        401 => "Please sign in again",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Already done",
        429 => "Please wait a moment",
        503 => "Temporarily unavailable",
        _ => "Something went wrong",
    }
}

/// Where "go back" leads from a failed form post: the page that holds the form.
fn back_link(method: &actix_web::http::Method, path: &str) -> Option<String> {
    if method != actix_web::http::Method::POST {
        return None;
    }
    let page = path.strip_suffix("/request").or_else(|| path.strip_suffix("/verify")).unwrap_or(path);
    Some(page.to_owned())
}

/// `path` is the request's path without its query string, so neither the `next=` of a
/// sign-in redirect nor a back link ever carries a query: a receipt check's receipt is
/// in its query, and stays out of every link that nginx or a service could log as a path.
fn render_error(
    err: &ApiError,
    request_id: &str,
    json: bool,
    method: &actix_web::http::Method,
    path: &str,
) -> HttpResponse {
    let status = err.status_code();
    let mut res = if json {
        HttpResponse::build(status).json(err.body(Some(request_id)))
    } else if err.code == ErrorCode::NotAuthenticated && method == actix_web::http::Method::GET {
        // A browser without a session goes to the login page and comes back after.
        let next = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
        HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/auth/login?{next}"))).finish()
    } else {
        let page = ErrorPage {
            nav: super::Nav::default(),
            title: title_for(err.code),
            message: &err.message,
            code: err.code.as_str(),
            request_id,
            back: back_link(method, path),
        };
        html(status, &page)
    };
    if let Some(secs) = err.retry_after {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

/// A write (anything but GET/HEAD/OPTIONS) that a browser sent from another site: its
/// `Origin` names a different host than the one it was sent to. Every form, sign-in
/// included, is refused that way (SameSite=Strict cookies already keep sessions out of
/// such requests; this also stops a forged sign-in). Clients that send no `Origin`
/// (scripts, load tools) are unaffected.
fn cross_site_write(req: &ServiceRequest) -> bool {
    use actix_web::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    // "null" (sandboxed frames, some redirects) is never our own origin either.
    let origin_host = origin.split_once("://").map(|(_, authority)| host_of(authority));
    origin_host.is_none_or(|h| !h.eq_ignore_ascii_case(host_of(host)))
}

/// The host of `host[:port]` (a Host header, or an origin's authority): `[::1]` keeps its
/// brackets, a port and any path are dropped.
fn host_of(authority: &str) -> &str {
    let authority = authority.split('/').next().unwrap_or("");
    match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(authority, |(inner, _)| &authority[..inner.len() + 2]),
        None => authority.split(':').next().unwrap_or(""),
    }
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let json = wants_json(req.request());
    let method = req.method().clone();
    let path = req.path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);

    if cross_site_write(&req) {
        let err = ApiError::new(
            ErrorCode::CsrfFailed,
            "This form was sent from another site. Open Turnout directly and try again.",
        );
        let mut res = render_error(&err, &request_id, json, &method, &path);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert(REQUEST_ID, value);
        }
        let _enter = span.enter();
        tracing::warn!(event = "cross_site_write_refused", method = %method, status = 403);
        return Ok(req.into_response(res));
    }

    let res = next.call(req).instrument(span.clone()).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    // The election a request is about, when its path names a real one.
    let election = res
        .request()
        .match_info()
        .get("election")
        .and_then(|raw| crate::domain::ElectionId::parse(raw).ok())
        .map(|id| id.to_string());
    let api_error = res.response().error().and_then(|e| e.as_error::<ApiError>()).cloned();
    let mut res = match api_error {
        Some(err) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, render_error(&err, &request_id, json, &method, &path))
        }
        None => res.map_into_boxed_body(),
    };
    let status = res.status();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    // Every answer a service gives is personal or live (a ballot, a code's status, a
    // receipt, the console): no browser or proxy cache may keep it. Static files come
    // from nginx.
    if !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    crate::metrics::http_request(&route, method.as_str(), status.as_u16(), latency_ms / 1000.0);
    let _enter = span.enter();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(event = "request", method = %method, route, election = election.as_deref(), status = status.as_u16(), latency_ms);
    } else {
        tracing::info!(event = "request", method = %method, route, election = election.as_deref(), status = status.as_u16(), latency_ms);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_are_compared_without_ports() {
        use super::host_of;
        assert_eq!(host_of("vote.example.edu"), "vote.example.edu");
        assert_eq!(host_of("vote.example.edu:8443"), "vote.example.edu");
        assert_eq!(host_of("127.0.0.1:8080/"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8080"), "[::1]");
        assert_eq!(host_of("[::1]"), "[::1]");
    }
}
