//! The student's side: the nomination form, a nomination's own page (the share link),
//! editing, withdrawing, and seconding. A refused step brings the page back with the
//! reason beside the field it concerns.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use serde_json::json;
use turnout_core::domain::{ContestId, ElectionId};
use turnout_core::http::{Authenticated, Body, Nav, html, wants_json};
use turnout_core::session::{Session, SessionKeys};
use turnout_core::store::{
    AuditEntry, Contest, Election, NewNomination, Nomination, NominationContent, NominationId, NominationStatus,
    election_or_404,
};
use turnout_core::{ApiError, ErrorCode};

use super::form::{self, NominationForm, PhotoGate};
use super::manifesto::{self, Piece};
use super::{FieldError, StoreData, period_text};

fn audit(session: &Session, action: &str, election: &ElectionId, detail: serde_json::Value) -> AuditEntry {
    AuditEntry { actor: session.sub.to_string(), action: action.into(), election: Some(election.clone()), detail }
}

/// Whether this student may stand for, or second in, `contest`: they may vote in the
/// election, and in the contest's constituency if it has one (both decided at sign-in).
pub fn may_take_part(session: &Session, election: &Election, contest: &Contest) -> bool {
    session.may_vote_in(&election.id)
        && (contest.rules.voters.is_everyone() || session.constituencies_in(&election.id).contains(&contest.id))
}

fn not_eligible(contest: &Contest) -> ApiError {
    ApiError::new(
        ErrorCode::NotEligible,
        format!("You can't take part in the nomination for {}: it is for other voters.", contest.title),
    )
}

fn check_csrf(
    keys: &SessionKeys,
    req: &HttpRequest,
    session: &Session,
    from_form: Option<&str>,
) -> Result<(), ApiError> {
    let presented = from_form.or_else(|| req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()));
    match presented {
        Some(token) if keys.csrf_matches(session, token) => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "This form has expired or did not come from Turnout. Reload the page and try again.",
        )),
    }
}

fn sign_in_first(req: &HttpRequest, path: &str) -> Result<HttpResponse, ApiError> {
    if wants_json(req) {
        return Err(ApiError::new(ErrorCode::NotAuthenticated, "Please sign in first."));
    }
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/auth/login?next={path}"))).finish())
}

fn nomination_url(n: &Nomination) -> String {
    format!("/e/{}/nominations/{}", n.election, n.id)
}

struct MineRow {
    url: String,
    contest: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "nominate.html")]
struct NominatePage {
    nav: Nav,
    csrf: String,
    election: String,
    title: String,
    period: String,
    open: bool,
    /// A fresh id, so that the same form sent twice is one nomination.
    token: String,
    contests: Vec<(String, String)>,
    chosen: String,
    name: String,
    manifesto: String,
    mine: Vec<MineRow>,
    error: Option<FieldError>,
}

#[allow(clippy::too_many_arguments)]
async fn nominate_page(
    store: &StoreData,
    keys: &SessionKeys,
    session: &Session,
    e: &Election,
    kept: Option<&NominationForm>,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let mine = store.nominations_of(&e.id, &session.sub).await?;
    let title_of = |c: &ContestId| e.contests.iter().find(|k| &k.id == c).map_or(c.to_string(), |k| k.title.clone());
    let standing: Vec<&ContestId> =
        mine.iter().filter(|n| n.status != NominationStatus::Withdrawn).map(|n| &n.contest).collect();
    let page = NominatePage {
        nav: Nav { user: Some(session.sub.to_string()) },
        csrf: keys.csrf_token(session),
        election: e.id.to_string(),
        title: e.title.clone(),
        period: period_text(e),
        open: e.nominations.as_ref().is_some_and(|p| p.is_open(Timestamp::now())),
        token: NominationId::random().to_string(),
        contests: e
            .contests
            .iter()
            .filter(|c| may_take_part(session, e, c) && !standing.contains(&&c.id))
            .map(|c| (c.id.to_string(), c.title.clone()))
            .collect(),
        chosen: kept.and_then(|f| f.contest.clone()).unwrap_or_default(),
        name: kept.map(|f| f.name.clone()).unwrap_or_default(),
        manifesto: kept.map(|f| f.manifesto.clone()).unwrap_or_default(),
        mine: mine
            .iter()
            .map(|n| MineRow { url: nomination_url(n), contest: title_of(&n.contest), status: n.status.as_str() })
            .collect(),
        error,
    };
    Ok(html(status, &page))
}

pub async fn new_page(
    req: HttpRequest,
    path: web::Path<String>,
    session: Option<Authenticated>,
    keys: web::Data<SessionKeys>,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let e = election_or_404(store.as_ref().as_ref(), &path).await?;
    let Some(Authenticated(session)) = session else { return sign_in_first(&req, &format!("/e/{}/nominate", e.id)) };
    if wants_json(&req) {
        let mine = store.nominations_of(&e.id, &session.sub).await?;
        let contests: Vec<_> = e.contests.iter().filter(|c| may_take_part(&session, &e, c)).map(|c| &c.id).collect();
        return Ok(HttpResponse::Ok().json(json!({
            "election": e.id, "nominations": e.nominations, "contests": contests, "mine": mine,
            "csrf_token": keys.csrf_token(&session),
        })));
    }
    nominate_page(&store, &keys, &session, &e, None, None, StatusCode::OK).await
}

/// The content a form describes: the name and manifesto as typed (trimmed), and the photo
/// processed, or the one the nomination had (unless the student removes it).
async fn content_of(
    form: &NominationForm,
    gate: &PhotoGate,
    current: Option<&NominationContent>,
) -> Result<(NominationContent, Option<turnout_core::store::NewPhoto>), ApiError> {
    let mut content = NominationContent {
        name: form.name.trim().to_owned(),
        manifesto: form.manifesto.trim().to_owned(),
        photo: if form.remove_photo { None } else { current.and_then(|c| c.photo.clone()) },
    };
    content.validate()?;
    if let Some(refusal) = form.photo_refusal() {
        return Err(refusal);
    }
    let photo = match &form.photo {
        Some(upload) => {
            let photo = gate.process(upload.clone()).await?;
            content.photo = Some(photo.hash());
            Some(photo)
        }
        None => None,
    };
    Ok((content, photo))
}

pub async fn submit(
    req: HttpRequest,
    path: web::Path<String>,
    session: Option<Authenticated>,
    keys: web::Data<SessionKeys>,
    gate: web::Data<PhotoGate>,
    payload: web::Payload,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let Some(Authenticated(session)) = session else {
        return Err(ApiError::new(ErrorCode::NotAuthenticated, "Please sign in first."));
    };
    let e = election_or_404(store.as_ref().as_ref(), &path).await?;
    let form = form::read(&req, payload).await?;
    check_csrf(&keys, &req, &session, form.csrf.as_deref())?;
    let attempt = async {
        let contest = form
            .contest
            .as_deref()
            .and_then(|c| ContestId::parse(c.trim()).ok())
            .and_then(|id| e.contests.iter().find(|c| c.id == id))
            .ok_or_else(|| ApiError::invalid("contest", "choose one of this election's contests"))?;
        if !may_take_part(&session, &e, contest) {
            return Err(not_eligible(contest));
        }
        let (content, photo) = content_of(&form, &gate, None).await?;
        // Derived from the form's own token (a hidden field) and the nominee: the same form
        // sent twice is one nomination, and no client picks an id.
        let id = match form.token.as_deref().map(str::trim).filter(|t| !t.is_empty() && t.len() <= 64) {
            Some(token) => NominationId::for_submission(&session.sub, token),
            None => NominationId::random(),
        };
        let new = NewNomination {
            id: id.clone(),
            election: e.id.clone(),
            contest: contest.id.clone(),
            nominee: session.sub.clone(),
            email: session.email.clone(),
            content,
        };
        let detail = json!({ "nomination": id, "contest": contest.id, "version": 1,
                             "photo": new.content.photo.as_ref().map(|p| p.as_str()) });
        let entry = audit(&session, "nomination.submitted", &e.id, detail);
        Ok(store.submit_nomination(&new, photo.as_ref(), &entry, Timestamp::now()).await?)
    };
    match attempt.await {
        Ok(n) => {
            tracing::info!(event = "nomination_submitted", election = %e.id, contest = %n.contest);
            let url = nomination_url(&n);
            if wants_json(&req) {
                return Ok(HttpResponse::Created().insert_header((header::LOCATION, url.clone())).json(json!({
                    "nomination": n, "url": url,
                })));
            }
            Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, url)).finish())
        }
        Err(err) if !wants_json(&req) => {
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            nominate_page(&store, &keys, &session, &e, Some(&form), Some(FieldError::from(&err)), status).await
        }
        Err(err) => Err(err),
    }
}

struct SecondRow {
    by: String,
    at: String,
}

#[derive(Template)]
#[template(path = "nomination.html")]
struct NominationPage {
    nav: Nav,
    csrf: String,
    election: String,
    election_title: String,
    contest: String,
    url: String,
    name: String,
    manifesto: Vec<Vec<Vec<Piece>>>,
    photo: Option<String>,
    /// The content is shown: to the nominee always, to others while it stands.
    shown: bool,
    status: &'static str,
    reason: Option<String>,
    version: u32,
    seconds: usize,
    proposers: u32,
    /// Who seconded: shown to the nominee only.
    seconders: Vec<SecondRow>,
    mine: bool,
    open: bool,
    can_second: bool,
    seconded: bool,
    signed_in: bool,
    period: String,
    /// The edit form's values (the current content, or what was just typed).
    edit_name: String,
    edit_manifesto: String,
    error: Option<FieldError>,
}

async fn nomination_of(store: &StoreData, e: &Election, raw: &str) -> Result<Nomination, ApiError> {
    let missing = || ApiError::new(ErrorCode::NotFound, "There is no such nomination.");
    let id = NominationId::parse(raw).map_err(|_| missing())?;
    match store.nomination(&id).await? {
        Some(n) if n.election == e.id => Ok(n),
        _ => Err(missing()),
    }
}

#[allow(clippy::too_many_arguments)]
fn render_nomination(
    keys: &SessionKeys,
    session: Option<&Session>,
    e: &Election,
    n: &Nomination,
    kept: Option<&NominationForm>,
    error: Option<FieldError>,
    status: StatusCode,
) -> HttpResponse {
    let contest = e.contests.iter().find(|c| c.id == n.contest);
    let mine = session.is_some_and(|s| s.sub == n.nominee);
    let open = e.nominations.as_ref().is_some_and(|p| p.is_open(Timestamp::now()));
    let standing = n.status != NominationStatus::Withdrawn;
    let seconded = session.is_some_and(|s| n.seconds.iter().any(|x| x.by == s.sub));
    let eligible = session.zip(contest).is_some_and(|(s, c)| may_take_part(s, e, c));
    // A rejected or withdrawn nomination's content (name, manifesto, photo) is no longer
    // anyone's to read but the nominee's: it may be why it was rejected.
    let shown = mine || n.status.stands();
    let page = NominationPage {
        nav: Nav { user: session.map(|s| s.sub.to_string()) },
        csrf: session.map(|s| keys.csrf_token(s)).unwrap_or_default(),
        election: e.id.to_string(),
        election_title: e.title.clone(),
        contest: contest.map_or(n.contest.to_string(), |c| c.title.clone()),
        url: nomination_url(n),
        name: if shown { n.content.name.clone() } else { "A nomination".into() },
        manifesto: if shown { manifesto::paragraphs(&n.content.manifesto) } else { Vec::new() },
        photo: n.content.photo.as_ref().filter(|_| shown).map(super::photo_url),
        shown,
        status: n.status.as_str(),
        // The returning officer's reason is the nominee's to read, not every visitor's.
        reason: if mine { n.reason.clone() } else { None },
        version: n.version,
        seconds: n.seconds.len(),
        proposers: e.nominations.as_ref().map_or(0, |p| p.proposers),
        seconders: if mine {
            n.seconds.iter().map(|s| SecondRow { by: s.by.to_string(), at: e.schedule.local(s.at) }).collect()
        } else {
            Vec::new()
        },
        mine,
        open: open && standing,
        can_second: open && n.status.stands() && !mine && !seconded && eligible,
        seconded,
        signed_in: session.is_some(),
        period: period_text(e),
        edit_name: kept.map_or(n.content.name.clone(), |f| f.name.clone()),
        edit_manifesto: kept.map_or(n.content.manifesto.clone(), |f| f.manifesto.clone()),
        error,
    };
    html(status, &page)
}

/// What a nomination's JSON shows: who seconded, the nominee's account and a decision's
/// reason only to the nominee; a rejected or withdrawn one's content too, as the page.
fn nomination_json(n: &Nomination, mine: bool) -> serde_json::Value {
    let mut body = serde_json::to_value(n).unwrap_or_default();
    if !mine && let Some(o) = body.as_object_mut() {
        o.insert("seconds".into(), json!(n.seconds.len()));
        // The account behind it, and the decision's details, are the nominee's (and the
        // admin's) to see; the page shows the display name only.
        for private in ["reason", "nominee", "decided_version"] {
            o.remove(private);
        }
        if !n.status.stands() {
            o.remove("content");
        }
    }
    body
}

pub async fn page(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    session: Option<Authenticated>,
    keys: web::Data<SessionKeys>,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let (election, id) = path.into_inner();
    let e = election_or_404(store.as_ref().as_ref(), &election).await?;
    let n = nomination_of(&store, &e, &id).await?;
    let session = session.map(|s| s.0);
    if wants_json(&req) {
        let mine = session.as_ref().is_some_and(|s| s.sub == n.nominee);
        let versions = if mine { store.nomination_versions(&n.id).await? } else { Vec::new() };
        return Ok(HttpResponse::Ok().json(json!({
            "nomination": nomination_json(&n, mine), "versions": versions,
            "csrf_token": session.as_ref().map(|s| keys.csrf_token(s)),
        })));
    }
    Ok(render_nomination(&keys, session.as_ref(), &e, &n, None, None, StatusCode::OK))
}

/// The answer to a step on a nomination: JSON, or back to its page (with the error
/// beside the field, for a browser).
#[allow(clippy::too_many_arguments)]
fn answered(
    req: &HttpRequest,
    keys: &SessionKeys,
    session: &Session,
    e: &Election,
    before: &Nomination,
    kept: Option<&NominationForm>,
    result: Result<Nomination, ApiError>,
) -> Result<HttpResponse, ApiError> {
    match result {
        Ok(n) if wants_json(req) => {
            Ok(HttpResponse::Ok().json(json!({ "nomination": nomination_json(&n, session.sub == n.nominee) })))
        }
        Ok(n) => Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, nomination_url(&n))).finish()),
        Err(err) if wants_json(req) => Err(err),
        Err(err) => {
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Ok(render_nomination(keys, Some(session), e, before, kept, Some(FieldError::from(&err)), status))
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn edit(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    session: Option<Authenticated>,
    keys: web::Data<SessionKeys>,
    gate: web::Data<PhotoGate>,
    payload: web::Payload,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let Some(Authenticated(session)) = session else {
        return Err(ApiError::new(ErrorCode::NotAuthenticated, "Please sign in first."));
    };
    let (election, id) = path.into_inner();
    let e = election_or_404(store.as_ref().as_ref(), &election).await?;
    let n = nomination_of(&store, &e, &id).await?;
    let form = form::read(&req, payload).await?;
    check_csrf(&keys, &req, &session, form.csrf.as_deref())?;
    let result = async {
        if session.sub != n.nominee {
            return Err(turnout_core::store::NominationError::NotYours.into());
        }
        let (content, photo) = content_of(&form, &gate, Some(&n.content)).await?;
        let detail = json!({ "nomination": n.id, "contest": n.contest, "version": n.version + 1,
                             "photo": content.photo.as_ref().map(|p| p.as_str()) });
        let entry = audit(&session, "nomination.edited", &e.id, detail);
        Ok(store.edit_nomination(&n.id, &session.sub, &content, photo.as_ref(), &entry, Timestamp::now()).await?)
    }
    .await;
    answered(&req, &keys, &session, &e, &n, Some(&form), result)
}

/// A step on one nomination from a plain form or JSON: the session (its anti-CSRF token
/// checked), the election and the nomination the path names.
async fn step_on(
    req: &HttpRequest,
    path: web::Path<(String, String)>,
    session: Authenticated,
    keys: &SessionKeys,
    body: &Body,
    store: &StoreData,
) -> Result<(Session, Election, Nomination), ApiError> {
    let session = session.0;
    check_csrf(keys, req, &session, body.field("csrf").as_deref())?;
    let (election, id) = path.into_inner();
    let e = election_or_404(store.as_ref().as_ref(), &election).await?;
    let n = nomination_of(store, &e, &id).await?;
    Ok((session, e, n))
}

pub async fn withdraw(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    session: Authenticated,
    keys: web::Data<SessionKeys>,
    body: Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let (session, e, n) = step_on(&req, path, session, &keys, &body, &store).await?;
    let entry = audit(&session, "nomination.withdrawn", &e.id, json!({ "nomination": n.id, "contest": n.contest }));
    let result = store.withdraw_nomination(&n.id, &session.sub, &entry, Timestamp::now()).await.map_err(Into::into);
    answered(&req, &keys, &session, &e, &n, None, result)
}

/// A second names the version its proposer read: the nominee may have saved another since.
#[derive(serde::Deserialize)]
struct SecondForm {
    version: u32,
}

pub async fn second(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    session: Authenticated,
    keys: web::Data<SessionKeys>,
    body: Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let (session, e, n) = step_on(&req, path, session, &keys, &body, &store).await?;
    let result = async {
        let read: SecondForm = body.parse()?;
        let contest = e.contests.iter().find(|c| c.id == n.contest).ok_or_else(|| {
            ApiError::new(ErrorCode::Conflict, "This nomination's contest is no longer part of the election.")
        })?;
        if !may_take_part(&session, &e, contest) {
            return Err(not_eligible(contest));
        }
        let detail = json!({ "nomination": n.id, "contest": n.contest, "version": read.version });
        let entry = audit(&session, "nomination.seconded", &e.id, detail);
        Ok(store.second_nomination(&n.id, read.version, &session.sub, &entry, Timestamp::now()).await?)
    }
    .await;
    answered(&req, &keys, &session, &e, &n, None, result)
}
