//! The public candidates page: each contest's approved candidates with their manifesto
//! and photo, before and during voting (JSON too), and the photos themselves. A photo's
//! address is its content hash, so it never changes; what is served is the re-encoded
//! JPEG the store holds, never an upload, and only while a page may show it.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use serde_json::json;
use turnout_core::http::{Admin, Authenticated, Nav, html, wants_json};
use turnout_core::store::{CandidateStatus, ElectionCache, PhotoHash, PhotoShown};
use turnout_core::{ApiError, ErrorCode};

use super::manifesto::{self, Piece};
use super::{StoreData, period_text, photo_url};
use crate::photo;

struct CandidateRow {
    /// The anchor the ballot links to: `c-{contest}-{candidate}`.
    anchor: String,
    name: String,
    manifesto: Vec<Vec<Vec<Piece>>>,
    photo: Option<String>,
}

struct ContestRow {
    id: String,
    title: String,
    candidates: Vec<CandidateRow>,
}

#[derive(Template)]
#[template(path = "candidates.html")]
struct CandidatesPage {
    nav: Nav,
    election: String,
    title: String,
    period: String,
    takes_nominations: bool,
    contests: Vec<ContestRow>,
}

/// The anchor of a candidate on the candidates page.
pub fn anchor(contest: &str, candidate: &str) -> String {
    format!("c-{contest}-{candidate}")
}

pub async fn page(
    req: HttpRequest,
    path: web::Path<String>,
    session: Option<Authenticated>,
    store: StoreData,
    elections: web::Data<ElectionCache>,
) -> Result<HttpResponse, ApiError> {
    let e = elections.get(store.as_ref().as_ref(), &path).await?;
    let approved = |c: &&turnout_core::store::Candidate| c.status == CandidateStatus::Approved;
    if wants_json(&req) {
        let contests: Vec<_> = e
            .contests
            .iter()
            .map(|c| {
                let candidates: Vec<_> = c
                    .candidates
                    .iter()
                    .filter(approved)
                    .map(|k| {
                        json!({ "id": k.id, "name": k.name, "manifesto": k.statement,
                                     "photo": k.photo.as_ref().map(photo_url) })
                    })
                    .collect();
                json!({ "id": c.id, "title": c.title, "candidates": candidates })
            })
            .collect();
        return Ok(HttpResponse::Ok().json(json!({ "election": e.id, "title": e.title, "contests": contests })));
    }
    let page = CandidatesPage {
        nav: Nav { user: session.map(|s| s.0.sub.to_string()) },
        election: e.id.to_string(),
        title: e.title.clone(),
        period: period_text(&e),
        takes_nominations: e.nominations.is_some(),
        contests: e
            .contests
            .iter()
            .map(|c| ContestRow {
                id: c.id.to_string(),
                title: c.title.clone(),
                candidates: c
                    .candidates
                    .iter()
                    .filter(approved)
                    .map(|k| CandidateRow {
                        anchor: anchor(c.id.as_str(), k.id.as_str()),
                        name: k.name.clone(),
                        manifesto: manifesto::paragraphs(&k.statement),
                        photo: k.photo.as_ref().map(photo_url),
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, &page))
}

/// `/photos/{hash}.jpg`: the stored JPEG, to whom may see it (`StoredPhoto::visible`).
/// A candidate's, once voting has opened, is cached for a year (its address is its hash,
/// and candidates are locked); before that, and a standing nomination's, for a minute,
/// since an edit, a rejection or a withdrawal may set it aside; one set aside is the
/// nominee's and the admins' only, never kept by a cache. To anyone else it does not exist.
pub async fn photo(
    path: web::Path<String>,
    viewer: Option<Authenticated>,
    admin: Option<Admin>,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let missing = || ApiError::new(ErrorCode::NotFound, "There is no such photo.");
    let hash = path.strip_suffix(".jpg").and_then(|h| PhotoHash::parse(h).ok()).ok_or_else(missing)?;
    let stored = store.photo(&hash, viewer.as_ref().map(|v| &v.0.sub), Timestamp::now()).await?.ok_or_else(missing)?;
    if !stored.visible(admin.is_some()) {
        return Err(missing());
    }
    let caching = match stored.shown {
        PhotoShown::Locked => "public, max-age=31536000, immutable",
        PhotoShown::Public => "public, max-age=60",
        PhotoShown::Private => "private, no-store",
    };
    Ok(HttpResponse::Ok()
        .content_type(photo::CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, caching))
        .insert_header((header::ETAG, format!("\"{}\"", hash.as_str())))
        .body(stored.bytes))
}
