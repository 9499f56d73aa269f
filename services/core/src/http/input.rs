//! Request bodies: JSON or an HTML form, read with a hard size limit. Every way a body
//! can be wrong maps to a 4xx with a reason (never a 5xx): too big 413, wrong type 415,
//! unreadable 400, missing or mistyped fields 422.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};

/// The largest body a service reads (from `TURNOUT_BODY_LIMIT_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A raw, size-checked body and the format it came in.
pub enum Body {
    Json(web::Bytes),
    Form(web::Bytes),
}

impl Body {
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        match self {
            Body::Json(bytes) => serde_json::from_slice(bytes).map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::new(ErrorCode::InvalidField, e.to_string()),
                _ => ApiError::new(ErrorCode::MalformedBody, format!("the body is not valid JSON ({e})")),
            }),
            Body::Form(bytes) => {
                serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::new(ErrorCode::InvalidField, e.to_string()))
            }
        }
    }

    /// One top-level string field, if the body has it (JSON key or form field).
    pub fn field(&self, name: &str) -> Option<String> {
        match self {
            Body::Json(bytes) => serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
                .ok()
                .and_then(|m| m.get(name).and_then(|v| v.as_str()).map(str::to_owned)),
            Body::Form(_) => self.form_pairs().ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v),
        }
    }

    /// Form fields as pairs, for forms whose field names are data (e.g. one per contest).
    pub fn form_pairs(&self) -> Result<Vec<(String, String)>, ApiError> {
        match self {
            Body::Form(bytes) => {
                serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::new(ErrorCode::MalformedBody, e.to_string()))
            }
            Body::Json(_) => Err(ApiError::new(ErrorCode::UnsupportedMediaType, "expected a form body")),
        }
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(ErrorCode::BodyTooLarge, format!("the request body is larger than {limit} bytes"))
        .with("limit_bytes", limit)
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(16 * 1024, |l| l.0);
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            let is_json = content_type.starts_with("application/json");
            let is_form = content_type.starts_with("application/x-www-form-urlencoded");
            if !is_json && !is_form {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send application/json or application/x-www-form-urlencoded",
                ));
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large(limit));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::new(ErrorCode::MalformedBody, format!("reading the body failed: {e}")))?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            let body = body.freeze();
            Ok(if is_json { Body::Json(body) } else { Body::Form(body) })
        })
    }
}

/// A typed body: `Input<LoginForm>` accepts the same fields as JSON or as a form.
pub struct Input<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Input<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = Body::from_request(req, payload);
        Box::pin(async move { body.await?.parse().map(Input) })
    }
}
