//! Officer operations on the code service, shared by the command line (and, later, the
//! console): widen code acceptance while mail is slow, and see each sender account.

use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use turnout_core::domain::ElectionId;
use turnout_core::store::{AuditEntry, SenderHealth, Store};

/// The most extra acceptance an officer can add in one go.
pub const MAX_EXTRA_MINUTES: u32 = 240;

/// Sets how many minutes past the configured validity codes of `election` still verify.
/// Takes effect on every running service at its next request (it is read per election).
pub async fn widen_acceptance(
    store: &dyn Store,
    election: &ElectionId,
    extra_minutes: u32,
    reason: &str,
    actor: &str,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    anyhow::ensure!(!reason.is_empty(), "a reason is required (it goes into the audit log)");
    anyhow::ensure!(reason.len() <= 500, "the reason is limited to 500 characters");
    anyhow::ensure!(extra_minutes <= MAX_EXTRA_MINUTES, "at most {MAX_EXTRA_MINUTES} extra minutes");
    let before = store.election(election).await?.with_context(|| format!("there is no election {election}"))?;
    let audit = AuditEntry {
        actor: actor.to_owned(),
        action: "otp.acceptance_widened".into(),
        election: Some(election.clone()),
        detail: serde_json::json!({
            "extra_minutes": extra_minutes,
            "previous_extra_minutes": before.otp_extra.as_secs() / 60,
            "reason": reason,
        }),
    };
    store.set_otp_extra(election, Duration::from_secs(u64::from(extra_minutes) * 60), &audit, Timestamp::now()).await?;
    tracing::info!(event = "otp_acceptance_widened", election = %election, extra_minutes, actor);
    Ok(())
}

/// One line per account: healthy or quarantined (until when, why), today's count.
pub fn describe(health: &[SenderHealth]) -> String {
    let mut out =
        String::from("account               state                           sent today  total  failed  last error\n");
    for h in health {
        let state = match (&h.quarantined_until, &h.quarantine_reason) {
            (Some(until), reason) => {
                format!("QUARANTINED until {} ({})", until.strftime("%H:%M UTC"), reason.as_deref().unwrap_or(""))
            }
            (None, _) => "healthy".to_owned(),
        };
        out.push_str(&format!(
            "{:<21} {:<31} {:>10} {:>6} {:>7}  {}\n",
            h.account,
            state,
            h.sent_today,
            h.sent_total,
            h.failed_total,
            h.last_error.as_deref().unwrap_or("-")
        ));
    }
    out
}
