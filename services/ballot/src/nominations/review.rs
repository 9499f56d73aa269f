//! The admin's side: the review queue (each contest's nominations with their manifesto,
//! photo, proposers and every version kept) and decisions. A decision names the version
//! the admin read, so one made on a version the nominee has since replaced is refused.
//! The nominee is told by mail: a notice, which the OTP service sends only when no code
//! is waiting, queued once per nomination, version and decision.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use turnout_core::domain::{ContestId, ElectionId};
use turnout_core::http::{Admin, Body, Nav, html, wants_json};
use turnout_core::store::{
    AuditEntry, Decision, Election, MAX_PAGE, Nomination, NominationId, NominationStatus, NominationVersion, Notice,
    election_or_404,
};
use turnout_core::{ApiError, ErrorCode};

use super::manifesto::{self, Piece};
use super::{FieldError, StoreData, period_text, photo_url};

#[derive(Deserialize)]
pub struct QueueQuery {
    /// `pending` (the default), `approved`, `rejected`, `withdrawn` or `all`.
    status: Option<String>,
    /// Paging: the last row's `contest/nomination`.
    after: Option<String>,
}

fn status_filter(raw: Option<&str>) -> Result<Option<NominationStatus>, ApiError> {
    match raw.unwrap_or("pending") {
        "all" => Ok(None),
        s => NominationStatus::parse(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("status", "one of pending, approved, rejected, withdrawn, all")),
    }
}

fn after_of(raw: Option<&str>) -> Result<Option<(ContestId, NominationId)>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(None) };
    let bad = || ApiError::invalid("after", "the last row's contest/nomination");
    let (c, n) = raw.split_once('/').ok_or_else(bad)?;
    Ok(Some((ContestId::parse(c).map_err(|_| bad())?, NominationId::parse(n).map_err(|_| bad())?)))
}

struct VersionRow {
    version: u32,
    at: String,
    name: String,
    manifesto: Vec<Vec<Vec<Piece>>>,
    photo: Option<String>,
    decided: bool,
}

struct Row {
    id: String,
    contest: String,
    nominee: String,
    name: String,
    status: &'static str,
    reason: Option<String>,
    version: u32,
    manifesto: Vec<Vec<Vec<Piece>>>,
    photo: Option<String>,
    seconders: Vec<String>,
    proposers_met: bool,
    /// Earlier versions, newest first (the current one is shown above them).
    earlier: Vec<VersionRow>,
    decided_version: Option<u32>,
    error: Option<FieldError>,
}

#[derive(Template)]
#[template(path = "admin_nominations.html")]
struct QueuePage {
    nav: Nav,
    csrf: String,
    election: String,
    title: String,
    period: String,
    proposers: u32,
    status: String,
    rows: Vec<Row>,
    next: Option<String>,
}

fn row(e: &Election, n: &Nomination, versions: &[NominationVersion], error: Option<FieldError>) -> Row {
    let need = e.nominations.as_ref().map_or(0, |p| p.proposers);
    Row {
        id: n.id.to_string(),
        contest: e.contests.iter().find(|c| c.id == n.contest).map_or(n.contest.to_string(), |c| c.title.clone()),
        nominee: n.nominee.to_string(),
        name: n.content.name.clone(),
        status: n.status.as_str(),
        reason: n.reason.clone(),
        version: n.version,
        manifesto: manifesto::paragraphs(&n.content.manifesto),
        photo: n.content.photo.as_ref().map(photo_url),
        seconders: n.seconds.iter().map(|s| s.by.to_string()).collect(),
        proposers_met: n.seconds.len() >= need as usize,
        earlier: versions
            .iter()
            .rev()
            .filter(|v| v.version != n.version)
            .map(|v| VersionRow {
                version: v.version,
                at: e.schedule.local(v.at),
                name: v.content.name.clone(),
                manifesto: manifesto::paragraphs(&v.content.manifesto),
                photo: v.content.photo.as_ref().map(photo_url),
                decided: n.decided_version == Some(v.version),
            })
            .collect(),
        decided_version: n.decided_version,
        error,
    }
}

/// One page of the queue and each nomination's versions.
async fn page_of(
    store: &StoreData,
    e: &Election,
    status: Option<NominationStatus>,
    after: Option<(ContestId, NominationId)>,
) -> Result<(Vec<(Nomination, Vec<NominationVersion>)>, Option<String>), ApiError> {
    let limit = MAX_PAGE.min(100);
    let after = after.as_ref().map(|(c, n)| (c, n));
    let found = store.list_nominations(&e.id, status, after, limit).await?;
    let next =
        (found.len() == limit as usize).then(|| found.last().map(|n| format!("{}/{}", n.contest, n.id))).flatten();
    // A nomination never edited has one version, its current content: only the edited
    // ones are read, a few at a time.
    let out = futures_util::stream::iter(found)
        .map(|n| async move {
            let versions = if n.version == 1 {
                vec![NominationVersion { version: 1, content: n.content.clone(), at: n.submitted_at }]
            } else {
                store.nomination_versions(&n.id).await?
            };
            Ok::<_, ApiError>((n, versions))
        })
        .buffered(8)
        .try_collect()
        .await?;
    Ok((out, next))
}

#[allow(clippy::too_many_arguments)]
fn render(
    admin: &Admin,
    e: &Election,
    status: &str,
    page: Vec<(Nomination, Vec<NominationVersion>)>,
    next: Option<String>,
    failed: Option<(&NominationId, FieldError)>,
    code: StatusCode,
) -> HttpResponse {
    let rows = page
        .iter()
        .map(|(n, versions)| {
            let error = failed.as_ref().filter(|(id, _)| **id == n.id).map(|(_, err)| err.clone());
            row(e, n, versions, error)
        })
        .collect();
    let page = QueuePage {
        nav: Nav { user: Some(admin.0.name().to_owned()) },
        csrf: admin.0.csrf.clone(),
        election: e.id.to_string(),
        title: e.title.clone(),
        period: period_text(e),
        proposers: e.nominations.as_ref().map_or(0, |p| p.proposers),
        status: status.to_owned(),
        rows,
        next,
    };
    html(code, &page)
}

pub async fn queue(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<QueueQuery>,
    admin: Admin,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let e = election_or_404(store.as_ref().as_ref(), &path).await?;
    let status = status_filter(query.status.as_deref())?;
    let (page, next) = page_of(&store, &e, status, after_of(query.after.as_deref())?).await?;
    if wants_json(&req) {
        let rows: Vec<_> = page.iter().map(|(n, versions)| json!({ "nomination": n, "versions": versions })).collect();
        return Ok(HttpResponse::Ok().json(json!({
            "election": e.id, "nominations": rows, "next": next, "csrf_token": admin.0.csrf,
        })));
    }
    let shown = status.map_or("all", NominationStatus::as_str);
    Ok(render(&admin, &e, shown, page, next, None, StatusCode::OK))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    decision: Decision,
    /// The version the admin read.
    version: u32,
    #[serde(default)]
    reason: Option<String>,
}

fn audit(admin: &Admin, action: &str, election: &ElectionId, detail: serde_json::Value) -> AuditEntry {
    AuditEntry { actor: admin.0.name().to_owned(), action: action.to_owned(), election: Some(election.clone()), detail }
}

/// The mail that tells the nominee: one per nomination, version and decision.
fn decision_notice(e: &Election, n: &Nomination, decision: Decision) -> Notice {
    let contest = e.contests.iter().find(|c| c.id == n.contest).map_or(n.contest.to_string(), |c| c.title.clone());
    let (subject, outcome) = match decision {
        Decision::Approve => (
            format!("Your nomination for {contest} was approved"),
            "was approved: you will be on the ballot when voting opens.".to_owned(),
        ),
        Decision::Reject => (
            format!("Your nomination for {contest} was not approved"),
            format!("was not approved. The returning officer's reason:\n\n{}", n.reason.as_deref().unwrap_or("")),
        ),
    };
    let body = format!(
        "Hello {name},\n\nYour nomination for {contest} in {title} (version {version}) {outcome}\n\n\
         Sign in to Turnout to see your nomination: /e/{election}/nominations/{id}\n",
        name = n.content.name,
        title = e.title,
        version = n.version,
        election = e.id,
        id = n.id,
    );
    Notice {
        key: format!("nomination:{}:v{}:{}", n.id, n.version, decision.status().as_str()),
        to: n.email.clone(),
        subject: subject.chars().filter(|c| !c.is_control()).take(200).collect(),
        body,
    }
}

pub async fn decide(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    admin: Admin,
    body: Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let form: DecisionForm = admin.0.checked(&req, &body)?;
    let (election, id) = path.into_inner();
    let e = election_or_404(store.as_ref().as_ref(), &election).await?;
    let missing = || ApiError::new(ErrorCode::NotFound, "There is no such nomination.");
    let id = NominationId::parse(&id).map_err(|_| missing())?;
    let reason = form.reason.as_deref().unwrap_or("").trim().to_owned();
    let action = match form.decision {
        Decision::Approve => "nomination.approved",
        Decision::Reject => "nomination.rejected",
    };
    let detail = json!({ "nomination": id, "version": form.version, "reason": reason });
    let entry = audit(&admin, action, &e.id, detail);
    let decided = match store.nomination(&id).await? {
        Some(n) if n.election == e.id => {
            store.decide_nomination(&id, form.version, form.decision, &reason, &entry, Timestamp::now()).await
        }
        _ => return Err(missing()),
    };
    let n = match decided {
        Ok(n) => n,
        Err(err) if wants_json(&req) => return Err(err.into()),
        Err(err) => {
            let err = ApiError::from(err);
            let code = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            let (page, next) = page_of(&store, &e, None, None).await?;
            return Ok(render(&admin, &e, "all", page, next, Some((&id, FieldError::from(&err))), code));
        }
    };
    // Queued after the decision: if this fails the decision stands, and deciding the same
    // version again (a retry) changes nothing but queues the mail.
    if let Err(err) = store.queue_notices(&[decision_notice(&e, &n, form.decision)], Timestamp::now()).await {
        tracing::error!(event = "nomination_notice_failed", election = %e.id, error = %err);
        return Err(ApiError::new(
            ErrorCode::StoreUnavailable,
            "The decision is recorded, but the mail to the nominee could not be queued. Send the same decision again.",
        ));
    }
    tracing::info!(event = "nomination_decided", election = %e.id, contest = %n.contest, status = n.status.as_str());
    let body = json!({ "nomination": n.id, "status": n.status, "version": n.version });
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(body));
    }
    let back = format!("/admin/elections/{}/nominations", e.id);
    Ok(HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, back)).finish())
}
