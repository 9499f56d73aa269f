//! Officer routes: the live dashboard, extending or closing the window, widening code
//! acceptance, sealed-until-close results, the outbox and the audit log. Handlers parse,
//! call `turnout_core::console`, and answer JSON or a page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use turnout_core::ApiError;
use turnout_core::console::{self, Dashboard};
use turnout_core::http::{Nav, Officer, html, wants_json};
use turnout_core::results::{self, Results};
use turnout_core::store::{AuditHead, AuditRecord, AuditVerification, OutboxRow, election_or_404};

use super::results_view::{self, ContestSheet};
use super::{ConsoleElection, StoreData, changed, page_limit, parse_time};
use crate::routes::state_name;

#[derive(Template)]
#[template(path = "officer_index.html")]
struct IndexPage {
    nav: Nav,
    elections: Vec<ConsoleElection>,
}

pub async fn index(req: HttpRequest, officer: Officer, store: StoreData) -> Result<HttpResponse, ApiError> {
    let elections = super::console_elections(store.as_ref().as_ref()).await?;
    if wants_json(&req) {
        // JSON clients take the anti-CSRF token from here (header `X-CSRF-Token`).
        return Ok(HttpResponse::Ok().json(json!({ "elections": elections, "csrf_token": officer.0.csrf })));
    }
    Ok(html(StatusCode::OK, &IndexPage { nav: Nav { user: Some(officer.0.name().to_owned()) }, elections }))
}

/// One bar of a per-minute chart: its height in the SVG and its label.
struct Bar {
    x: usize,
    height: u64,
    n: u64,
    label: String,
}

struct Chart {
    title: &'static str,
    bars: Vec<Bar>,
    max: u64,
    total: u64,
}

fn chart(d: &Dashboard, title: &'static str, kind: turnout_core::store::Activity, zone: &str) -> Chart {
    let max = d.minutes.iter().map(|m| m.counts.get(&kind).copied().unwrap_or(0)).max().unwrap_or(0).max(1);
    let bars = d
        .minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let n = m.counts.get(&kind).copied().unwrap_or(0);
            let at = Timestamp::from_second(m.minute * 60).unwrap_or(Timestamp::UNIX_EPOCH);
            let label = at.in_tz(zone).map(|z| z.strftime("%H:%M").to_string()).unwrap_or_default();
            Bar { x: i * 10, height: n * 80 / max, n, label }
        })
        .collect::<Vec<_>>();
    let total = bars.iter().map(|b| b.n).sum();
    Chart { title, bars, max, total }
}

#[derive(Template)]
#[template(path = "officer_dashboard.html")]
struct DashboardPage {
    nav: Nav,
    csrf: String,
    d: Dashboard,
    state: &'static str,
    closes_local: String,
    closes_input: String,
    results_local: String,
    charts: Vec<Chart>,
    turnout_pct: String,
    quorum_line: String,
}

fn pct(p: Option<f64>) -> String {
    p.map_or_else(|| "no roll".to_owned(), |p| format!("{p:.1}%"))
}

pub async fn dashboard(
    req: HttpRequest,
    path: web::Path<String>,
    officer: Officer,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let store = store.as_ref().as_ref();
    let election = election_or_404(store, &path).await?;
    let now = Timestamp::now();
    let d = console::dashboard(store, &election, now).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(&d));
    }
    use turnout_core::store::Activity::*;
    let zone = election.schedule.time_zone.as_str();
    let charts = vec![
        chart(&d, "Ballots per minute", Ballot, zone),
        chart(&d, "Sign-ins per minute (all elections)", Login, zone),
        chart(&d, "Codes requested per minute", CodeRequested, zone),
        chart(&d, "Codes sent per minute", CodeSent, zone),
        chart(&d, "Codes failed per minute", CodeFailed, zone),
        chart(&d, "Codes verified per minute", CodeVerified, zone),
    ];
    let closes_input =
        election.schedule.closes_at.in_tz(zone).map(|z| z.strftime("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default();
    let page = DashboardPage {
        nav: Nav { user: Some(officer.0.name().to_owned()) },
        csrf: officer.0.csrf.clone(),
        state: state_name(election.schedule.state(now)),
        closes_local: election.schedule.local(election.schedule.closes_at),
        closes_input,
        results_local: election.schedule.local(console::results_from(&election)),
        turnout_pct: pct(d.quorum.turnout_pct),
        quorum_line: if d.quorum.required_pct > 0.0 {
            format!("{:.1}%", d.quorum.required_pct)
        } else {
            "none".to_owned()
        },
        charts,
        d,
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct ExtendForm {
    /// The new close: RFC 3339, or a local date-time in the election's zone.
    closes_at: Option<String>,
    /// Or: minutes to add to the current close.
    add_minutes: Option<u32>,
    reason: Option<String>,
}

pub async fn extend(
    req: HttpRequest,
    path: web::Path<String>,
    officer: Officer,
    body: turnout_core::http::Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let form: ExtendForm = officer.0.checked(&req, &body)?;
    let store = store.as_ref().as_ref();
    let election = election_or_404(store, &path).await?;
    let why = console::reason(form.reason.as_deref())?;
    let closes_at = form.closes_at.as_deref().filter(|raw| !raw.trim().is_empty());
    let new_close = match (closes_at, form.add_minutes) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("closes_at", "give either the new close time or add_minutes, not both"));
        }
        (Some(raw), None) => parse_time(raw, &election.schedule.time_zone, "closes_at")?,
        (None, Some(m)) if m > 0 => election.schedule.closes_at + std::time::Duration::from_secs(u64::from(m) * 60),
        _ => return Err(ApiError::invalid("closes_at", "give the new close time, or add_minutes above 0")),
    };
    let at = console::extend_close(store, &election, new_close, &why, officer.0.name()).await?;
    Ok(changed(
        &req,
        StatusCode::OK,
        json!({
            "election": election.id,
            "closes_at": at.to_string(),
            "closes_local": election.schedule.local(at),
        }),
        &format!("/officer/elections/{}", election.id),
    ))
}

#[derive(Deserialize)]
pub struct WidenForm {
    extra_minutes: u32,
    reason: Option<String>,
}

pub async fn widen(
    req: HttpRequest,
    path: web::Path<String>,
    officer: Officer,
    body: turnout_core::http::Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let form: WidenForm = officer.0.checked(&req, &body)?;
    let store = store.as_ref().as_ref();
    let election = election_or_404(store, &path).await?;
    let why = form.reason.clone().unwrap_or_default();
    console::widen_acceptance(store, &election, form.extra_minutes, &why, officer.0.name()).await?;
    Ok(changed(
        &req,
        StatusCode::OK,
        json!({ "election": election.id, "extra_minutes": form.extra_minutes }),
        &format!("/officer/elections/{}", election.id),
    ))
}

#[derive(Deserialize)]
pub struct CloseForm {
    confirm: Option<String>,
    reason: Option<String>,
}

pub async fn close(
    req: HttpRequest,
    path: web::Path<String>,
    officer: Officer,
    body: turnout_core::http::Body,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let form: CloseForm = officer.0.checked(&req, &body)?;
    let store = store.as_ref().as_ref();
    let election = election_or_404(store, &path).await?;
    let why = form.reason.clone().unwrap_or_default();
    let at = console::close_early(store, &election, form.confirm.as_deref(), &why, officer.0.name()).await?;
    Ok(changed(
        &req,
        StatusCode::OK,
        json!({ "election": election.id, "closed_at": at.to_string() }),
        &format!("/officer/elections/{}", election.id),
    ))
}

#[derive(Deserialize)]
pub struct ResultsQuery {
    format: Option<String>,
    /// A contest id: download that contest's ballots (BLT or CSV).
    export: Option<String>,
    /// `box`: download the whole box export (every ballot whole, under the ballots root).
    download: Option<String>,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    nav: Nav,
    r: Results,
    closed_local: String,
    turnout_pct: String,
    sheets: Vec<ContestSheet>,
}

pub async fn results(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
    officer: Officer,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let store = store.as_ref().as_ref();
    let election = election_or_404(store, &path).await?;
    let r = results::results(store, &election, Timestamp::now()).await?;
    results::record_lot_draws(store, &r, officer.0.name(), Timestamp::now()).await?;
    match query.download.as_deref() {
        None => {}
        Some("box") => {
            let contents = store.box_contents(&election.id).await?;
            let export = turnout_core::box_export::box_export(&election, &contents.ballots);
            return Ok(HttpResponse::Ok()
                .content_type("application/x-ndjson; charset=utf-8")
                .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", export.file_name)))
                .body(export.body));
        }
        Some(other) => return Err(ApiError::invalid("download", format!("box, not {other:?}"))),
    }
    if let Some(wanted) = query.export.as_deref() {
        let c = r.contests.iter().find(|c| c.id.as_str() == wanted).ok_or_else(|| ApiError::not_found("contest"))?;
        return Ok(HttpResponse::Ok()
            .content_type(c.export.content_type)
            .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", c.export.file_name)))
            .body(c.export.body.clone()));
    }
    let file = |ext: &str| format!("attachment; filename=\"{}-results.{ext}\"", election.id);
    match query.format.as_deref() {
        Some("csv") => {
            return Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((header::CONTENT_DISPOSITION, file("csv")))
                .body(results::results_csv(&r)));
        }
        Some("json") => {
            return Ok(HttpResponse::Ok().insert_header((header::CONTENT_DISPOSITION, file("json"))).json(&r));
        }
        Some(other) => return Err(ApiError::invalid("format", format!("csv or json, not {other:?}"))),
        None if wants_json(&req) => return Ok(HttpResponse::Ok().json(&r)),
        None => {}
    }
    let page = ResultsPage {
        nav: Nav { user: Some(officer.0.name().to_owned()) },
        closed_local: election.schedule.local(r.closed_at),
        turnout_pct: pct(r.quorum.turnout_pct),
        sheets: results_view::sheets(&r),
        r,
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct OutboxQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    nav: Nav,
    election: String,
    rows: Vec<OutboxRow>,
    next: Option<i64>,
}

pub async fn outbox(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<OutboxQuery>,
    officer: Officer,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let store = store.as_ref().as_ref();
    let election = election_or_404(store, &path).await?;
    let limit = page_limit(query.limit);
    let listed = store.list_outbox(&election.id, query.before, limit).await?;
    let (mut rows, next) = (listed.rows, listed.next_before);
    for row in &mut rows {
        // Officers see enough to help a voter ("it went to s***@…"), not the address book.
        row.recipient = turnout_core::domain::VoterEmail::parse(&row.recipient)
            .map(|m| m.masked())
            .unwrap_or_else(|_| "(invalid)".into());
    }
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "mail": rows, "next_before": next })));
    }
    let page = OutboxPage {
        nav: Nav { user: Some(officer.0.name().to_owned()) },
        election: election.id.to_string(),
        rows,
        next,
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<AuditRecord>,
    next: Option<i64>,
    verification: Option<AuditVerification>,
    /// The anchored head the officer asked about, as typed, and what is wrong with it.
    head: String,
    head_error: Option<String>,
    anchored: bool,
}

pub async fn audit(
    req: HttpRequest,
    query: web::Query<AuditQuery>,
    officer: Officer,
    store: StoreData,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit);
    let entries = store.list_audit(query.after.unwrap_or(0), limit).await?;
    let next = (entries.len() as u32 == limit).then(|| entries.last().map(|e| e.seq)).flatten();
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "entries": entries, "next_after": next })));
    }
    let page = AuditPage {
        nav: Nav { user: Some(officer.0.name().to_owned()) },
        entries,
        next,
        verification: None,
        head: String::new(),
        head_error: None,
        anchored: false,
    };
    Ok(html(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    /// An anchored head (`SEQ:HASH`, from the dashboard, the log or the mail) the chain
    /// must still reach.
    head: Option<String>,
}

/// Re-walks the whole chain; 200 when intact (and reaching `?head=`, when given), 409
/// with the first broken entry otherwise.
pub async fn verify_audit(
    req: HttpRequest,
    officer: Officer,
    store: StoreData,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse, ApiError> {
    let typed = query.head.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let nav = Nav { user: Some(officer.0.name().to_owned()) };
    let anchor = match typed.as_str() {
        "" => None,
        raw => match raw.parse::<AuditHead>() {
            Ok(head) => Some(head),
            Err(e) if wants_json(&req) => return Err(ApiError::invalid("head", e)),
            Err(e) => {
                let page = AuditPage {
                    nav,
                    entries: vec![],
                    next: None,
                    verification: None,
                    head: typed.clone(),
                    head_error: Some(e),
                    anchored: false,
                };
                return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page));
            }
        },
    };
    let v = store.verify_audit(anchor.as_ref()).await?;
    let status = if v.broken_at.is_none() { StatusCode::OK } else { StatusCode::CONFLICT };
    if v.broken_at.is_some() {
        tracing::error!(event = "audit_chain_broken", broken_at = v.broken_at, problem = v.problem.as_deref());
    }
    if wants_json(&req) {
        return Ok(HttpResponse::build(status).json(json!({ "intact": v.broken_at.is_none(), "verification": v })));
    }
    let page = AuditPage {
        nav,
        entries: vec![],
        next: None,
        verification: Some(v),
        anchored: anchor.is_some(),
        head: typed,
        head_error: None,
    };
    Ok(html(status, &page))
}
