//! Officer operations on the code service, shared by the command line (and, later, the
//! console): widen code acceptance while mail is slow, and see each sender account.

use anyhow::Context;
use turnout_core::domain::ElectionId;
use turnout_core::store::{Codes, Elections, SenderHealth};

/// Sets how many minutes past the configured validity codes of `election` still verify
/// (the console's rule, for the command line). Takes effect at every service's next request.
pub async fn widen_acceptance(
    store: &(impl Elections + Codes + ?Sized),
    election: &ElectionId,
    extra_minutes: u32,
    reason: &str,
    actor: &str,
) -> anyhow::Result<()> {
    let election = store.election(election).await?.with_context(|| format!("there is no election {election}"))?;
    turnout_core::console::widen_acceptance(store, &election, extra_minutes, reason, actor)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
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
