//! Thin handlers for the code pages and calls under `/e/{election}/otp/`.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;
use turnout_core::domain::OtpCode;
use turnout_core::http::{Authenticated, Input, Nav, html, session_cookie, wants_json};
use turnout_core::session::SessionKeys;
use turnout_core::store::{Election, MailState, MailStatus, Store, election_or_404};
use turnout_core::{ApiError, ErrorCode};

use crate::OtpConfig;
use crate::mailer::Mailer;
use crate::verification::Verifier;

pub struct Deps {
    pub store: Arc<dyn Store>,
    pub verifier: Verifier,
    pub mailer: Arc<Mailer>,
    pub wake: Arc<Notify>,
    pub keys: SessionKeys,
    pub config: OtpConfig,
}

/// One line a voter can act on: "Sent 13:02 +01:00 from elections-3@…; check spam".
fn status_line(election: &Election, status: &MailStatus) -> String {
    match status.state {
        MailState::Queued | MailState::Sending => {
            format!("Your code is on its way (queued {}).", election.schedule.local_time(status.queued_at))
        }
        MailState::Sent => format!(
            "Sent {} from {}. If it is not in your inbox within a minute, check your spam folder.",
            status.sent_at.map(|t| election.schedule.local_time(t)).unwrap_or_default(),
            status.from.as_deref().unwrap_or("the election office")
        ),
        MailState::Deferred => "The mail server is slow; we are retrying your code automatically.".to_owned(),
        MailState::Failed => {
            "We could not deliver your code. Check that your university address works, or contact the election office."
                .to_owned()
        }
    }
}

fn status_json(election: &Election, status: &MailStatus, to: &str) -> serde_json::Value {
    json!({
        "state": status.state,
        "to": to,
        "from": status.from,
        "queued_at": status.queued_at.to_string(),
        "sent_at": status.sent_at.map(|t| t.to_string()),
        "attempts": status.attempts,
        "message": status_line(election, status),
    })
}

#[derive(Template)]
#[template(path = "otp.html")]
struct OtpPage {
    nav: Nav,
    election_id: String,
    title: String,
    closes: String,
    to: String,
    senders: String,
    status: Option<String>,
    failed: bool,
    verified: bool,
}

pub async fn page(
    path: web::Path<String>,
    session: Authenticated,
    deps: web::Data<Deps>,
) -> Result<HttpResponse, ApiError> {
    let election = election_or_404(deps.store.as_ref(), &path).await?;
    let session = session.0;
    let status = deps.store.mail_status(&election.id, &session.sub).await?;
    let page = OtpPage {
        nav: Nav { user: Some(session.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title.clone(),
        closes: election.schedule.local(election.schedule.closes_at),
        to: session.email.masked(),
        senders: deps.mailer.from_addresses().join(", "),
        failed: status.as_ref().is_some_and(|s| s.state == MailState::Failed),
        status: status.as_ref().map(|s| status_line(&election, s)),
        verified: session.verified_at(&election.id).is_some(),
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn request(
    req: HttpRequest,
    path: web::Path<String>,
    session: Authenticated,
    deps: web::Data<Deps>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::now();
    let election = election_or_404(deps.store.as_ref(), &path).await?;
    election.schedule.check_open(now)?;
    let session = session.0;
    let issue = deps.verifier.request(&election.id, &session.sub, &session.email, now).await?;
    deps.wake.notify_one();
    tracing::info!(event = "code_requested", election = %election.id, resent = issue.resent);
    if !wants_json(&req) {
        return Ok(see_other(&format!("/e/{}/otp", election.id)));
    }
    let policy = deps.verifier.policy();
    Ok(HttpResponse::Accepted().json(json!({
        "status": "queued",
        "sent_to": session.email.masked(),
        "senders": deps.mailer.from_addresses(),
        "resent_same_code": issue.resent,
        "resend_after_secs": policy.cooldown.as_secs(),
        "valid_until": (issue.issued_at + policy.validity).to_string(),
        "status_url": format!("/e/{}/otp/status", election.id),
    })))
}

pub async fn status(
    path: web::Path<String>,
    session: Authenticated,
    deps: web::Data<Deps>,
) -> Result<HttpResponse, ApiError> {
    let election = election_or_404(deps.store.as_ref(), &path).await?;
    let session = session.0;
    let status = deps
        .store
        .mail_status(&election.id, &session.sub)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NoActiveCode, "No code has been requested yet."))?;
    Ok(HttpResponse::Ok().json(status_json(&election, &status, &session.email.masked())))
}

#[derive(Deserialize)]
pub struct VerifyForm {
    code: String,
}

pub async fn verify(
    req: HttpRequest,
    path: web::Path<String>,
    session: Authenticated,
    Input(form): Input<VerifyForm>,
    deps: web::Data<Deps>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::now();
    let election = election_or_404(deps.store.as_ref(), &path).await?;
    election.schedule.check_open(now)?;
    let code = OtpCode::parse(&form.code).map_err(|e| ApiError::invalid("code", e))?;
    let session = session.0;
    let outcome = deps.verifier.verify(&election.id, &session.sub, &code, now).await;
    tracing::info!(event = "code_verified", election = %election.id, ok = outcome.is_ok());
    outcome?;
    let upgraded = session.verified_for(&election.id, now, deps.config.session_ttl);
    let cookie = session_cookie(deps.keys.sign(&upgraded), deps.config.session_ttl, deps.config.cookie_secure);
    let ballot = format!("/e/{}/ballot", election.id);
    Ok(if wants_json(&req) {
        HttpResponse::Ok()
            .cookie(cookie)
            .json(json!({ "verified": true, "election": election.id, "ballot_url": ballot }))
    } else {
        let mut res = see_other(&ballot);
        res.add_cookie(&cookie).map_err(|_| ApiError::internal())?;
        res
    })
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}
