//! Thin handlers: the election list, the ballot, casting, and receipt checks.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use turnout_core::domain::{CandidateId, ContestId, ElectionId, Receipt};
use turnout_core::http::{Authenticated, Body, Nav, html, wants_json};
use turnout_core::schedule::WindowState;
use turnout_core::store::{
    CandidateStatus, Choices, Contest, Election, ElectionCache, ElectionSummary, Store, election_or_404,
};
use turnout_core::{ApiError, ErrorCode};

use crate::voting;

pub type StoreData = web::Data<Arc<dyn Store>>;

pub fn state_name(state: WindowState) -> &'static str {
    match state {
        WindowState::NotYetOpen => "not_yet_open",
        WindowState::Open => "open",
        WindowState::Closed => "closed",
    }
}

/// Contests with only their approved candidates: what a ballot shows.
fn ballot_contests(election: &Election) -> Vec<Contest> {
    election
        .contests
        .iter()
        .map(|c| Contest {
            id: c.id.clone(),
            title: c.title.clone(),
            candidates: c.candidates.iter().filter(|k| k.status == CandidateStatus::Approved).cloned().collect(),
        })
        .collect()
}

#[derive(Deserialize)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<u32>,
}

struct HomeRow {
    summary: ElectionSummary,
    state: &'static str,
    closes: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Nav,
    elections: Vec<HomeRow>,
    next: Option<String>,
}

pub async fn home(
    req: HttpRequest,
    query: web::Query<PageQuery>,
    session: Option<Authenticated>,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    const MAX_PAGE: u32 = 100;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let after = match query.after.as_deref() {
        Some(raw) => Some(ElectionId::parse(raw).map_err(|e| ApiError::invalid("after", e))?),
        None => None,
    };
    let page = store.list_elections(after.as_ref(), limit).await?;
    let next = (page.len() as u32 == limit).then(|| page.last().map(|e| e.id.to_string())).flatten();
    let now = Timestamp::now();
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "elections": page, "next_after": next })));
    }
    let elections = page
        .into_iter()
        .map(|summary| {
            let schedule = summary.schedule();
            HomeRow { state: state_name(schedule.state(now)), closes: schedule.local(summary.closes_at), summary }
        })
        .collect();
    let nav = Nav { user: session.map(|s| s.0.sub.to_string()) };
    Ok(html(StatusCode::OK, &HomePage { nav, elections, next }))
}

#[derive(Template)]
#[template(path = "ballot.html")]
struct BallotPage {
    nav: Nav,
    election_id: String,
    title: String,
    state: &'static str,
    opens: String,
    closes: String,
    closes_at: String,
    contests: Vec<Contest>,
    signed_in: bool,
    verified: bool,
}

pub async fn ballot(
    req: HttpRequest,
    path: web::Path<String>,
    session: Option<Authenticated>,
    store: StoreData,
    elections: web::Data<ElectionCache>,
) -> Result<HttpResponse, ApiError> {
    let election = elections.get(store.as_ref().as_ref(), &path).await?;
    let schedule = &election.schedule;
    let state = state_name(schedule.state(Timestamp::now()));
    let verified = session.as_ref().is_some_and(|s| s.0.verified_at(&election.id).is_some());
    let contests = ballot_contests(&election);
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({
            "election": election.id,
            "title": election.title,
            "state": state,
            "opens_at": schedule.opens_at.to_string(),
            "closes_at": schedule.closes_at.to_string(),
            "opens_local": schedule.local(schedule.opens_at),
            "closes_local": schedule.local(schedule.closes_at),
            "time_zone": schedule.time_zone,
            "grace_secs": schedule.grace.as_secs(),
            "contests": contests,
            "verified": verified,
        })));
    }
    let page = BallotPage {
        nav: Nav { user: session.as_ref().map(|s| s.0.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title.clone(),
        state,
        opens: schedule.local(schedule.opens_at),
        closes: schedule.local(schedule.closes_at),
        closes_at: schedule.closes_at.to_string(),
        contests,
        signed_in: session.is_some(),
        verified,
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct BallotJson {
    choices: Choices,
}

/// Choices from JSON (`{"choices": {contest: candidate}}`) or from the ballot form (one
/// radio group per contest, named by the contest id).
fn parse_choices(body: &Body) -> Result<Choices, ApiError> {
    match body {
        Body::Json(_) => body.parse::<BallotJson>().map(|b| b.choices),
        Body::Form(_) => {
            let mut choices = Choices::new();
            for (key, value) in body.form_pairs()? {
                let contest = ContestId::parse(&key).map_err(|e| ApiError::invalid("choices", e))?;
                let candidate = CandidateId::parse(&value).map_err(|e| ApiError::invalid("choices", e))?;
                if choices.insert(contest, candidate).is_some() {
                    return Err(ApiError::invalid("choices", format!("more than one choice for {key}")));
                }
            }
            Ok(choices)
        }
    }
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage {
    nav: Nav,
    election_id: String,
    title: String,
    receipt: String,
    just_cast: bool,
    found: bool,
}

pub async fn cast(
    req: HttpRequest,
    path: web::Path<String>,
    session: Authenticated,
    body: Body,
    store: StoreData,
    elections: web::Data<ElectionCache>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::now();
    let election = elections.get(store.as_ref().as_ref(), &path).await?;
    let choices = parse_choices(&body)?;
    let receipt = voting::cast(store.as_ref().as_ref(), &election, &session.0, choices, now).await?;
    tracing::info!(event = "ballot_cast", election = %election.id);
    crate::metrics::ballot_cast(election.id.as_str());
    let check_url = format!("/e/{}/receipt/{}", election.id, receipt);
    if wants_json(&req) {
        return Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, check_url.clone()))
            .json(json!({ "receipt": receipt, "check_url": check_url })));
    }
    let page = ReceiptPage {
        nav: Nav { user: Some(session.0.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title.clone(),
        receipt: receipt.to_string(),
        just_cast: true,
        found: true,
    };
    Ok(html(StatusCode::CREATED, &page))
}

pub async fn receipt(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    session: Option<Authenticated>,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let (election_raw, receipt_raw) = path.into_inner();
    let election = election_or_404(store.as_ref().as_ref(), &election_raw).await?;
    let receipt = Receipt::parse(&receipt_raw).map_err(|e| ApiError::invalid("receipt", e))?;
    let found = store.receipt_in_box(&election.id, &receipt).await?;
    if wants_json(&req) {
        if !found {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "No ballot with this receipt is in this election's ballot box.",
            ));
        }
        return Ok(
            HttpResponse::Ok().json(json!({ "receipt": receipt, "election": election.id, "in_ballot_box": true }))
        );
    }
    let page = ReceiptPage {
        nav: Nav { user: session.map(|s| s.0.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title,
        receipt: receipt.to_string(),
        just_cast: false,
        found,
    };
    Ok(html(if found { StatusCode::OK } else { StatusCode::NOT_FOUND }, &page))
}

#[derive(Deserialize)]
pub struct ReceiptQuery {
    receipt: String,
}

/// The no-JavaScript receipt form submits here; it redirects to the receipt's own URL.
pub async fn receipt_lookup(
    path: web::Path<String>,
    query: web::Query<ReceiptQuery>,
) -> Result<HttpResponse, ApiError> {
    let election =
        ElectionId::parse(&path).map_err(|_| ApiError::new(ErrorCode::UnknownElection, "Unknown election."))?;
    let receipt = Receipt::parse(&query.receipt).map_err(|e| ApiError::invalid("receipt", e))?;
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/e/{election}/receipt/{receipt}"))).finish())
}

/// The JSON API's OpenAPI document (hand-written beside the templates; a test checks it
/// against the routes and fuzzes the running stack with it).
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(include_str!("../../../frontend/api/openapi.json"))
}
