//! Admin routes: create and edit elections, nominate and decide candidates, import the
//! voter roll (streamed to disk, imported in chunks, progress on its own page).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use turnout_core::domain::{CandidateId, ContestId, ElectionId, Username};
use turnout_core::http::{Admin, Body, Nav, html, wants_json};
use turnout_core::store::{
    AuditEntry, CandidateRow, ContestEdit, Decision, ElectionEdit, Eligibility, ImportJob, NewCandidate, NewElection,
    NominationPeriod, RollRow, RowError, election_or_404,
};
use turnout_core::{ApiError, ErrorCode};

use super::{ConsoleElection, StoreData, changed, contest_lines, page_limit, parse_time, see_other};
use crate::roll_import::{Importer, MAX_ROLL_ROWS, count_rows};

fn audit(admin: &Admin, action: &str, election: &ElectionId, detail: serde_json::Value) -> AuditEntry {
    AuditEntry { actor: admin.0.name().to_owned(), action: action.to_owned(), election: Some(election.clone()), detail }
}

#[derive(Template)]
#[template(path = "admin_index.html")]
struct IndexPage {
    nav: Nav,
    csrf: String,
    elections: Vec<ConsoleElection>,
}

pub async fn index(req: HttpRequest, admin: Admin, store: StoreData) -> Result<HttpResponse, ApiError> {
    let elections = super::console_elections(store.as_ref().as_ref()).await?;
    if wants_json(&req) {
        // JSON clients take the anti-CSRF token from here (header `X-CSRF-Token`).
        return Ok(HttpResponse::Ok().json(json!({ "elections": elections, "csrf_token": admin.0.csrf })));
    }
    let page = IndexPage { nav: Nav { user: Some(admin.0.name().to_owned()) }, csrf: admin.0.csrf.clone(), elections };
    Ok(html(StatusCode::OK, &page))
}

/// The HTML form for a new election: contests one per line as `id | title`.
#[derive(Deserialize)]
struct CreateForm {
    id: String,
    title: String,
    opens_at: String,
    closes_at: String,
    time_zone: String,
    #[serde(default)]
    grace_secs: Option<u64>,
    #[serde(default)]
    quorum_pct: Option<f64>,
    #[serde(default)]
    otp_validity_secs: Option<u64>,
    contests: String,
    #[serde(default)]
    shuffle_candidates: Option<String>,
    #[serde(default)]
    eligibility: Option<String>,
    #[serde(default)]
    eligibility_value: Option<String>,
    #[serde(default)]
    nominations_opens_at: Option<String>,
    #[serde(default)]
    nominations_closes_at: Option<String>,
    #[serde(default)]
    proposers: Option<String>,
    #[serde(default)]
    max_seconds: Option<String>,
}

/// The nomination period as the console forms write it: both times empty for none.
/// (Fields of each form rather than a flattened struct: a flattened form reads every
/// value as text, which the forms' number fields can't take.)
struct PeriodFields<'a> {
    nominations_opens_at: &'a Option<String>,
    nominations_closes_at: &'a Option<String>,
    proposers: &'a Option<String>,
    max_seconds: &'a Option<String>,
}

impl PeriodFields<'_> {
    fn period(self, zone: &str) -> Result<Option<NominationPeriod>, ApiError> {
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
        let (opens, closes) = match (text(self.nominations_opens_at), text(self.nominations_closes_at)) {
            (None, None) => return Ok(None),
            (Some(o), Some(c)) => (o, c),
            (None, Some(_)) => {
                return Err(ApiError::invalid(
                    "nominations_opens_at",
                    "give both times of the nomination period, or neither",
                ));
            }
            (Some(_), None) => {
                return Err(ApiError::invalid(
                    "nominations_closes_at",
                    "give both times of the nomination period, or neither",
                ));
            }
        };
        let count = |v: &Option<String>, field: &str| -> Result<u32, ApiError> {
            match text(v) {
                None => Ok(0),
                Some(n) => n.parse::<u32>().map_err(|_| ApiError::invalid(field, "a whole number, 0 for none")),
            }
        };
        Ok(Some(NominationPeriod {
            opens_at: parse_time(&opens, zone, "nominations_opens_at")?,
            closes_at: parse_time(&closes, zone, "nominations_closes_at")?,
            proposers: count(self.proposers, "proposers")?,
            max_seconds: count(self.max_seconds, "max_seconds")?,
        }))
    }
}

fn eligibility_from(kind: Option<&str>, value: Option<&str>) -> Result<Eligibility, ApiError> {
    let value = value.unwrap_or("").trim().to_owned();
    Ok(match kind.unwrap_or("everyone") {
        "everyone" => Eligibility::Everyone,
        "roll" => Eligibility::Roll,
        "ldap_group" => Eligibility::LdapGroup { group_dn: value },
        "ldap_filter" => Eligibility::LdapFilter { filter: value },
        other => return Err(ApiError::invalid("eligibility", format!("unknown kind {other:?}"))),
    })
}

pub async fn create(req: HttpRequest, admin: Admin, body: Body, store: StoreData) -> Result<HttpResponse, ApiError> {
    let election: NewElection = match &body {
        Body::Json(_) => admin.0.checked(&req, &body)?,
        Body::Form(_) => {
            let f: CreateForm = admin.0.checked(&req, &body)?;
            NewElection {
                id: ElectionId::parse(f.id.trim()).map_err(|e| ApiError::invalid("id", e))?,
                title: f.title.trim().to_owned(),
                opens_at: parse_time(&f.opens_at, &f.time_zone, "opens_at")?,
                closes_at: parse_time(&f.closes_at, &f.time_zone, "closes_at")?,
                time_zone: f.time_zone.trim().to_owned(),
                grace_secs: f.grace_secs.unwrap_or(0),
                eligibility: eligibility_from(f.eligibility.as_deref(), f.eligibility_value.as_deref())?,
                quorum_pct: f.quorum_pct.unwrap_or(0.0),
                otp_validity_secs: f.otp_validity_secs.unwrap_or(0),
                shuffle_candidates: f.shuffle_candidates.is_some(),
                nominations: PeriodFields {
                    nominations_opens_at: &f.nominations_opens_at,
                    nominations_closes_at: &f.nominations_closes_at,
                    proposers: &f.proposers,
                    max_seconds: &f.max_seconds,
                }
                .period(&f.time_zone)?,
                contests: contest_lines::parse(&f.contests)?,
            }
        }
    };
    let mut election = election;
    // Candidates go through nomination and approval, never straight onto a ballot.
    for contest in &mut election.contests {
        contest.candidates.clear();
    }
    election.validate()?;
    crate::eligibility::check(&election.eligibility)?;
    for contest in &election.contests {
        crate::eligibility::check_constituency(&contest.rules.voters)?;
    }
    let now = Timestamp::now();
    if election.opens_at <= now {
        return Err(ApiError::invalid("opens_at", "the opening must be in the future"));
    }
    let entry = audit(
        &admin,
        "election.created",
        &election.id,
        json!({ "title": election.title, "opens_at": election.opens_at.to_string(),
                "closes_at": election.closes_at.to_string(), "eligibility": election.eligibility,
                "nominations": election.nominations,
                "shuffle_candidates": election.shuffle_candidates,
                "contests": election.contests.iter().map(|c| json!({ "id": c.id, "rules": c.rules })).collect::<Vec<_>>() }),
    );
    store.create_election_audited(&election, &entry, now).await?;
    let url = format!("/admin/elections/{}", election.id);
    if wants_json(&req) {
        return Ok(HttpResponse::Created()
            .insert_header((actix_web::http::header::LOCATION, url.clone()))
            .json(json!({ "election": election.id, "url": url })));
    }
    Ok(see_other(&url))
}

#[derive(Template)]
#[template(path = "admin_election.html")]
struct ElectionPage {
    nav: Nav,
    csrf: String,
    id: String,
    title: String,
    editable: bool,
    opens_local: String,
    closes_local: String,
    opens_input: String,
    closes_input: String,
    time_zone: String,
    grace_secs: u64,
    quorum_pct: f64,
    otp_validity_secs: u64,
    eligibility: String,
    shuffle_candidates: bool,
    contests: Vec<(String, String)>,
    /// The contests as the edit form's lines (`contest_lines`).
    contest_lines: String,
    /// The nomination period in words, and as the edit form's values.
    period: String,
    nominations_opens_input: String,
    nominations_closes_input: String,
    proposers: u32,
    max_seconds: u32,
    candidates: Vec<CandidateRow>,
    next_candidates: Option<String>,
    roll_size: u64,
}

#[derive(Deserialize)]
pub struct CandidatesQuery {
    /// `contest/candidate` of the last row of the previous page.
    after: Option<String>,
    limit: Option<u32>,
}

fn candidate_cursor(raw: Option<&str>) -> Result<Option<(ContestId, CandidateId)>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let (k, c) = raw.split_once('/').ok_or_else(|| ApiError::invalid("after", "contest/candidate"))?;
    Ok(Some((
        ContestId::parse(k).map_err(|e| ApiError::invalid("after", e))?,
        CandidateId::parse(c).map_err(|e| ApiError::invalid("after", e))?,
    )))
}

pub async fn election(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CandidatesQuery>,
    admin: Admin,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let store = store.as_ref().as_ref();
    let e = election_or_404(store, &path).await?;
    let limit = page_limit(query.limit);
    let after = candidate_cursor(query.after.as_deref())?;
    let candidates = store.list_candidates(&e.id, after.as_ref().map(|(k, c)| (k, c)), limit).await?;
    let next_candidates = (candidates.len() as u32 == limit)
        .then(|| candidates.last().map(|c| format!("{}/{}", c.contest, c.id)))
        .flatten();
    let roll_size = store.roll_size(&e.id).await?;
    let s = &e.schedule;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({
            "election": e.id, "title": e.title, "opens_at": s.opens_at.to_string(), "closes_at": s.closes_at.to_string(),
            "time_zone": s.time_zone, "grace_secs": s.grace.as_secs(), "quorum_pct": e.quorum_pct,
            "otp_validity_secs": e.otp_validity.map_or(0, |v| v.as_secs()), "eligibility": e.eligibility,
            "shuffle_candidates": e.shuffle_candidates, "nominations": e.nominations,
            "contests": e.contests.iter().map(|c| json!({ "id": c.id, "title": c.title, "rules": c.rules })).collect::<Vec<_>>(),
            "candidates": candidates, "next_after": next_candidates, "roll_size": roll_size,
            "editable": Timestamp::now() < s.opens_at,
        })));
    }
    let input =
        |t: Timestamp| t.in_tz(&s.time_zone).map(|z| z.strftime("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default();
    let page = ElectionPage {
        nav: Nav { user: Some(admin.0.name().to_owned()) },
        csrf: admin.0.csrf.clone(),
        id: e.id.to_string(),
        title: e.title.clone(),
        editable: Timestamp::now() < s.opens_at,
        opens_local: s.local(s.opens_at),
        closes_local: s.local(s.closes_at),
        opens_input: input(s.opens_at),
        closes_input: input(s.closes_at),
        time_zone: s.time_zone.clone(),
        grace_secs: s.grace.as_secs(),
        quorum_pct: e.quorum_pct,
        otp_validity_secs: e.otp_validity.map_or(0, |v| v.as_secs()),
        eligibility: serde_json::to_string(&e.eligibility).unwrap_or_default(),
        shuffle_candidates: e.shuffle_candidates,
        contests: e.contests.iter().map(|c| (c.id.to_string(), c.title.clone())).collect(),
        contest_lines: e.contests.iter().map(|c| contest_lines::line(&c.id, &c.title, &c.rules) + "\n").collect(),
        period: crate::nominations::period_text(&e),
        nominations_opens_input: e.nominations.as_ref().map(|p| input(p.opens_at)).unwrap_or_default(),
        nominations_closes_input: e.nominations.as_ref().map(|p| input(p.closes_at)).unwrap_or_default(),
        proposers: e.nominations.as_ref().map_or(0, |p| p.proposers),
        max_seconds: e.nominations.as_ref().map_or(0, |p| p.max_seconds),
        candidates,
        next_candidates,
        roll_size,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The edit form: the same fields as JSON's `ElectionEdit`, times local, contests as lines.
#[derive(Deserialize)]
struct EditForm {
    title: Option<String>,
    opens_at: Option<String>,
    closes_at: Option<String>,
    time_zone: Option<String>,
    grace_secs: Option<u64>,
    quorum_pct: Option<f64>,
    otp_validity_secs: Option<u64>,
    /// "yes" or "no" (a select, so switching it off is sent too).
    shuffle_candidates: Option<String>,
    contests: Option<String>,
    #[serde(default)]
    nominations_opens_at: Option<String>,
    #[serde(default)]
    nominations_closes_at: Option<String>,
    #[serde(default)]
    proposers: Option<String>,
    #[serde(default)]
    max_seconds: Option<String>,
}

pub async fn edit(
    req: HttpRequest,
    path: web::Path<String>,
    admin: Admin,
    body: Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let store = store.as_ref().as_ref();
    let e = election_or_404(store, &path).await?;
    let edit: ElectionEdit = match &body {
        Body::Json(_) => admin.0.checked(&req, &body)?,
        Body::Form(_) => {
            let f: EditForm = admin.0.checked(&req, &body)?;
            let zone = f.time_zone.clone().filter(|z| !z.trim().is_empty()).unwrap_or(e.schedule.time_zone.clone());
            let time = |raw: &Option<String>, field| match raw.as_deref().map(str::trim) {
                Some(r) if !r.is_empty() => parse_time(r, &zone, field).map(Some),
                _ => Ok(None),
            };
            ElectionEdit {
                title: f.title.clone().filter(|t| !t.trim().is_empty()),
                opens_at: time(&f.opens_at, "opens_at")?,
                closes_at: time(&f.closes_at, "closes_at")?,
                time_zone: f.time_zone.clone().filter(|z| !z.trim().is_empty()),
                grace_secs: f.grace_secs,
                quorum_pct: f.quorum_pct,
                otp_validity_secs: f.otp_validity_secs,
                shuffle_candidates: f.shuffle_candidates.as_deref().map(|v| v == "yes"),
                nominations: PeriodFields {
                    nominations_opens_at: &f.nominations_opens_at,
                    nominations_closes_at: &f.nominations_closes_at,
                    proposers: &f.proposers,
                    max_seconds: &f.max_seconds,
                }
                .period(&zone)?,
                contests: match f.contests.as_deref().filter(|c| !c.trim().is_empty()) {
                    Some(lines) => Some(
                        contest_lines::parse(lines)?
                            .into_iter()
                            .map(|c| ContestEdit { id: c.id, title: c.title, rules: Some(c.rules) })
                            .collect(),
                    ),
                    None => None,
                },
            }
        }
    };
    edit.validate()?;
    for contest in edit.contests.iter().flatten() {
        if let Some(rules) = &contest.rules {
            crate::eligibility::check_constituency(&rules.voters)?;
        }
    }
    let detail = json!({
        "title": edit.title, "opens_at": edit.opens_at.map(|t| t.to_string()),
        "closes_at": edit.closes_at.map(|t| t.to_string()), "time_zone": edit.time_zone, "grace_secs": edit.grace_secs,
        "quorum_pct": edit.quorum_pct, "otp_validity_secs": edit.otp_validity_secs, "contests": edit.contests,
        "shuffle_candidates": edit.shuffle_candidates, "nominations": edit.nominations,
    });
    store.edit_election(&e.id, &edit, &audit(&admin, "election.edited", &e.id, detail), Timestamp::now()).await?;
    let body = json!({ "election": e.id, "edited": true });
    Ok(changed(&req, StatusCode::OK, body, &format!("/admin/elections/{}", e.id)))
}

#[derive(Deserialize)]
pub struct NominateForm {
    contest: String,
    id: String,
    name: String,
    #[serde(default)]
    statement: String,
}

pub async fn nominate(
    req: HttpRequest,
    path: web::Path<String>,
    admin: Admin,
    body: Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let form: NominateForm = admin.0.checked(&req, &body)?;
    let store = store.as_ref().as_ref();
    let e = election_or_404(store, &path).await?;
    let contest = ContestId::parse(form.contest.trim()).map_err(|err| ApiError::invalid("contest", err))?;
    let candidate = NewCandidate {
        id: CandidateId::parse(form.id.trim()).map_err(|err| ApiError::invalid("id", err))?,
        name: form.name.trim().to_owned(),
        statement: form.statement.trim().to_owned(),
        status: turnout_core::store::CandidateStatus::Pending,
    };
    candidate.validate()?;
    // Marked as the admin's own entry: students' nominations are `nomination.*` lines.
    let detail = json!({ "contest": contest, "candidate": candidate.id, "name": candidate.name, "added_by": "admin" });
    let entry = audit(&admin, "candidate.added_by_admin", &e.id, detail);
    store.nominate_candidate(&e.id, &contest, &candidate, &entry, Timestamp::now()).await?;
    let body = json!({ "contest": contest, "candidate": candidate.id, "status": "pending" });
    Ok(changed(&req, StatusCode::CREATED, body, &format!("/admin/elections/{}", e.id)))
}

#[derive(Deserialize)]
pub struct DecideForm {
    decision: Decision,
    reason: Option<String>,
}

pub async fn decide(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    admin: Admin,
    body: Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let form: DecideForm = admin.0.checked(&req, &body)?;
    let (election, contest, candidate) = path.into_inner();
    let store = store.as_ref().as_ref();
    let e = election_or_404(store, &election).await?;
    let unknown = || ApiError::new(ErrorCode::NotFound, "There is no such contest or candidate in this election.");
    let contest = ContestId::parse(&contest).map_err(|_| unknown())?;
    let candidate = CandidateId::parse(&candidate).map_err(|_| unknown())?;
    let reason = match (form.decision, form.reason.as_deref().map(str::trim)) {
        (Decision::Reject, None | Some("")) => {
            return Err(ApiError::invalid("reason", "a rejection needs a reason; the candidate will be told"));
        }
        (_, r) => r.unwrap_or("").to_owned(),
    };
    if reason.chars().count() > 500 {
        return Err(ApiError::invalid("reason", "at most 500 characters"));
    }
    let action = match form.decision {
        Decision::Approve => "candidate.approved",
        Decision::Reject => "candidate.rejected",
    };
    let entry = audit(&admin, action, &e.id, json!({ "contest": contest, "candidate": candidate, "reason": reason }));
    store.decide_candidate(&e.id, &contest, &candidate, form.decision, &reason, &entry, Timestamp::now()).await?;
    let body = json!({ "candidate": candidate, "status": form.decision.status() });
    Ok(changed(&req, StatusCode::OK, body, &format!("/admin/elections/{}", e.id)))
}

#[derive(Deserialize)]
pub struct RollQuery {
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Template)]
#[template(path = "admin_roll.html")]
struct RollPage {
    nav: Nav,
    election: String,
    rows: Vec<RollRow>,
    next: Option<String>,
    size: u64,
}

pub async fn roll(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<RollQuery>,
    admin: Admin,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let store = store.as_ref().as_ref();
    let e = election_or_404(store, &path).await?;
    let limit = page_limit(query.limit);
    let after = match query.after.as_deref() {
        Some(raw) => Some(Username::parse(raw).map_err(|err| ApiError::invalid("after", err))?),
        None => None,
    };
    let rows = store.list_roll(&e.id, after.as_ref(), limit).await?;
    let next = (rows.len() as u32 == limit).then(|| rows.last().map(|r| r.uid.to_string())).flatten();
    let size = store.roll_size(&e.id).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "roll": rows, "next_after": next, "size": size })));
    }
    let page =
        RollPage { nav: Nav { user: Some(admin.0.name().to_owned()) }, election: e.id.to_string(), rows, next, size };
    Ok(html(StatusCode::OK, &page))
}

/// The largest roll file accepted (about 2 million rows of uid, email and name).
const MAX_ROLL_BYTES: usize = 128 * 1024 * 1024;

/// Streams the request's CSV into `path`: the raw body (`text/csv`) or the `file` part of
/// a form upload (`multipart/form-data`). Returns the form's `csrf` field, if any.
async fn receive_upload(
    req: &HttpRequest,
    content_type: &str,
    payload: web::Payload,
    path: &std::path::Path,
) -> Result<(Option<String>, String), ApiError> {
    let write_failed = |e: std::io::Error| {
        tracing::error!(event = "roll_upload_write_failed", error = %e);
        ApiError::new(ErrorCode::StoreUnavailable, "The upload could not be saved; try again shortly.")
    };
    let mut file = tokio::fs::File::create(path).await.map_err(write_failed)?;
    let mut written = 0usize;
    let too_big =
        || ApiError::new(ErrorCode::BodyTooLarge, format!("the roll file is larger than {} MB", MAX_ROLL_BYTES >> 20));
    let broken =
        |e: &dyn std::fmt::Display| ApiError::new(ErrorCode::MalformedBody, format!("the upload broke off: {e}"));
    if content_type.starts_with("text/csv") || content_type.starts_with("text/plain") {
        let mut payload = payload;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| broken(&e))?;
            written += chunk.len();
            if written > MAX_ROLL_BYTES {
                return Err(too_big());
            }
            file.write_all(&chunk).await.map_err(write_failed)?;
        }
        file.flush().await.map_err(write_failed)?;
        return Ok((None, "upload.csv".into()));
    }
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the roll as text/csv, or as the `file` field of a multipart/form-data form",
        ));
    }
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let (mut csrf, mut name, mut got_file) = (None, String::from("upload.csv"), false);
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|e| broken(&e))?;
        let field = part.name().unwrap_or("").to_owned();
        match field.as_str() {
            "csrf" => {
                let mut value = Vec::new();
                while let Some(chunk) = part.next().await {
                    value.extend_from_slice(&chunk.map_err(|e| broken(&e))?);
                    if value.len() > 256 {
                        return Err(ApiError::invalid("csrf", "too long"));
                    }
                }
                csrf = Some(String::from_utf8_lossy(&value).into_owned());
            }
            "file" => {
                got_file = true;
                if let Some(n) = part.content_disposition().and_then(|d| d.get_filename()) {
                    name = n.chars().filter(|c| !c.is_control()).take(200).collect();
                }
                while let Some(chunk) = part.next().await {
                    let chunk = chunk.map_err(|e| broken(&e))?;
                    written += chunk.len();
                    if written > MAX_ROLL_BYTES {
                        return Err(too_big());
                    }
                    file.write_all(&chunk).await.map_err(write_failed)?;
                }
            }
            _ => while part.next().await.is_some() {},
        }
    }
    if !got_file {
        return Err(ApiError::invalid("file", "choose a CSV file to upload"));
    }
    file.flush().await.map_err(write_failed)?;
    Ok((csrf, name))
}

pub async fn upload_roll(
    req: HttpRequest,
    path: web::Path<String>,
    admin: Admin,
    payload: web::Payload,
    store: StoreData,
    importer: web::Data<Importer>,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        // Outside a form the token comes as a header: checked before reading any of the body.
        admin.0.check_csrf(&req, None)?;
    }
    let e = election_or_404(store.as_ref().as_ref(), &path).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let file = importer.file_of(&id);
    let received = receive_upload(&req, &content_type, payload, &file).await;
    let checked = received.and_then(|(csrf, name)| admin.0.check_csrf(&req, csrf.as_deref()).map(|()| name));
    let name = match checked {
        Ok(name) => name,
        Err(err) => {
            let _ = std::fs::remove_file(&file);
            return Err(err);
        }
    };
    let counted = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || count_rows(&file)).await.map_err(|_| ApiError::internal())?
    };
    let rows_total = match counted {
        Ok(0) | Err(_) => {
            let _ = std::fs::remove_file(&file);
            let why = counted.err().map_or("the file has no rows".to_owned(), |e| format!("{e:#}"));
            return Err(ApiError::invalid("file", why));
        }
        Ok(n) if n > MAX_ROLL_ROWS => {
            let _ = std::fs::remove_file(&file);
            return Err(ApiError::invalid(
                "file",
                format!("the roll has {n} rows; at most {MAX_ROLL_ROWS} are imported"),
            ));
        }
        Ok(n) => n,
    };
    let now = Timestamp::now();
    let job = ImportJob::started(&id, &e.id, admin.0.name(), &name, rows_total, now);
    let entry = audit(&admin, "roll.import_started", &e.id, json!({ "import": id, "file": name, "rows": rows_total }));
    let lease = importer.new_lease();
    if let Err(err) = store.create_import(&job, &lease, &entry, now).await {
        let _ = std::fs::remove_file(&file);
        return Err(err.into());
    }
    importer.start(job, lease);
    let url = format!("/admin/imports/{id}");
    if wants_json(&req) {
        return Ok(HttpResponse::Accepted()
            .insert_header((actix_web::http::header::LOCATION, url.clone()))
            .json(json!({ "import": id, "rows": rows_total, "progress_url": url })));
    }
    Ok(see_other(&url))
}

#[derive(Deserialize)]
pub struct ImportQuery {
    errors_after: Option<u64>,
    limit: Option<u32>,
}

#[derive(Template)]
#[template(path = "admin_import.html")]
struct ImportPage {
    nav: Nav,
    job: ImportJob,
    percent: u64,
    errors: Vec<RowError>,
    next: Option<u64>,
}

pub async fn import(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ImportQuery>,
    admin: Admin,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "There is no such roll import.");
    if path.len() > 64 {
        return Err(not_found());
    }
    let job = store.import_job(&path).await?.ok_or_else(not_found)?;
    let limit = page_limit(query.limit);
    let errors = store.import_errors(&job.id, query.errors_after.unwrap_or(0), limit).await?;
    let next = (errors.len() as u32 == limit).then(|| errors.last().map(|e| e.line)).flatten();
    let percent = (job.rows_done * 100).checked_div(job.rows_total).unwrap_or(100);
    if wants_json(&req) {
        return Ok(HttpResponse::Ok()
            .json(json!({ "import": job, "percent": percent, "errors": errors, "next_errors_after": next })));
    }
    let page = ImportPage { nav: Nav { user: Some(admin.0.name().to_owned()) }, job, percent, errors, next };
    Ok(html(StatusCode::OK, &page))
}
