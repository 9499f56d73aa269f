//! Thin handlers for the code pages and calls under `/e/{election}/otp/`.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;
use turnout_core::domain::{OtpCode, VoterEmail};
use turnout_core::http::{Authenticated, Input, Nav, cookie_secure, html, session_cookie, wants_json};
use turnout_core::session::Session;
use turnout_core::session::SessionKeys;
use turnout_core::store::{
    Election, Eligibility, MailState, MailStatus, OtpPolicy, OtpStatus, Roll, Store, election_or_404,
};
use turnout_core::{ApiError, ErrorCode};

use crate::OtpConfig;
use crate::mailer::{FAILED_BAD_ADDRESS, FAILED_EXPIRED, Mailer};
use crate::verification::Verifier;

pub struct Deps {
    pub store: Arc<dyn Store>,
    pub verifier: Verifier,
    pub mailer: Arc<Mailer>,
    pub wake: Arc<Notify>,
    pub config: OtpConfig,
}

/// One line a voter can act on: "Sent 13:02 +01:00 from elections-3@…; check spam".
fn status_line(election: &Election, mail: &MailStatus, to: &str) -> String {
    let at = |t: Timestamp| election.schedule.local_time(t);
    match mail.state {
        MailState::Queued | MailState::Sending => format!("Your code is on its way (queued {}).", at(mail.queued_at)),
        MailState::Sent => format!(
            "Sent {} from {}. If it is not in your inbox within a minute, check your spam folder.",
            mail.sent_at.map(at).unwrap_or_default(),
            mail.from.as_deref().unwrap_or("the election office")
        ),
        MailState::Deferred => format!(
            "The mail server is slow; we are retrying automatically (next try {}). You don't need to ask again.",
            at(mail.next_attempt_at)
        ),
        MailState::Failed => {
            let error = mail.last_error.as_deref().unwrap_or("");
            let (kind, reason) = error.split_once(": ").unwrap_or(("", error));
            match kind {
                FAILED_BAD_ADDRESS => format!(
                    "Your address {to} does not accept mail ({reason}). Contact the election office to correct it."
                ),
                FAILED_EXPIRED => "Your code could not be delivered before it expired. Ask for a new code.".to_owned(),
                _ => format!(
                    "The mail provider refused the message ({reason}). Ask for a new code, or contact the election office."
                ),
            }
        }
    }
}

/// Everything the page and the status call show.
struct View {
    line: Option<String>,
    state: &'static str,
    resend_after_secs: u64,
    sends_left: u32,
    locked_until: Option<Timestamp>,
}

fn view(election: &Election, status: Option<&OtpStatus>, policy: OtpPolicy, to: &str, now: Timestamp) -> View {
    let Some(status) = status else {
        return View {
            line: None,
            state: "none",
            resend_after_secs: 0,
            sends_left: policy.max_sends,
            locked_until: None,
        };
    };
    let ready_at = status.last_request_at + policy.cooldown;
    View {
        line: status.mail.as_ref().map(|m| status_line(election, m, to)),
        state: status.mail.as_ref().map_or("none", |m| m.state.as_str()),
        resend_after_secs: ready_at.duration_since(now).as_secs().max(0) as u64,
        sends_left: policy.max_sends.saturating_sub(status.sends),
        locked_until: status.locked_until,
    }
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
    state: &'static str,
    resend_after_secs: u64,
    sends_left: u32,
    locked: Option<String>,
    verified: bool,
    /// A code that did not verify, said next to the code field.
    code_error: Option<CodeError>,
}

struct CodeError {
    title: &'static str,
    message: String,
}

/// What happened to a typed code, as the page's title; `None` for refusals that are not
/// about the code (a closed window, another election), which get the error page.
fn code_failure_title(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::WrongCode => "That code is not right",
        ErrorCode::InvalidField => "That is not a 6-digit code",
        ErrorCode::CodeExpired => "That code has expired",
        ErrorCode::TooManyAttempts => "That code no longer works",
        ErrorCode::NoActiveCode => "Ask for a code first",
        ErrorCode::VoterLocked => "Codes are paused for you",
        _ => return None,
    })
}

pub async fn page(
    path: web::Path<String>,
    session: Authenticated,
    deps: web::Data<Deps>,
) -> Result<HttpResponse, ApiError> {
    render_page(&deps, &path, session, StatusCode::OK, None).await
}

/// The code page, optionally with a failed code's error beside the field.
async fn render_page(
    deps: &Deps,
    election: &str,
    session: Authenticated,
    status: StatusCode,
    code_error: Option<CodeError>,
) -> Result<HttpResponse, ApiError> {
    let (election, session, _, to, v) = load(deps, election, session).await?;
    let page = OtpPage {
        nav: Nav { user: Some(session.sub.to_string()) },
        election_id: election.id.to_string(),
        title: election.title.clone(),
        closes: election.schedule.local(election.schedule.closes_at),
        senders: deps.mailer.from_addresses().join(", "),
        status: v.line,
        state: v.state,
        resend_after_secs: v.resend_after_secs,
        sends_left: v.sends_left,
        locked: v.locked_until.map(|t| election.schedule.local_time(t)),
        verified: session.verified_at(&election.id).is_some(),
        to,
        code_error,
    };
    Ok(html(status, &page))
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
    ensure_eligible(&election, &session)?;
    let to = recipient(deps.store.as_ref(), &election, &session).await?;
    let issue = deps.verifier.request(&election, &session.sub, &to, now).await;
    let outcome = issue.as_ref().map_or_else(|e| e.code.as_str(), |i| if i.resent { "resent" } else { "issued" });
    crate::metrics::code_requested(election.id.as_str(), outcome);
    let issue = issue?;
    deps.wake.notify_one();
    tracing::info!(event = "code_requested", election = %election.id, resent = issue.resent);
    if !wants_json(&req) {
        return Ok(see_other(&format!("/e/{}/otp", election.id)));
    }
    let policy = deps.verifier.policy(&election);
    Ok(HttpResponse::Accepted().json(json!({
        "status": "queued",
        "sent_to": to.masked(),
        "senders": deps.mailer.from_addresses(),
        "resent_same_code": issue.resent,
        "resend_after_secs": policy.cooldown.as_secs(),
        "valid_until": (issue.issued_at + election.code_acceptance(policy.validity)).to_string(),
        "status_url": format!("/e/{}/otp/status", election.id),
    })))
}

pub async fn status(
    path: web::Path<String>,
    session: Authenticated,
    deps: web::Data<Deps>,
) -> Result<HttpResponse, ApiError> {
    let (_, _, status, to, v) = load(&deps, &path, session).await?;
    let mail = status.as_ref().and_then(|s| s.mail.as_ref());
    Ok(HttpResponse::Ok().json(json!({
        "state": v.state,
        "to": to,
        "from": mail.and_then(|m| m.from.clone()),
        "queued_at": mail.map(|m| m.queued_at.to_string()),
        "sent_at": mail.and_then(|m| m.sent_at).map(|t| t.to_string()),
        "attempts": mail.map_or(0, |m| m.attempts),
        "message": v.line,
        "resend_after_secs": v.resend_after_secs,
        "sends_left": v.sends_left,
        "locked_until": v.locked_until.map(|t| t.to_string()),
    })))
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
    keys: web::Data<SessionKeys>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::now();
    let election = election_or_404(deps.store.as_ref(), &path).await?;
    election.schedule.check_open(now)?;
    let outcome = match OtpCode::parse(&form.code) {
        Err(e) => Err(ApiError::invalid("code", e)),
        Ok(code) => {
            ensure_eligible(&election, &session.0)?;
            let outcome = deps.verifier.verify(&election, &session.0.sub, &code, now).await;
            tracing::info!(event = "code_verified", election = %election.id, ok = outcome.is_ok());
            let label = outcome.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok");
            crate::metrics::code_verified(election.id.as_str(), label);
            outcome
        }
    };
    if let Err(err) = outcome {
        // A browser gets the code page back, the error beside the field; JSON as before.
        return match code_failure_title(err.code) {
            Some(title) if !wants_json(&req) => {
                let error = CodeError { title, message: err.message.clone() };
                render_page(&deps, &path, session, err.status_code(), Some(error)).await
            }
            _ => Err(err),
        };
    }
    let session = session.0;
    let upgraded = session.verified_for(&election.id, now, deps.config.session_ttl);
    let cookie =
        session_cookie(keys.sign(&upgraded), deps.config.session_ttl, cookie_secure(&req, deps.config.cookie_secure));
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

/// Where this voter's code goes: the roll's address, when the roll has one, wins over
/// the directory's. Request, page and status all show the same address.
async fn recipient(store: &dyn Roll, election: &Election, session: &Session) -> Result<VoterEmail, ApiError> {
    if election.eligibility != Eligibility::Roll {
        return Ok(session.email.clone());
    }
    let on_roll = store.roll_memberships(&session.sub, std::slice::from_ref(&election.id)).await?;
    Ok(on_roll.into_iter().find_map(|(_, email)| email).unwrap_or_else(|| session.email.clone()))
}

/// What the page and the status call both start from.
async fn load(
    deps: &Deps,
    election: &str,
    session: Authenticated,
) -> Result<(Election, Session, Option<OtpStatus>, String, View), ApiError> {
    let election = election_or_404(deps.store.as_ref(), election).await?;
    let session = session.0;
    let status = deps.store.otp_status(&election.id, &session.sub).await?;
    let to = recipient(deps.store.as_ref(), &election, &session).await?.masked();
    let v = view(&election, status.as_ref(), deps.verifier.policy(&election), &to, Timestamp::now());
    Ok((election, session, status, to, v))
}

/// Eligibility was decided at login and travels in the session.
fn ensure_eligible(election: &Election, session: &Session) -> Result<(), ApiError> {
    if session.may_vote_in(&election.id) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::NotEligible,
            format!(
                "You are not on the voter list for {}. If you think this is wrong, contact the election office.",
                election.title
            ),
        ))
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_owned())).finish()
}
