//! The nomination form as a browser sends it (`multipart/form-data`: the text fields and
//! an optional photo), read with a bound on every part, and the photo processed off the
//! async threads, a few at a time (`PhotoGate`): decoding a phone photo takes a core for a
//! moment, and a rush of uploads must not stall the ballot.

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use turnout_core::store::NewPhoto;
use turnout_core::{ApiError, ErrorCode};

use crate::photo::{self, PhotoError};

/// Most bytes of one text field: 5,000 characters of any script, with room to spare.
const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Most parts a form may have (it has six).
const MAX_PARTS: usize = 16;

#[derive(Debug, Default)]
pub struct NominationForm {
    pub csrf: Option<String>,
    /// The id the form was given when drawn, so the same form sent twice is one nomination.
    pub token: Option<String>,
    pub contest: Option<String>,
    pub name: String,
    pub manifesto: String,
    /// The uploaded file's bytes, as uploaded (never stored or served like this).
    pub photo: Option<Vec<u8>>,
    /// "Remove my photo" on the edit form.
    pub remove_photo: bool,
    /// The photo was larger than `photo::MAX_UPLOAD_BYTES`: the rest of it was read and
    /// dropped, so the page can come back with what was typed and the reason beside it.
    pub photo_too_large: bool,
}

impl NominationForm {
    /// The refusal of an oversize photo, beside its field.
    pub fn photo_refusal(&self) -> Option<ApiError> {
        self.photo_too_large.then(|| {
            ApiError::new(ErrorCode::BodyTooLarge, format!("photo: {}", PhotoError::TooLarge)).with("field", "photo")
        })
    }
}

/// Reads the form; every refusal names its field.
pub async fn read(req: &HttpRequest, payload: web::Payload) -> Result<NominationForm, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the nomination as a multipart/form-data form (fields contest, name, manifesto, photo)",
        ));
    }
    let broken =
        |e: &dyn std::fmt::Display| ApiError::new(ErrorCode::MalformedBody, format!("the form broke off: {e}"));
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let mut form = NominationForm::default();
    let mut seen = 0;
    while let Some(part) = parts.next().await {
        seen += 1;
        if seen > MAX_PARTS {
            return Err(ApiError::new(ErrorCode::MalformedBody, "the form has more fields than a nomination has"));
        }
        let mut part = part.map_err(|e| broken(&e))?;
        let field = part.name().unwrap_or("").to_owned();
        let limit = if field == "photo" { photo::MAX_UPLOAD_BYTES } else { MAX_TEXT_BYTES };
        if field == "photo" && (form.photo.is_some() || form.photo_too_large) {
            return Err(ApiError::invalid("photo", "send one photo"));
        }
        let mut value = Vec::new();
        let mut dropped = false;
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| broken(&e))?;
            if dropped {
                continue;
            }
            if value.len() + chunk.len() > limit {
                match field.as_str() {
                    // Read to its end and dropped (nginx bounds the whole body), so the
                    // other fields still arrive.
                    "photo" => {
                        dropped = true;
                        form.photo_too_large = true;
                        value = Vec::new();
                        continue;
                    }
                    "manifesto" => return Err(ApiError::invalid("manifesto", "at most 5,000 characters")),
                    other => return Err(ApiError::invalid("form", format!("the field {other:?} is too long"))),
                }
            }
            value.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8(value.clone()).map_err(|_| ApiError::invalid("form", "text must be UTF-8"));
        match field.as_str() {
            "csrf" => form.csrf = Some(text()?),
            "token" => form.token = Some(text()?),
            "contest" => form.contest = Some(text()?),
            "name" => form.name = text()?,
            "manifesto" => form.manifesto = text()?.replace("\r\n", "\n"),
            // A file input left empty still sends its (empty) part.
            "photo" if !value.is_empty() => form.photo = Some(value),
            "remove_photo" => form.remove_photo = true,
            _ => {}
        }
    }
    Ok(form)
}

/// How many photos are decoded at once: one per core on the 2-core host.
const CONCURRENT_PHOTOS: usize = 2;
/// How many may wait for a turn besides (each holds its upload, up to 5 MB, while it
/// waits); beyond that an upload is turned away with a 503 and a retry hint.
const WAITING_PHOTOS: usize = 16;

#[derive(Clone)]
pub struct PhotoGate {
    decoding: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl Default for PhotoGate {
    fn default() -> Self {
        Self {
            decoding: Arc::new(Semaphore::new(CONCURRENT_PHOTOS)),
            admitted: Arc::new(Semaphore::new(CONCURRENT_PHOTOS + WAITING_PHOTOS)),
        }
    }
}

impl PhotoGate {
    /// The upload decoded, resized and re-encoded (`photo::process`), ready to store.
    pub async fn process(&self, upload: Vec<u8>) -> Result<NewPhoto, ApiError> {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            tracing::warn!(event = "photo_queue_full");
            return Err(ApiError::new(
                ErrorCode::StoreUnavailable,
                "Many photos are being uploaded right now. Please send the form again in a few seconds.",
            )
            .retry_after(5));
        };
        let _turn = self.decoding.acquire().await.map_err(|_| ApiError::internal())?;
        let done = tokio::task::spawn_blocking(move || photo::process(&upload)).await.map_err(|e| {
            tracing::error!(event = "photo_task_failed", error = %e);
            ApiError::internal()
        })?;
        match done {
            Ok(p) => {
                tracing::info!(event = "photo_processed", hash = %p.hash, width = p.width, height = p.height,
                               bytes = p.bytes.len());
                Ok(NewPhoto { bytes: p.bytes })
            }
            Err(e @ PhotoError::TooLarge) => {
                Err(ApiError::new(ErrorCode::BodyTooLarge, format!("photo: {e}")).with("field", "photo"))
            }
            Err(e) => Err(ApiError::invalid("photo", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uploads_beyond_the_queue_are_turned_away_and_the_rest_wait_their_turn() {
        let gate = PhotoGate::default();
        let held = gate.admitted.clone().try_acquire_many_owned((CONCURRENT_PHOTOS + WAITING_PHOTOS) as u32).unwrap();
        let refused = gate.process(vec![0xff, 0xd8, 0xff]).await.unwrap_err();
        assert_eq!(refused.status(), 503);
        drop(held);
        // With room again, the upload is decoded (and this one refused for what it is).
        let refused = gate.process(b"not an image".to_vec()).await.unwrap_err();
        assert_eq!((refused.status(), refused.extra.get("field").and_then(|f| f.as_str())), (422, Some("photo")));
    }
}
