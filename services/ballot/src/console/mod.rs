//! The admin and officer console: server-rendered pages that work without JavaScript,
//! and the same routes as JSON calls. Every route takes the `Admin` or `Officer`
//! extractor (a voter session gets 403), and every change checks the anti-CSRF token.
//!
//! Layout:
//! - `admin`: elections, candidates, the voter roll and its imports;
//! - `contest_lines`: contests as the forms write them, one line each, and back;
//! - `officer`: the live dashboard, extend / close / widen, results, outbox, audit log;
//! - `results_view`: each contest's count sheet as the results page shows it.

mod admin;
mod contest_lines;
mod officer;
mod results_view;

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use jiff::Timestamp;
use serde::Serialize;
use turnout_core::ApiError;
use turnout_core::http::wants_json;
use turnout_core::store::{Elections, Store};

pub type StoreData = web::Data<Arc<dyn Store>>;

/// An election as the console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleElection {
    pub id: String,
    pub title: String,
    pub state: &'static str,
    pub opens: String,
    pub closes: String,
}

/// The first 100 elections by id: the console's overview (`/?after=` pages through all).
async fn console_elections(store: &dyn Elections) -> Result<Vec<ConsoleElection>, ApiError> {
    let now = Timestamp::now();
    Ok(store
        .list_elections(None, 100)
        .await?
        .into_iter()
        .map(|e| {
            let schedule = e.schedule();
            ConsoleElection {
                id: e.id.to_string(),
                title: e.title,
                state: crate::routes::state_name(schedule.state(now)),
                opens: schedule.local(e.opens_at),
                closes: schedule.local(e.closes_at),
            }
        })
        .collect())
}

/// A time from a form or JSON: RFC 3339 (`2026-11-22T10:30:00Z`), or a local date-time
/// (`2026-11-22T10:30`, what `<input type=datetime-local>` sends) in the election's zone.
pub fn parse_time(raw: &str, zone: &str, field: &str) -> Result<Timestamp, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(t);
    }
    let local: jiff::civil::DateTime = raw.parse().map_err(|_| {
        ApiError::invalid(field, "a time like 2026-11-22T10:30 (in the election's time zone) or RFC 3339")
    })?;
    local
        .in_tz(zone)
        .map(|z| z.timestamp())
        .map_err(|_| ApiError::invalid("time_zone", "not a known IANA time zone (e.g. Europe/London)"))
}

/// After a form post: back to a page (Post/Redirect/Get).
/// A console list's page size: 100 unless asked, within 1..=`MAX_PAGE`.
fn page_limit(requested: Option<u32>) -> u32 {
    requested.unwrap_or(100).clamp(1, turnout_core::store::MAX_PAGE)
}

fn see_other(url: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, url.to_owned())).finish()
}

/// The answer to a console change: JSON for scripts, back to `page` for forms.
fn changed(req: &HttpRequest, status: StatusCode, body: serde_json::Value, page: &str) -> HttpResponse {
    if wants_json(req) { HttpResponse::build(status).json(body) } else { see_other(page) }
}

/// Every console route. The roll upload reads its own (large, streamed) body.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin::index))
        .route("/admin/elections", web::post().to(admin::create))
        .route("/admin/elections/{election}", web::get().to(admin::election))
        .route("/admin/elections/{election}", web::post().to(admin::edit))
        .route("/admin/elections/{election}/candidates", web::post().to(admin::nominate))
        .route("/admin/elections/{election}/candidates/{contest}/{candidate}", web::post().to(admin::decide))
        .route("/admin/elections/{election}/roll", web::get().to(admin::roll))
        .route("/admin/elections/{election}/roll", web::post().to(admin::upload_roll))
        .route("/admin/imports/{import}", web::get().to(admin::import))
        .route("/officer", web::get().to(officer::index))
        .route("/officer/audit", web::get().to(officer::audit))
        .route("/officer/audit/verify", web::get().to(officer::verify_audit))
        .route("/officer/elections/{election}", web::get().to(officer::dashboard))
        .route("/officer/elections/{election}/extend", web::post().to(officer::extend))
        .route("/officer/elections/{election}/widen", web::post().to(officer::widen))
        .route("/officer/elections/{election}/close", web::post().to(officer::close))
        .route("/officer/elections/{election}/results", web::get().to(officer::results))
        .route("/officer/elections/{election}/outbox", web::get().to(officer::outbox));
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_rfc3339_or_local_to_the_election() {
        let utc = parse_time("2026-11-22T10:30:00Z", "Europe/Berlin", "t").unwrap();
        let local = parse_time("2026-11-22T11:30", "Europe/Berlin", "t").unwrap();
        assert_eq!(utc, local);
        assert!(parse_time("tomorrow", "UTC", "t").is_err());
        assert!(parse_time("2026-11-22T11:30", "Mars/Olympus", "t").is_err());
    }
}
