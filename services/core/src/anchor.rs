//! Anchoring the audit chain's head outside the database by mail: at an election's
//! opening, at every change of its window, and once its box is sealed, the head (and, at
//! the seal, the box's roots) goes to every officer who signed in within
//! `OFFICER_RECENCY` and to `TURNOUT_AUDIT_ANCHOR_EMAIL`. Anyone holding one of these
//! mails can later run `turnout-ballot verify-audit --head SEQ:HASH`: a chain that no
//! longer reaches the head was cut or rewritten.
//!
//! The mails are notices (`turnout_store::notices`): queued once per event and
//! recipient however many ballot processes see the event, sent by the OTP service's
//! sender pool only when no code is waiting.

use std::time::Duration;

use jiff::Timestamp;

use crate::box_record::BoxSeal;
use crate::domain::{ElectionId, VoterEmail};
use crate::schedule::Schedule;
use crate::store::{AuditHead, Notice, Notices, StaffContacts, StoreError};

/// Officers who have not signed in for this long get no more notices (the role may have
/// been taken away since: the store only knows what each sign-in said).
pub const OFFICER_RECENCY: Duration = Duration::from_secs(90 * 86_400);

/// What moved the head worth a mail.
#[derive(Debug, Clone)]
pub enum AnchorEvent {
    /// Voting opened.
    Opened,
    /// The window changed (`action` is the audit entry's, at `seq`): extended or closed early.
    WindowChanged { seq: i64, action: String },
    /// Close + grace passed and the box's roots are in the log.
    Sealed(BoxSeal),
}

impl AnchorEvent {
    /// The notice key's last part: one notice per event and recipient.
    fn key_part(&self) -> String {
        match self {
            Self::Opened => "opened".into(),
            Self::WindowChanged { seq, .. } => format!("window:{seq}"),
            Self::Sealed(_) => "sealed".into(),
        }
    }
}

/// The election as the mail names it.
#[derive(Debug, Clone)]
pub struct Anchored<'a> {
    pub id: &'a ElectionId,
    pub title: &'a str,
    pub schedule: &'a Schedule,
}

/// The key prefix of one election's anchor notices.
pub fn key_prefix(election: &ElectionId) -> String {
    format!("anchor:{election}:")
}

/// Queues the notices of one event; returns how many were new (none when every
/// recipient already has it, or nobody is there to send it to).
pub async fn queue_anchor(
    store: &(impl Notices + StaffContacts + ?Sized),
    also: &[VoterEmail],
    election: Anchored<'_>,
    event: &AnchorEvent,
    head: &AuditHead,
    now: Timestamp,
) -> Result<u32, StoreError> {
    let mut to: Vec<VoterEmail> = Vec::new();
    let officers = store.officer_contacts(now - OFFICER_RECENCY).await?;
    for address in officers.into_iter().map(|c| c.email).chain(also.iter().cloned()) {
        if !to.iter().any(|t| t.as_str().eq_ignore_ascii_case(address.as_str())) {
            to.push(address);
        }
    }
    if to.is_empty() {
        return Ok(0);
    }
    let (subject, body) = compose(&election, event, head, now);
    let key = format!("{}{}", key_prefix(election.id), event.key_part());
    let notices: Vec<Notice> = to
        .into_iter()
        .map(|to| Notice { key: key.clone(), to, subject: subject.clone(), body: body.clone() })
        .collect();
    store.queue_notices(&notices, now).await
}

/// The mail's subject and body: plain text, nothing secret (the head and roots are
/// public by design), the title made one printable line.
pub fn compose(election: &Anchored<'_>, event: &AnchorEvent, head: &AuditHead, now: Timestamp) -> (String, String) {
    let title: String = election.title.chars().map(|c| if c.is_control() { ' ' } else { c }).take(120).collect();
    let id = election.id;
    let schedule = election.schedule;
    let (what, subject) = match event {
        AnchorEvent::Opened => (
            format!("Voting opened. It closes at {}.", schedule.local(schedule.closes_at)),
            format!("Audit head at the opening of {title}"),
        ),
        AnchorEvent::WindowChanged { action, .. } => {
            let change = if action.ends_with("closed_early") { "was closed early" } else { "was extended" };
            (
                format!("The voting window {change}: it now closes at {}.", schedule.local(schedule.closes_at)),
                format!("Audit head after a window change in {title}"),
            )
        }
        AnchorEvent::Sealed(_) => (
            "Voting closed and the grace period is over: the ballot box is sealed.".to_owned(),
            format!("Audit head and ballot box roots at the close of {title}"),
        ),
    };
    let mut body = format!(
        "Election: {title} ({id})\n{what}\nAt: {at}\n\n\
         The audit log's head is:\n\n    {head}\n\n",
        at = schedule.local(now),
    );
    if let AnchorEvent::Sealed(seal) = event {
        body.push_str(&format!(
            "The sealed box holds {n} ballots.\n    receipts root:  {r}\n    ballots root:   {b}\n    \
             export SHA-256: {x}\n\n",
            n = seal.ballots,
            r = seal.receipts_root,
            b = seal.ballots_root,
            x = seal.export_sha256,
        ));
    }
    body.push_str(&format!(
        "Keep this email where the Turnout database can't reach it. To check later that \
         nobody cut or rewrote the log (or, after the close, the box):\n\n    \
         turnout-ballot verify-audit --head {head}\n    \
         turnout-ballot verify-box --election {id} --head {head}\n\n\
         The values above are not secret. -- Turnout, for the election office\n"
    ));
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            opens_at: "2026-03-01T09:00:00Z".parse().unwrap(),
            closes_at: "2026-03-01T09:30:00Z".parse().unwrap(),
            grace: Duration::from_secs(60),
            time_zone: "Europe/London".into(),
        }
    }

    #[test]
    fn the_mail_names_the_head_and_the_command_and_keeps_the_subject_one_line() {
        let id = ElectionId::parse("spring").unwrap();
        let schedule = schedule();
        let election = Anchored { id: &id, title: "Union\r\nBcc: x@y", schedule: &schedule };
        let head = AuditHead { seq: 42, hash: "ab".repeat(32) };
        let seal = BoxSeal {
            ballots: 7,
            receipts_root: "11".repeat(32),
            ballots_root: "22".repeat(32),
            export_sha256: "33".repeat(32),
        };
        let now = "2026-03-01T09:31:00Z".parse().unwrap();
        let (subject, body) = compose(&election, &AnchorEvent::Sealed(seal), &head, now);
        assert!(!subject.contains(['\r', '\n']), "{subject:?}");
        assert!(body.contains(&format!("verify-audit --head 42:{}", "ab".repeat(32))), "{body}");
        assert!(body.contains(&"22".repeat(32)) && body.contains("holds 7 ballots"));
        let (_, opened) = compose(&election, &AnchorEvent::Opened, &head, now);
        assert!(opened.contains("It closes at 2026-03-01 09:30"), "{opened}");
        assert!(!opened.contains("root"));
    }
}
