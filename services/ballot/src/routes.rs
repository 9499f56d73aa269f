//! Thin handlers: the election list, the ballot, its review step, casting, and receipt
//! checks. What the ballot form means is `ballot_form`.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use turnout_core::domain::{ContestId, ElectionId, Receipt};
use turnout_core::http::{Authenticated, Body, Nav, html, wants_json};
use turnout_core::receipts_root::ReceiptProof;
use turnout_core::schedule::WindowState;
use turnout_core::session::Session;
use turnout_core::store::{
    ABSTAIN, Candidate, ChoiceError, Choices, ContestKind, Election, ElectionCache, ElectionSummary, RON, Store, Vote,
    election_or_404,
};
use turnout_core::{ApiError, ErrorCode};

use crate::ballot_form::{self, CandidateOrder, ReadBallot};
use crate::receipt_proofs::ReceiptProofs;
use crate::voting;

pub type StoreData = web::Data<Arc<dyn Store>>;

pub fn state_name(state: WindowState) -> &'static str {
    match state {
        WindowState::NotYetOpen => "not_yet_open",
        WindowState::Open => "open",
        WindowState::Closed => "closed",
    }
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
    /// While nominations run: when they close (in the election's zone).
    nominations_close: Option<String>,
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
            let nominations_close =
                summary.nominations.as_ref().filter(|p| p.is_open(now)).map(|p| schedule.local(p.closes_at));
            HomeRow {
                state: state_name(schedule.state(now)),
                closes: schedule.local(summary.closes_at),
                nominations_close,
                summary,
            }
        })
        .collect();
    let nav = Nav { user: session.map(|s| s.0.sub.to_string()) };
    Ok(html(StatusCode::OK, &HomePage { nav, elections, next }))
}

/// One option as the ballot page shows it, with what the voter marked before (after a
/// mistake, or coming back from the review step).
struct OptionView {
    id: String,
    name: String,
    /// The candidate's entry on the candidates page (manifesto, photo); none for RON.
    about: Option<String>,
    checked: bool,
    rank: String,
}

struct ContestView {
    id: String,
    title: String,
    instruction: String,
    /// `one` (radios), `many` (checkboxes) or `ranked` (a rank number each).
    input: &'static str,
    options: Vec<OptionView>,
    abstained: bool,
    error: Option<String>,
}

/// The ballot's contests with what the voter marked: their votes, or where a contest has a
/// mistake, exactly what they typed and ticked there.
fn contest_views(
    election: &Election,
    session: Option<&Session>,
    read: &ReadBallot,
    order: &CandidateOrder,
) -> Vec<ContestView> {
    ballot_form::visible_contests(election, session)
        .into_iter()
        .map(|contest| {
            let options = ballot_form::ordered_options(election, contest, session.map(|s| &s.sub), order);
            let vote = read.choices.get(&contest.id);
            let marks = vote.map(Vote::marks).unwrap_or_default();
            let mistaken = read.errors.contains_key(&contest.id);
            let input = match contest.rules.kind {
                ContestKind::Ranked => "ranked",
                _ if contest.rules.most_marks(options.len()) > 1 => "many",
                _ => "one",
            };
            ContestView {
                id: contest.id.to_string(),
                title: contest.title.clone(),
                instruction: contest.rules.instruction(options.len()),
                input,
                abstained: vote == Some(&Vote::Abstain) || (mistaken && read.ticked(&contest.id, ABSTAIN)),
                error: read.errors.get(&contest.id).cloned(),
                options: options
                    .into_iter()
                    .map(|o| OptionView {
                        checked: if mistaken { read.ticked(&contest.id, o.id.as_str()) } else { marks.contains(&o.id) },
                        rank: if mistaken {
                            read.typed_rank(&contest.id, o.id.as_str()).unwrap_or_default().chars().take(3).collect()
                        } else {
                            marks.iter().position(|m| m == &o.id).map(|p| (p + 1).to_string()).unwrap_or_default()
                        },
                        about: (o.id.as_str() != RON).then(|| {
                            let anchor = crate::nominations::anchor(contest.id.as_str(), o.id.as_str());
                            format!("/e/{}/candidates#{anchor}", election.id)
                        }),
                        id: o.id.to_string(),
                        name: o.name,
                    })
                    .collect(),
            }
        })
        .collect()
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
    contests: Vec<ContestView>,
    signed_in: bool,
    verified: bool,
    has_errors: bool,
}

impl BallotPage {
    fn new(election: &Election, session: Option<&Session>, contests: Vec<ContestView>) -> Self {
        let schedule = &election.schedule;
        Self {
            nav: Nav { user: session.map(|s| s.sub.to_string()) },
            election_id: election.id.to_string(),
            title: election.title.clone(),
            state: state_name(schedule.state(Timestamp::now())),
            opens: schedule.local(schedule.opens_at),
            closes: schedule.local(schedule.closes_at),
            closes_at: schedule.closes_at.to_string(),
            has_errors: contests.iter().any(|c| c.error.is_some()),
            contests,
            signed_in: session.is_some(),
            verified: session.is_some_and(|s| s.verified_at(&election.id).is_some()),
        }
    }
}

/// A contest as the ballot's JSON gives it: its rules and its options in this voter's order.
#[derive(Serialize)]
struct ContestJson<'a> {
    id: &'a ContestId,
    title: &'a str,
    rules: &'a turnout_core::store::ContestRules,
    instruction: String,
    candidates: Vec<Candidate>,
}

pub async fn ballot(
    req: HttpRequest,
    path: web::Path<String>,
    session: Option<Authenticated>,
    store: StoreData,
    elections: web::Data<ElectionCache>,
    order: web::Data<CandidateOrder>,
) -> Result<HttpResponse, ApiError> {
    let election = elections.get(store.as_ref().as_ref(), &path).await?;
    let session = session.map(|s| s.0);
    if wants_json(&req) {
        let schedule = &election.schedule;
        let contests: Vec<ContestJson> = ballot_form::visible_contests(&election, session.as_ref())
            .into_iter()
            .map(|c| {
                let candidates = ballot_form::ordered_options(&election, c, session.as_ref().map(|s| &s.sub), &order);
                ContestJson {
                    id: &c.id,
                    title: &c.title,
                    rules: &c.rules,
                    instruction: c.rules.instruction(candidates.len()),
                    candidates,
                }
            })
            .collect();
        return Ok(HttpResponse::Ok().json(json!({
            "election": election.id,
            "title": election.title,
            "state": state_name(schedule.state(Timestamp::now())),
            "opens_at": schedule.opens_at.to_string(),
            "closes_at": schedule.closes_at.to_string(),
            "opens_local": schedule.local(schedule.opens_at),
            "closes_local": schedule.local(schedule.closes_at),
            "time_zone": schedule.time_zone,
            "grace_secs": schedule.grace.as_secs(),
            "contests": contests,
            "verified": session.as_ref().is_some_and(|s| s.verified_at(&election.id).is_some()),
        })));
    }
    let contests = contest_views(&election, session.as_ref(), &ReadBallot::default(), &order);
    Ok(html(StatusCode::OK, &BallotPage::new(&election, session.as_ref(), contests)))
}

#[derive(Deserialize)]
struct BallotJson {
    choices: Choices,
}

/// The ballot form read and checked against the election: the votes, or each contest's
/// mistake in words for the page.
fn read_ballot(body: &Body, election: &Election, session: &Session) -> Result<ReadBallot, ApiError> {
    let mut read = match body {
        // A JSON ballot is checked once, by `voting::cast` and then the store, which answer
        // the same 422s: there is no page to put each contest's mistake on.
        Body::Json(_) => return Ok(ReadBallot { choices: body.parse::<BallotJson>()?.choices, ..Default::default() }),
        Body::Form(_) => {
            let pairs: Vec<(String, String)> = body.form_pairs()?.into_iter().filter(|(k, _)| k != "action").collect();
            ballot_form::read_form(&pairs).map_err(|e| ApiError::invalid("choices", e))?
        }
    };
    let visible = ballot_form::visible_contests(election, Some(session));
    let mut refused = Vec::new();
    for (contest, vote) in &read.choices {
        let one = Choices::from([(contest.clone(), vote.clone())]);
        let why = match election.check_choices(&one) {
            Err(e) => {
                read.unknown |= matches!(
                    e,
                    ChoiceError::UnknownContest(_)
                        | ChoiceError::Vote { reason: turnout_core::store::VoteError::NotACandidate(_), .. }
                );
                Some(e.to_string())
            }
            Ok(()) if !visible.iter().any(|c| &c.id == contest) => {
                Some(ChoiceError::NotInConstituency(contest.clone()).to_string())
            }
            Ok(()) => None,
        };
        if let Some(why) = why {
            refused.push((contest.clone(), why));
        }
    }
    for (contest, why) in refused {
        read.choices.remove(&contest);
        read.errors.insert(contest, why);
    }
    Ok(read)
}

/// The first mistake as the API's error (JSON callers get one 422 naming the contest).
fn first_mistake(read: &ReadBallot) -> ApiError {
    let code = if read.unknown { ErrorCode::UnknownCandidate } else { ErrorCode::InvalidField };
    match read.errors.iter().next() {
        Some((contest, why)) => {
            ApiError::new(code, format!("{contest}: {why}")).with("field", format!("choices.{contest}"))
        }
        None => ApiError::invalid("choices", "the ballot could not be read"),
    }
}

struct ReviewLine {
    title: String,
    words: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    nav: Nav,
    election_id: String,
    title: String,
    lines: Vec<ReviewLine>,
    /// The choices again, as hidden fields, in order of preference.
    fields: Vec<(String, String)>,
}

/// The review step: the voter's choices in plain words, then cast or go back. With
/// `action=change`, or a mistake, the ballot again with what they marked.
pub async fn review(
    path: web::Path<String>,
    session: Authenticated,
    body: Body,
    store: StoreData,
    elections: web::Data<ElectionCache>,
    order: web::Data<CandidateOrder>,
) -> Result<HttpResponse, ApiError> {
    let election = elections.get(store.as_ref().as_ref(), &path).await?;
    let session = session.0;
    let read = read_ballot(&body, &election, &session)?;
    let change = body.field("action").as_deref() == Some("change");
    if change || !read.is_ok() {
        let contests = contest_views(&election, Some(&session), &read, &order);
        let status = if read.is_ok() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        return Ok(html(status, &BallotPage::new(&election, Some(&session), contests)));
    }
    let visible = ballot_form::visible_contests(&election, Some(&session));
    let lines = visible
        .iter()
        .map(|c| ReviewLine { title: c.title.clone(), words: ballot_form::in_words(c, read.choices.get(&c.id)) })
        .collect();
    let fields = read
        .choices
        .iter()
        .flat_map(|(contest, vote)| {
            let key = format!("c.{contest}");
            match vote {
                Vote::Abstain => vec![(key, ABSTAIN.to_owned())],
                Vote::Marks(m) => m.iter().map(|id| (key.clone(), id.to_string())).collect(),
            }
        })
        .collect();
    let page = ReviewPage {
        nav: Nav { user: Some(session.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title.clone(),
        lines,
        fields,
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "receipt.html")]
struct ReceiptPage {
    nav: Nav,
    election_id: String,
    title: String,
    receipt: String,
    /// The link to check it again (`check_url`).
    check_url: String,
    just_cast: bool,
    found: bool,
    /// After close + grace: the path from this receipt to the receipts root.
    proof: Option<ReceiptProof>,
}

pub async fn cast(
    req: HttpRequest,
    path: web::Path<String>,
    session: Authenticated,
    body: Body,
    store: StoreData,
    elections: web::Data<ElectionCache>,
    order: web::Data<CandidateOrder>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::now();
    let election = elections.get(store.as_ref().as_ref(), &path).await?;
    let read = read_ballot(&body, &election, &session.0)?;
    if !read.is_ok() {
        if wants_json(&req) {
            return Err(first_mistake(&read));
        }
        let contests = contest_views(&election, Some(&session.0), &read, &order);
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &BallotPage::new(&election, Some(&session.0), contests)));
    }
    let receipt = voting::cast(store.as_ref().as_ref(), &election, &session.0, read.choices, now).await?;
    tracing::info!(event = "ballot_cast", election = %election.id);
    crate::metrics::ballot_cast(election.id.as_str());
    let check_url = check_url(&election.id, &receipt);
    if wants_json(&req) {
        return Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, check_url.clone()))
            .json(json!({ "receipt": receipt, "check_url": check_url })));
    }
    let page = ReceiptPage {
        nav: Nav { user: Some(session.0.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title.clone(),
        check_url,
        receipt: receipt.to_string(),
        just_cast: true,
        found: true,
        proof: None,
    };
    Ok(html(StatusCode::CREATED, &page))
}

/// `?receipt=` on the receipt check. Missing reads as empty, so it gets the same 422
/// naming the field as a mistyped receipt.
#[derive(Deserialize)]
pub struct ReceiptQuery {
    #[serde(default)]
    receipt: String,
}

/// Where a receipt is checked: the receipt in the query string, never in the path.
/// nginx's access log writes the path and the services the route, neither the query, so
/// no log line holds a receipt (beside a line's time, a receipt could be paired with the
/// voter's sign-in just before it, and the receipt keys their ballot in the box).
fn check_url(election: &ElectionId, receipt: &Receipt) -> String {
    format!("/e/{election}/receipt?receipt={receipt}")
}

/// Is this receipt in the box: yes or no, never what the ballot says; after close +
/// grace, with the path from it to the published receipts root.
pub async fn receipt(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ReceiptQuery>,
    session: Option<Authenticated>,
    store: StoreData,
    proofs: web::Data<ReceiptProofs>,
) -> Result<HttpResponse, ApiError> {
    let election = election_or_404(store.as_ref().as_ref(), &path).await?;
    let receipt = Receipt::parse(&query.receipt).map_err(|e| ApiError::invalid("receipt", e))?;
    let found = store.receipt_in_box(&election.id, &receipt).await?;
    let proof = match found {
        true => proofs.proof(store.as_ref().as_ref(), &election, &receipt, Timestamp::now()).await?,
        false => None,
    };
    if wants_json(&req) {
        if !found {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "No ballot with this receipt is in this election's ballot box.",
            ));
        }
        let mut body = json!({ "receipt": receipt, "election": election.id, "in_ballot_box": true });
        if let Some(p) = &proof {
            body["receipts_root_proof"] = json!(p);
        }
        return Ok(HttpResponse::Ok().json(body));
    }
    let page = ReceiptPage {
        nav: Nav { user: session.map(|s| s.0.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title,
        check_url: check_url(&election.id, &receipt),
        receipt: receipt.to_string(),
        just_cast: false,
        found,
        proof,
    };
    Ok(html(if found { StatusCode::OK } else { StatusCode::NOT_FOUND }, &page))
}

/// The JSON API's OpenAPI document (hand-written beside the templates; a test checks it
/// against the routes and fuzzes the running stack with it).
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(include_str!("../../../frontend/api/openapi.json"))
}
