//! Responses: `ApiError` as an HTTP response, and JSON-or-HTML negotiation.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::error::ApiError;

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body without a request id; `request_context` re-renders it with the id
    /// (and as HTML for browsers).
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code()).json(self.body(None));
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// JSON when the client asks for it (`Accept: application/json`, or it sent JSON without
/// saying what it accepts); HTML pages otherwise.
pub fn wants_json(req: &HttpRequest) -> bool {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/json") {
        return true;
    }
    if accept.contains("text/html") {
        return false;
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.starts_with("application/json")
}

/// What the shared layout needs to draw its header.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// The signed-in username, if any (shows the log-out button).
    pub user: Option<String>,
}

/// Renders a page; a template error is logged and answered as a plain 500.
pub fn html<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body),
        Err(e) => {
            tracing::error!(event = "template_error", error = %e, "rendering a page failed");
            ApiError::internal().error_response()
        }
    }
}

/// The default service: unknown routes get the same error body as everything else.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("This page"))
}
