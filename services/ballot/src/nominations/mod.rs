//! Candidates' own side: students nominate themselves in the election's nomination
//! period, gather proposers through a share link, edit or withdraw until the period
//! closes; admins approve or reject each nomination (the nominee is emailed through the
//! notice queue, below codes); everyone reads the approved candidates, with manifestos
//! and photos, on the candidates page. Pages that work without JavaScript, and JSON.
//!
//! Layout:
//! - `student`: the nomination form, a nomination's page (the share link), edit,
//!   withdraw, second;
//! - `review`: the admin's queue and decisions, and the nominee's email;
//! - `candidates`: the public candidates page and the photos it shows;
//! - `form`: the multipart form read with bounds, its photo processed a few at a time;
//! - `manifesto`: a manifesto as paragraphs, lines and links (text only, escaped).

mod candidates;
mod form;
mod manifesto;
mod review;
mod student;

use std::sync::Arc;

use actix_web::web;
use jiff::Timestamp;
use turnout_core::ApiError;
use turnout_core::store::{Election, PhotoHash, Store};

pub use candidates::anchor;
pub use form::PhotoGate;

pub type StoreData = web::Data<Arc<dyn Store>>;

/// A refusal as a page shows it: beside its field when it names one.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    /// Whether the error belongs beside `field` (askama calls this with a `&str`).
    pub fn is(&self, field: &str) -> bool {
        self.field.as_deref() == Some(field)
    }
    pub fn general(&self) -> bool {
        !["contest", "name", "manifesto", "photo", "reason"].iter().any(|f| self.is(f))
    }
}

impl From<&ApiError> for FieldError {
    fn from(e: &ApiError) -> Self {
        let field = e.extra.get("field").and_then(|f| f.as_str()).map(str::to_owned);
        // "manifesto: at most 5,000 characters" reads better beside the field without its name.
        let message = match &field {
            Some(f) => e.message.strip_prefix(&format!("{f}: ")).unwrap_or(&e.message).to_owned(),
            None => e.message.clone(),
        };
        Self { field, message }
    }
}

/// The nomination period in words, in the election's time zone.
pub fn period_text(e: &Election) -> String {
    let Some(p) = &e.nominations else { return "This election takes no nominations.".into() };
    let now = Timestamp::now();
    let (from, to) = (e.schedule.local(p.opens_at), e.schedule.local(p.closes_at));
    if now < p.opens_at {
        format!("Nominations open {from} and close {to}.")
    } else if now < p.closes_at {
        format!("Nominations are open until {to}.")
    } else {
        format!("Nominations closed {to}.")
    }
}

/// Where a photo is served: its content hash in the address, so it can be cached for ever.
pub fn photo_url(hash: &PhotoHash) -> String {
    format!("/photos/{}.jpg", hash.as_str())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(PhotoGate::default()))
        .route("/e/{election}/nominate", web::get().to(student::new_page))
        .route("/e/{election}/nominate", web::post().to(student::submit))
        .route("/e/{election}/nominations/{nomination}", web::get().to(student::page))
        .route("/e/{election}/nominations/{nomination}", web::post().to(student::edit))
        .route("/e/{election}/nominations/{nomination}/withdraw", web::post().to(student::withdraw))
        .route("/e/{election}/nominations/{nomination}/second", web::post().to(student::second))
        .route("/e/{election}/candidates", web::get().to(candidates::page))
        .route("/photos/{file}", web::get().to(candidates::photo))
        .route("/admin/elections/{election}/nominations", web::get().to(review::queue))
        .route("/admin/elections/{election}/nominations/{nomination}/decision", web::post().to(review::decide));
}
